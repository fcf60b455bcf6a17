// Generation as plain code drawing small choices. A generator is a function of a Draw; fast-check
// sees one arbitrary per case whose context is the tape of choices drawn (numbers, with groups and
// lists as nested entries). Nested fast-check arbitraries cost a Value, a bias check and a clone
// check per node: one tape per case costs a few pushes. Every choice's 0 is its simplest
// alternative, so shrinking edits the tape (drops a list item, resets a group to all zeros, lowers
// one choice) and decodes it again; replay reads what the tape holds and 0 where it holds nothing
// (a new branch, a missing group), so every edited tape decodes, and the same tape the same case.

import fc from 'fast-check';

/** A list's items, each a tape of its own. */
class ListTape {
  constructor(readonly items: readonly Tape[]) {}
}

type Entry = number | Tape | ListTape;
export type Tape = readonly Entry[];

export type Gen<T> = (d: Draw) => T;

const NO_TAPE: Tape = [];
/** Weights are rounded to 1/1024 of a table (every positive weight keeps at least one unit). */
const UNITS = 1 << 10;

/** Alternatives with weights, the simplest first: one choice picks one of them. */
export class Table<T> {
  /** Cumulative integer weights, for drawing. */
  private readonly bounds: number[] = [];
  readonly total: number;
  constructor(
    readonly values: readonly T[],
    weights: readonly number[] = values.map(() => 1),
  ) {
    if (values.length === 0 || weights.length !== values.length) throw new Error('a table needs one weight per value, and a value');
    const sum = weights.reduce((a, b) => a + b, 0);
    let acc = 0;
    for (const w of weights) this.bounds.push((acc += Math.max(1, Math.round((w / sum) * UNITS))));
    this.total = acc;
    // Draws are table lookups: index i for every r in [bounds[i-1], bounds[i]).
    this.lookup = new Uint16Array(acc);
    for (let i = 0, r = 0; i < this.bounds.length; i++) for (; r < (this.bounds[i] as number); r++) this.lookup[r] = i;
  }
  /** The share of draws index i gets, in units of `total`. */
  weight(i: number): number {
    return (this.bounds[i] as number) - (i > 0 ? (this.bounds[i - 1] as number) : 0);
  }
  /** The same alternatives and weights, each value mapped. */
  map<U>(f: (v: T) => U): Table<U> {
    return new Table(
      this.values.map(f),
      this.values.map((_, i) => this.weight(i)),
    );
  }
  /** The index a uniform draw r in [0, total) falls on. */
  indexOf(r: number): number {
    return this.lookup[r] as number;
  }
  private readonly lookup: Uint16Array;
}

/** Equal weights. */
export function uniform<T>(values: readonly T[]): Table<T> {
  return new Table(values);
}

/** Each part's values share its weight equally, in the order given (the first part's first value is the simplest). */
export function mix<T>(...parts: readonly (readonly [readonly T[] | Table<T>, number])[]): Table<T> {
  const values: T[] = [];
  const weights: number[] = [];
  for (const [part, w] of parts) {
    const t = part instanceof Table ? part : uniform(part);
    t.values.forEach((v, i) => {
      values.push(v);
      weights.push((w * t.weight(i)) / t.total);
    });
  }
  return new Table(values, weights);
}

/** Where generators draw from: fresh random choices, or a recorded tape being replayed. */
export abstract class Draw {
  /** The tape this draw records (the canonical form of what it read, when replaying). */
  protected out: Entry[] = [];
  get tape(): Tape {
    return this.out;
  }
  protected abstract index(n: number, table: Table<unknown> | null): number;
  protected abstract enter(): void;
  protected abstract leave(recorded: Entry[]): void;
  protected abstract listItems(min: number, max: number, lengths: Table<number>): number;
  protected abstract enterItem(i: number): void;
  protected abstract leaveItems(): void;

