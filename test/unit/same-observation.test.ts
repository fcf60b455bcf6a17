// sameObservation and sameTrace (properties/observation.ts) decide exactly what comparing
// observationKey and traceKey texts decides: on fields drawn from values whose JSON texts collide
// in every way JSON.stringify allows (key order, undefined members, -0, NaN, toJSON), and on the
// model's traces of generated cases, compared with each other and with copies changed in one field.
// sameData (what lets the judge skip a run) says the same only of values that are deeply equal.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDeepStrictEqual } from 'node:util';
import { observationKey, sameData, sameObservation, sameTrace, traceKey } from '../../properties/observation.js';
import { caseArb } from '../../generators/index.js';
import { outcomes } from '../../model/impl/index.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import type { Observation } from '../../model/domain.js';

const fn = () => 1;
const sym = Symbol('s');
const LEAVES: unknown[] = [null, undefined, 0, -0, NaN, Infinity, 1, '1', 'a', true, false, fn, sym, new Date(0), '1970-01-01T00:00:00.000Z', 'null'];
/** Plain objects over two keys in either order, members possibly undefined; arrays of them: over these leaves. */
function valuesOf(leaves: readonly unknown[]): fc.Arbitrary<unknown> {
  const leaf = fc.constantFrom(...leaves);
  const member = fc.oneof(leaf, fc.array(leaf, { maxLength: 2 }));
  return fc.oneof(
    leaf,
    fc.array(leaf, { maxLength: 2 }),
    fc.tuple(member, member, fc.boolean(), fc.boolean()).map(([x, y, swap, dropY]) => {
      const o: Record<string, unknown> = swap ? { y, x } : { x, y };
      if (dropY) delete o.y;
      return o;
    }),
    fc.array(fc.record({ x: member }, { noNullPrototype: true }), { maxLength: 2 }),
  );
}
const value = valuesOf(LEAVES);
const FIELDS = ['op', 'sock', 'peer', 'error', 'storage', 'inSockhash', 'stream', 'arrivedAt', 'from', 'data'] as const;
const observation = fc.record({
  op: fc.constantFrom('connect', 'sendto', 'recvfrom'),
  sock: fc.constantFrom(1, 2, null),
  peer: value,
  error: fc.constantFrom(undefined, null, 'ECONNREFUSED', 'EPERM'),
  storage: value,
  inSockhash: fc.constantFrom(undefined, true, false, null),
  stream: value,
  arrivedAt: value,
  from: value,
  data: value,
}) as fc.Arbitrary<unknown> as fc.Arbitrary<Observation>;

const HOW = ['same', 'same', 'other', 'json', 'reversed'] as const;

/** `v` as is, `other`, v through a JSON round trip (the same text), or v's members in reverse order (another text). */
function variant(v: unknown, other: unknown, how: (typeof HOW)[number]): unknown {
  if (how === 'same') return v;
  if (how === 'other') return other;
  if (how === 'json') return (JSON.parse(JSON.stringify([v])) as unknown[])[0];
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Date) return v;
  return Object.fromEntries(Object.entries(v).reverse());
}

/**
 * Checks `check(a, b)` on 20,000 pairs: a drawn from `arb`, b a with some fields drawn again or
 * rewritten (into the same JSON, or the same members in another order); returns how many pairs
 * `check` called alike, which must be many for the agreement to say anything.
 */
function onVariedPairs(arb: fc.Arbitrary<Observation>, seed: number, check: (a: Observation, b: Observation) => boolean): number {
  let alike = 0;
  fc.assert(
    fc.property(arb, arb, fc.array(fc.constantFrom(...HOW), { minLength: FIELDS.length, maxLength: FIELDS.length }), (a, other, how) => {
      const b = Object.fromEntries(FIELDS.map((f, i) => [f, variant(a[f], other[f], how[i]!)])) as unknown as Observation;
      if (check(a, b)) alike++;
    }),
    { numRuns: 20000, seed },
  );
  return alike;
}

/** The model's traces of `n` generated sequence cases. */
function modelTraces(seed: number, n: number): (readonly Observation[])[] {
  const cases = fc.sample(caseArb({ kind: 'both', shape: 'sequence' }), { seed, numRuns: n });
  return cases.flatMap((c) => outcomes(c, DEFAULT_ENVIRONMENT).map((t) => t.observations));
}

describe('sameObservation', () => {
  it('agrees with comparing observation keys on values whose JSON texts collide', () => {
    const equal = onVariedPairs(observation, 7, (a, b) => {
      const want = observationKey(a) === observationKey(b);
      expect(sameObservation(a, b)).toBe(want);
      expect(sameObservation(a, a)).toBe(true);
      return want;
    });
    // The draws must hit matches that differ as values, or the agreement would say little.
    expect(equal).toBeGreaterThan(200);
  });

  it('agrees with comparing trace keys on the model traces of generated cases', () => {
    const traces = modelTraces(3, 150);
    const changed = traces.map((t) => t.map((o, i) => (i === t.length - 1 ? { ...o, peer: o.peer ? { ...o.peer, port: o.peer.port + 1 } : { addr: '10.0.0.1', port: 1 } } : o)));
    const all = [...traces, ...changed, ...traces.map((t) => structuredClone(t))];
    let same = 0;
    for (let i = 0; i < all.length; i++) {
      for (let j = i; j < Math.min(all.length, i + 40); j++) {
        const want = traceKey(all[i]!) === traceKey(all[j]!);
        if (want) same++;
        expect(sameTrace(all[i]!, all[j]!)).toBe(want);
      }
    }
    expect(same).toBeGreaterThan(all.length);
  });
});

describe('sameData', () => {
  it('says the same exactly of deeply equal values (plain data: no NaN, -0 or dates)', () => {
    const plainValue = valuesOf(LEAVES.filter((v) => !Number.isNaN(v) && !Object.is(v, -0) && !(v instanceof Date)));
    const plainObservation = fc.record(Object.fromEntries(FIELDS.map((f) => [f, plainValue])), { noNullPrototype: true }) as fc.Arbitrary<unknown> as fc.Arbitrary<Observation>;
    const equal = onVariedPairs(plainObservation, 8, (a, b) => {
      const want = isDeepStrictEqual(a, b);
      expect(sameData(a, b)).toBe(want);
      return want;
    });
    expect(equal).toBeGreaterThan(200);
  });

  it('tells an errno name, null against absent, and an undefined member apart, which sameTrace does not', () => {
    const traces = modelTraces(5, 100);
    for (const t of traces) expect(sameData(t, structuredClone(t))).toBe(true);
    const failed = traces.find((t) => t.some((o) => o.error));
    expect(failed).toBeDefined();
    const renamed = failed!.map((o) => (o.error ? { ...o, error: 'EXDEV' } : o));
    expect(sameTrace(failed!, renamed)).toBe(true);
    expect(sameData(failed!, renamed)).toBe(false);
    const t = traces.find((x) => x.some((o) => o.storage === null))!;
    const absent = t.map((o) => (o.storage === null ? { ...o, storage: undefined } : o));
    expect(sameTrace(t, absent)).toBe(true);
    expect(sameData(t, absent)).toBe(false);
    expect(sameData({ x: 1, y: undefined }, { x: 1 })).toBe(false);
    expect(sameData([1, 2], { 0: 1, 1: 2 })).toBe(false);
    expect(sameData(NaN, NaN)).toBe(false);
  });
});
