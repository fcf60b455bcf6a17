// The kernel worker runs a batch grouped by the enrolment its cases ask for (enrolmentOrder,
// bpf/kernel/cases.ts) and the parent puts the observations back in batch order (inBatchOrder,
// bpf/kernel/executor.ts). On any batch: the order is a permutation that keeps each group in
// batch order, switches enrolment at most twice, and undoing it gives every case its own
// observations. (test/kernel/dns.test.ts and the kernel agreement tests check the real worker on
// batches that mix enrolments.)

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { enrolmentOrder } from '../../bpf/kernel/cases.js';
import { inBatchOrder } from '../../bpf/kernel/executor.js';
import type { Case, Observation } from '../../model/domain.js';

const caseOf = (enrolled: boolean, n: number): Case => ({ state: { frontends: [], services: [], endpoints: [], backends: [] }, kind: 'consistent', enrolled, ops: [{ op: 'close', sock: n }] });
const batchArb = fc.array(fc.boolean(), { maxLength: 40 }).map((flags) => flags.map((e, n) => caseOf(e, n)));
const currentArb = fc.constantFrom<boolean | 'unknown'>(true, false, 'unknown');

/** How often enrolment changes when the cases run in `order`, starting from `current`. */
function switches(cases: readonly Case[], order: readonly number[], current: boolean | 'unknown'): number {
  let now = current;
  let n = 0;
  for (const i of order) {
    if (now !== 'unknown' && cases[i]!.enrolled !== now) n++;
    now = cases[i]!.enrolled;
  }
  return n;
}

describe('kernel batch order', () => {
  it('is a permutation keeping batch order within each enrolment, with at most one switch after the first case', () => {
    fc.assert(
      fc.property(batchArb, currentArb, (cases, current) => {
        const order = enrolmentOrder(cases, current);
        expect([...order].sort((a, b) => a - b)).toEqual(cases.map((_, i) => i));
        for (const want of [true, false]) {
          const group = order.filter((i) => cases[i]!.enrolled === want);
          expect(group).toEqual([...group].sort((a, b) => a - b));
        }
        // The first case switches only if the namespace is not already as it asks, and never when it is unknown.
        const first = order.length ? cases[order[0]!]!.enrolled : current;
        expect(switches(cases, order, current)).toBeLessThanOrEqual((current !== 'unknown' && first !== current ? 1 : 0) + 1);
        expect(order.length === 0 || current === 'unknown' || cases.every((c) => c.enrolled !== current) || first === current).toBe(true);
      }),
    );
  });

  it('gives every case back its own observations', () => {
    fc.assert(
      fc.property(batchArb, currentArb, (cases, current) => {
        const order = enrolmentOrder(cases, current);
        // What the worker returns: case i's observations at the position where it ran.
        const own = (i: number): Observation[] => [{ op: 'close', sock: i, error: null } as unknown as Observation];
        const ran = order.map(own);
        expect(inBatchOrder(ran, order)).toEqual(cases.map((_, i) => own(i)));
      }),
    );
  });

  it('refuses an order that is not a permutation of the observations', () => {
    for (const order of [[0], [0, 0], [0, 2], [1, -1], undefined as unknown as number[]]) {
      expect(() => inBatchOrder([[], []], order)).toThrow(/answered 2 cases in an order that is not a permutation/);
    }
  });
});