  /** 0 .. n-1, uniformly. */
  int(n: number): number {
    return this.index(n, null);
  }
  /** One value of a table. */
  pick<T>(t: Table<T>): T {
    return t.values[this.index(t.values.length, t)] as T;
  }
  /** A part that draws a varying number of choices: one entry of the tape, so that what follows stays in place. */
  group<T>(gen: Gen<T>): T {
    const outer = this.out;
    this.enter();
    const own = (this.out = []);
    try {
      return gen(this);
    } finally {
      this.out = outer;
      this.leave(own);
    }
  }
  /** null (choice 0) or a value, as often as `some` says (see `chance`); one entry. */
  maybe<T>(gen: Gen<T>, some: Table<boolean>): T | null {
    return this.group((d) => (d.pick(some) ? gen(d) : null));
  }
  /** A list whose length is drawn from `lengths` (values min..max); shrinking drops items. */
  list<T>(gen: Gen<T>, lengths: Table<number>, min = 0): T[] {
    const max = lengths.values[lengths.values.length - 1] as number;
    const outer = this.out;
    const n = this.listItems(min, max, lengths);
    const items: Tape[] = [];
    const xs: T[] = [];
    try {
      for (let i = 0; i < n; i++) {
        this.enterItem(i);
        const own: Entry[] = (this.out = []);
        xs.push(gen(this));
        items.push(own);
      }
    } finally {
      this.out = outer;
      this.leaveItems();
    }
    outer.push(new ListTape(items));
    return xs;
  }
}

/** false (the simpler) or true, with these weights. */
export function chance(weightFalse: number, weightTrue: number): Table<boolean> {
  return new Table([false, true], [weightFalse, weightTrue]);
}

/** Lengths min..max: `weightEmpty` on min, `weightSome` shared by the others. */
export function lengths(min: number, max: number, weightEmpty = 1, weightSome = max - min): Table<number> {
  const values: number[] = [];
  const weights: number[] = [];
  for (let n = min; n <= max; n++) {
    values.push(n);
    weights.push(n === min ? weightEmpty : weightSome / Math.max(1, max - min));
  }
  return new Table(values, weights);
}

/**
 * Random choices, several from one 30-bit random number (a modulo bias under 1/128). All values
 * stay below 2^31, so `| 0` truncates a quotient as Math.floor would, and TurboFan keeps the
 * arithmetic in integers instead of dividing floating-point numbers (fast-check's integers come
 * out of a floating-point modulo: `| 0` keeps `bits` a small integer); the choice is the remainder
 * of the one division.
 */
class Bits {
  private bits = 0;
  private room = 1;
  constructor(private readonly mrng: fc.Random) {}
  below(n: number): number {
    if (this.room < n * 128) {
      this.bits = this.mrng.nextInt(0, 0x3fffffff) | 0;
      this.room = 0x40000000;
    }
    const bits = this.bits;
    const rest = (bits / n) | 0;
    this.bits = rest;
    this.room = (this.room / n) | 0;
    return bits - rest * n;
  }
  index(n: number, table: Table<unknown> | null): number {
    return table ? this.pick(table) : this.int(n);
  }
  int(n: number): number {
    return n <= 1 ? 0 : this.below(n);
  }
  /** The index of a table's value. */
  pick(table: Table<unknown>): number {
    return table.values.length <= 1 ? 0 : table.indexOf(this.below(table.total));
  }
  length(lengths: Table<number>): number {
    return lengths.values[lengths.indexOf(this.below(lengths.total))] as number;
  }
}

/** Draws random choices and records them. */
class RandomDraw extends Draw {
  protected readonly bits: Bits;
  constructor(mrng: fc.Random) {
    super();
    this.bits = new Bits(mrng);
  }
  protected index(n: number, table: Table<unknown> | null): number {
    const v = this.bits.index(n, table);
    this.out.push(v);
    return v;
  }
  protected enter(): void {}
  protected leave(recorded: Entry[]): void {
    this.out.push(recorded);
  }
  protected listItems(_min: number, _max: number, lengths: Table<number>): number {
    return this.bits.length(lengths);
  }
  protected enterItem(): void {}
  protected leaveItems(): void {}
}

/**
 * Draws the same random choices without recording them: most cases are never shrunk, and the
 * tape of one that is is recorded when needed by drawing again from the same random state.
 */
