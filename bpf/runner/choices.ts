// Nondeterminism as choice points. Programs ask for randomness (bpf_get_prandom_u32) and, when
// enabled, helpers may fail (storage creation, message growth, map updates); a ChoiceSource
// answers. Running a case under a depth-first oracle, again and again with the next untried
// answer, enumerates every combination: the VM's outcome set is exact, not sampled.

import { OutcomeSetLimitError } from '../../model/executor.js';

export type FailurePoint = 'storage-create' | 'push-data' | 'map-update';
export const FAILURE_POINTS: readonly FailurePoint[] = ['storage-create', 'push-data', 'map-update'];

export interface ChoiceSource {
  /** The next bpf_get_prandom_u32() value (u32). */
  prandom(): number;
  /** Whether this call of a fallible helper fails. */
  fail(point: FailurePoint): boolean;
  /** The answers given so far in this run, as a key (exploring oracles only). */
  trail?(): string;
}

/** One answer given during a run. */
export interface Choice {
  readonly point: 'prandom' | FailurePoint;
  /** The prandom value, or 1 for "the helper failed" and 0 for "it succeeded". */
  readonly value: number;
}

/** Deterministic answers for single runs: a seeded xorshift stream for prandom, helpers never fail. */
export class SeededChoices implements ChoiceSource {
  private state: number;
  constructor(seed = 1) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  reseed(seed: number): void {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  prandom(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.state = x;
    return x;
  }
  fail(): boolean {
    return false;
  }
}

/** Replays a fixed list of answers (e.g. a recorded path), then answers 0 / "succeed". */
export class ScriptedChoices implements ChoiceSource {
  private i = 0;
  readonly given: Choice[] = [];
  constructor(private readonly script: readonly Choice[]) {}
  prandom(): number {
    const c = this.script[this.i++];
    if (c && c.point !== 'prandom') throw new Error(`choice ${this.i - 1}: the script says ${c.point}, the program asked for prandom`);
    const value = c?.value ?? 0;
    this.given.push({ point: 'prandom', value });
    return value >>> 0;
  }
  fail(point: FailurePoint): boolean {
    const c = this.script[this.i];
    if (c && c.point === point) {
      this.i++;
      this.given.push(c);
      return c.value !== 0;
    }
    return false;
  }
}

const PRUNED = Symbol('pruned');

export interface ExploreOptions {
  /** Values bpf_get_prandom_u32 may return; each is one branch. */
  readonly prandomDomain: readonly number[];
  /** Helpers whose failure is a branch too (default none). */
  readonly failures?: readonly FailurePoint[];
  /** Upper bound on runs; exceeding it is an error naming the bound. */
  readonly maxRuns?: number;
  /**
   * Alternatives known to be pruned if run (choice `position` of the last run answered with
   * `value`): skipped without running (the VM's pass memo, bpf/vm/pass-memo.ts).
   */
  readonly redundant?: (position: number, value: number) => boolean;
  /**
   * Give up after any run whose choice points, taken as the shape of every path, make more than
   * this many combinations: a forecast for callers that want small sets only (judge.ts's exact
   * sets), to whom finding out by running maxRuns paths cost more than the sets they keep.
   */
  readonly forecast?: number;
}

interface Taken {
  readonly point: Choice['point'];
  readonly size: number;
  readonly index: number;
  readonly value: number;
}

class DepthFirstOracle implements ChoiceSource {
  readonly taken: Taken[] = [];
  constructor(
    private readonly prefix: readonly number[],
    private readonly opts: ExploreOptions,
    private readonly failures: ReadonlySet<FailurePoint>,
  ) {}
  private next(point: Choice['point'], size: number, valueAt: (i: number) => number): number {
    const pos = this.taken.length;
    const index = pos < this.prefix.length ? (this.prefix[pos] as number) : 0;
    const value = valueAt(index);
    this.taken.push({ point, size, index, value });
    return value;
  }
  prandom(): number {
    const d = this.opts.prandomDomain;
    return this.next('prandom', d.length, (i) => (d[i] as number) >>> 0);
  }
  fail(point: FailurePoint): boolean {
    if (!this.failures.has(point)) return false;
    return this.next(point, 2, (i) => i) === 1;
  }
  trail(): string {
    return this.taken.map((t) => t.index).join(',');
  }
}

/**
 * Thrown by a run that reached a state an earlier path already reached through other answers
 * (and with the same history of observations): everything that can follow was explored then, so
 * this path adds nothing. Depth-first order guarantees the earlier visit's continuations are
 * complete; a state met again with the same answers so far is the same node replayed, not pruned.
 */
export class Pruned extends Error {
  constructor() {
    super('pruned: state already explored');
  }
}

/**
 * Depth-first backtracking over answered choice points (index taken among size): the prefix of
 * the next run (the deepest point with an untried alternative, advanced by one), or null when
 * every combination was run. Shared by the VM's prandom exploration and the exhaustive phase's
 * map decisions (properties/explore.ts).
 */
export function nextPrefix(taken: readonly { readonly index: number; readonly size: number }[], skip?: (position: number, index: number) => boolean): number[] | null {
  for (let i = taken.length - 1; i >= 0; i--) {
    const t = taken[i] as { index: number; size: number };
    for (let j = t.index + 1; j < t.size; j++) {
      if (skip?.(i, j) === true) continue;
      const prefix = taken.slice(0, i).map((x) => x.index);
      prefix.push(j);
      return prefix;
    }
  }
  return null;
}

/** Runs `run` once per combination of answers, depth first; returns each path with its result. */
export function explore<T>(run: (choices: ChoiceSource) => T, opts: ExploreOptions): Array<{ choices: Choice[]; result: T }> {
  if (opts.prandomDomain.length === 0) throw new Error('explore: the prandom domain is empty; give at least one value');
  const failures = new Set(opts.failures ?? []);
  const maxRuns = opts.maxRuns ?? 100_000;
  const out: Array<{ choices: Choice[]; result: T }> = [];
  let prefix: number[] = [];
  let prefixPoints: Choice['point'][] = [];
  let runs = 0;
  for (;;) {
    if (runs >= maxRuns) throw new OutcomeSetLimitError(`explore: more than ${maxRuns} paths; narrow the prandom domain or raise maxRuns`);
    const oracle = new DepthFirstOracle(prefix, opts, failures);
    let result: T | typeof PRUNED;
    try {
      result = run(oracle);
    } catch (e) {
      if (!(e instanceof Pruned)) throw e;
      result = PRUNED;
    }
    runs++;
    const taken = oracle.taken;
    if (opts.forecast !== undefined) {
      let combinations = 1;
      for (const t of taken) combinations *= t.size;
      if (combinations > opts.forecast) throw new OutcomeSetLimitError(`explore: path ${runs}'s ${taken.length} choice points make ${combinations} combinations, more than ${opts.forecast}`);
    }
    const replayed = Math.min(taken.length, prefixPoints.length);
    if ((result !== PRUNED && taken.length < prefix.length) || prefixPoints.slice(0, replayed).some((p, i) => taken[i]?.point !== p)) {
      throw new Error('explore: the run is not deterministic (its choice points changed on replay)');
    }
    if (result !== PRUNED) out.push({ choices: taken.map((t) => ({ point: t.point, value: t.value })), result });
    const redundant = opts.redundant;
    const next = nextPrefix(taken, redundant ? (i, j) => (taken[i] as Taken).point === 'prandom' && redundant(i, opts.prandomDomain[j] as number) : undefined);
    if (next === null) return out;
    prefix = next;
    prefixPoints = taken.slice(0, next.length).map((t) => t.point);
  }
}
