// Choice tapes (generators/choices.ts): tables draw by weight, a case's tape replays to the same
// case, edited tapes still decode, and shrinking through the tape reaches the simplest failure.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arb, caseGen, firstWith, lengths, mix, replay, Table, tapeOf, type Draw, type Gen } from '../../generators/index.js';
import { SEED } from '../support/generated-states.js';

/** Captures the random generator fast-check hands to an arbitrary, to call ours with it. */
class RandomCapture extends fc.Arbitrary<fc.Random> {
  generate(mrng: fc.Random): fc.Value<fc.Random> {
    return new fc.Value(mrng.clone(), undefined);
  }
  canShrinkWithoutContext(value: unknown): value is fc.Random {
    void value;
    return false;
  }
  shrink(): fc.Stream<fc.Value<fc.Random>> {
    return fc.Stream.nil();
  }
}

describe('tables', () => {
  it('draw by weight, the first value the simplest', () => {
    const t = new Table(['a', 'b', 'c'], [6, 3, 1]);
    const xs = fc.sample(
      arb((d) => d.pick(t)),
      { numRuns: 6000, seed: SEED },
    );
    const share = (v: string) => xs.filter((x) => x === v).length / xs.length;
    expect(share('a')).toBeGreaterThan(0.55);
    expect(share('a')).toBeLessThan(0.65);
    expect(share('c')).toBeGreaterThan(0.07);
    expect(share('c')).toBeLessThan(0.13);
    // Mixed tables share a part's weight among its values.
    const m = mix([['x', 'y'], 1], [t, 1]);
    expect(m.values).toEqual(['x', 'y', 'a', 'b', 'c']);
    expect(m.weight(0)).toBe(m.weight(1));
    expect(m.weight(2)).toBeGreaterThan(m.weight(3));
  });
});

describe('tapes', () => {
  const gen: Gen<{ n: number; xs: number[]; tag: string | null }> = (d: Draw) => ({
    n: d.int(10),
    xs: d.list((g) => g.int(100), lengths(0, 5)),
    tag: d.maybe((g) => g.pick(new Table(['p', 'q'])), new Table([false, true])),
  });

  it('replay: an empty tape is the simplest value, a recorded one the same value, any edit decodes', () => {
    expect(replay(gen, []).value).toEqual({ n: 0, xs: [], tag: null });
    const r = replay(gen, [3, [], [1, 1]]);
    expect(r.value).toEqual({ n: 3, xs: [], tag: 'q' });
    expect(replay(gen, r.tape).value).toEqual(r.value);
    // Out-of-range choices are clamped, wrong shapes read as zeros.
    expect(replay(gen, [99, 7, 'x' as unknown as number]).value).toEqual({ n: 9, xs: [], tag: null });
  });

  it('same seed, same values; shrinking reaches the smallest failing value', () => {
    const a = fc.sample(arb(gen), { numRuns: 300, seed: SEED });
    expect(fc.sample(arb(gen), { numRuns: 300, seed: SEED })).toEqual(a);
    const r = fc.check(
      fc.property(arb(gen), (v) => !(v.xs.some((x) => x >= 40) && v.tag !== null)),
      { seed: SEED, numRuns: 1000 },
    );
    expect(r.failed).toBe(true);
    expect(r.counterexample?.[0]).toEqual({ n: 0, xs: [40], tag: 'p' });
    // The path replays the shrunk value exactly.
    const again = fc.check(
      fc.property(arb(gen), (v) => !(v.xs.some((x) => x >= 40) && v.tag !== null)),
      { seed: SEED, path: r.counterexamplePath ?? '', numRuns: 1, endOnFailure: true },
    );
    expect(again.counterexample?.[0]).toEqual(r.counterexample?.[0]);
  });

  it('the tape recorded for shrinking a generated case decodes to that case', () => {
    for (const shape of ['single', 'sequence', 'dns'] as const) {
      const g = caseGen({ kind: 'both', shape });
      for (const mrng of fc.sample(new RandomCapture(), { numRuns: 100, seed: SEED })) {
        const v = arb(g).generate(mrng, undefined);
        const tape = tapeOf(g, v.context);
        if (!tape) throw new Error('a generated case has no tape');
        expect(replay(g, tape).value).toEqual(v.value);
      }
    }
  });

  it('firstWith keeps the first draw with the property, and the first draw when none has it', () => {
    const n: Gen<number> = (d) => d.int(1000);
    const xs = fc.sample(
      firstWith(n, 64, (v) => v % 7 === 0),
      { numRuns: 50, seed: SEED },
    );
    expect(xs.every((v) => v % 7 === 0)).toBe(true);
    const ys = fc.sample(
      firstWith(n, 4, () => false),
      { numRuns: 50, seed: SEED },
    );
    expect(ys).toEqual(fc.sample(arb(n), { numRuns: 50, seed: SEED }));
  });
});