class FreshDraw extends RandomDraw {
  protected override index(n: number, table: Table<unknown> | null): number {
    return this.bits.index(n, table);
  }
  // The two choices every generator makes, straight to the bits: TurboFan's small inlining budget
  // (shared/v8-tuning.ts) leaves each call level of a choice a real call.
  override int(n: number): number {
    return this.bits.int(n);
  }
  override pick<T>(t: Table<T>): T {
    return t.values[this.bits.pick(t)] as T;
  }
  override group<T>(gen: Gen<T>): T {
    return gen(this);
  }
  override maybe<T>(gen: Gen<T>, some: Table<boolean>): T | null {
    return this.pick(some) ? gen(this) : null;
  }
  override list<T>(gen: Gen<T>, lengths: Table<number>): T[] {
    const n = this.bits.length(lengths);
    // At its exact size: lists are small, and a pushed-to array has room for 17.
    const xs = new Array<T>(n);
    for (let i = 0; i < n; i++) xs[i] = gen(this);
    return xs;
  }
}

class ReplayDraw extends Draw {
  private src: Tape;
  private pos = 0;
  private readonly frames: { src: Tape; pos: number }[] = [];
  constructor(tape: Tape) {
    super();
    this.src = tape;
  }
  private next(): Entry | undefined {
    return this.src[this.pos++];
  }
  protected index(n: number): number {
    const e = this.next();
    const v = typeof e === 'number' && n > 1 ? Math.min(e, n - 1) : 0;
    this.out.push(v);
    return v;
  }
  protected enter(): void {
    const e = this.next();
    this.frames.push({ src: this.src, pos: this.pos });
    this.src = Array.isArray(e) ? (e as Tape) : NO_TAPE;
    this.pos = 0;
  }
  protected leave(recorded: Entry[]): void {
    const f = this.frames.pop() as { src: Tape; pos: number };
    this.src = f.src;
    this.pos = f.pos;
    this.out.push(recorded);
  }
  /** The items of the lists being replayed, innermost last. */
  private readonly lists: (readonly Tape[])[] = [];
  protected listItems(min: number, max: number): number {
    const e = this.next();
    const items = e instanceof ListTape ? e.items : [];
    this.frames.push({ src: this.src, pos: this.pos });
    this.lists.push(items);
    return Math.max(min, Math.min(max, items.length));
  }
  protected enterItem(i: number): void {
    this.src = this.lists[this.lists.length - 1]?.[i] ?? NO_TAPE;
    this.pos = 0;
  }
  protected leaveItems(): void {
    this.lists.pop();
    const f = this.frames.pop() as { src: Tape; pos: number };
    this.src = f.src;
    this.pos = f.pos;
  }
}

/** The case a tape decodes to, with the tape as the generator read it. */
export function replay<T>(gen: Gen<T>, tape: Tape): { value: T; tape: Tape } {
  const d = new ReplayDraw(tape);
  const value = gen(d);
  return { value, tape: d.tape };
}

// ---------------------------------------------------------------------------------------------
// Shrinking: candidate tapes, each one edit away, simplest edits first.

/** Size of a tape: list items first, then the sum of the choices (both only go down while shrinking). */
function measure(t: Tape, m = { items: 0, sum: 0 }): { items: number; sum: number } {
  for (const e of t) {
    if (typeof e === 'number') m.sum += e;
    else if (e instanceof ListTape) {
      m.items += e.items.length;
      for (const it of e.items) measure(it, m);
    } else measure(e, m);
  }
  return m;
}

function smaller(a: { items: number; sum: number }, b: { items: number; sum: number }): boolean {
  return a.items < b.items || (a.items === b.items && a.sum < b.sum);
}

type Step = number;
interface Site {
  readonly path: readonly Step[];
  readonly entry: Entry;
}

/** Every entry below the root, in tape order; a list item's path step is its index among the items. */
function sites(t: Tape, path: Step[] = [], out: Site[] = []): Site[] {
  t.forEach((e, i) => {
    const p = [...path, i];
    out.push({ path: p, entry: e });
    if (e instanceof ListTape) e.items.forEach((it, k) => sites(it, [...p, k], out));
    else if (Array.isArray(e)) sites(e as Tape, p, out);
  });
  return out;
}

/** A copy of the tape with the entry at `path` replaced (list items are addressed through their list). */
function setAt(t: Tape, path: readonly Step[], entry: Entry | ListTape): Tape {
  const [i, ...rest] = path as [number, ...number[]];
  const copy = t.slice();
  if (rest.length === 0) {
    copy[i] = entry;
    return copy;
  }
  const e = t[i];
  if (e instanceof ListTape) {
    const [k, ...deeper] = rest as [number, ...number[]];
    const items = e.items.slice();
    items[k] = deeper.length === 0 ? (entry as Tape) : setAt(e.items[k] as Tape, deeper, entry);
    copy[i] = new ListTape(items);
  } else copy[i] = setAt(e as Tape, rest, entry);
  return copy;
}

function* candidates(t: Tape): Generator<Tape> {
  const all = sites(t);
  for (const s of all) {
    if (!(s.entry instanceof ListTape)) continue;
    for (let k = 0; k < s.entry.items.length; k++) yield setAt(t, s.path, new ListTape(s.entry.items.filter((_, j) => j !== k)));
  }
  for (const s of all) if (Array.isArray(s.entry) && s.entry.length > 0 && s.path.length > 0) yield setAt(t, s.path, NO_TAPE);
  for (const s of all) {
    const v = s.entry;
    if (typeof v !== 'number' || v === 0) continue;
    yield setAt(t, s.path, 0);
    const half = v >> 1;
    if (half > 0) yield setAt(t, s.path, half);
    if (v - 1 > half) yield setAt(t, s.path, v - 1);
  }
}

function* shrinkTape<T>(gen: Gen<T>, tape: Tape): Generator<fc.Value<T>> {
  const size = measure(tape);
  for (const c of candidates(tape)) {
    const r = replay(gen, c);
    if (smaller(measure(r.tape), size)) yield new fc.Value(r.value, r.tape);
  }
}

/** The random state a case was drawn from: its tape is recorded from it when it comes to shrinking. */
class Origin {
  constructor(readonly mrng: fc.Random) {}
  tape<T>(gen: Gen<T>): Tape {
    const d = new RandomDraw(this.mrng.clone());
    gen(d);
    return d.tape;
  }
}

/** The tape of a generated or shrunk value of `gen`, from its fast-check context (null: not one of ours). */
export function tapeOf<T>(gen: Gen<T>, context: unknown): Tape | null {
  return context instanceof Origin ? context.tape(gen) : Array.isArray(context) ? (context as Tape) : null;
}

/** A fast-check arbitrary over a generator: one Value per case, shrinking through its tape. */
class TapeArbitrary<T> extends fc.Arbitrary<T> {
  constructor(
    private readonly gen: Gen<T>,
    private readonly keep?: { readonly draws: number; readonly has: (v: T) => boolean },
  ) {
    super();
  }
  generate(mrng: fc.Random): fc.Value<T> {
    let first: fc.Value<T> | null = null;
    for (let i = 0; i < (this.keep?.draws ?? 1); i++) {
      const origin = new Origin(mrng.clone());
      const v = new fc.Value(this.gen(new FreshDraw(mrng)), origin);
      if (!this.keep || this.keep.has(v.value_)) return v;
      first ??= v;
    }
    return first as fc.Value<T>;
  }
  /** Without its tape a case cannot be shrunk (the tape is what shrinks). */
  canShrinkWithoutContext(value: unknown): value is T {
    void value;
    return false;
  }
  shrink(_value: T, context: unknown): fc.Stream<fc.Value<T>> {
    const tape = tapeOf(this.gen, context);
    return tape ? new fc.Stream(shrinkTape(this.gen, tape)) : fc.Stream.nil();
  }
}

/** The arbitrary of a generator. */
export function arb<T>(gen: Gen<T>): fc.Arbitrary<T> {
  return new TapeArbitrary(gen);
}

/**
 * Up to `draws` values of `gen`, keeping the first that `has` (else the first drawn); it shrinks
 * like a value of `gen`, without the need to keep `has`.
 */
export function firstWith<T>(gen: Gen<T>, draws: number, has: (v: T) => boolean): fc.Arbitrary<T> {
  return new TapeArbitrary(gen, { draws, has });
}
