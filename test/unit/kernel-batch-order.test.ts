// The kernel worker runs a batch grouped by the start its cases ask for (startOrder,
// bpf/kernel/cases.ts: enrolment and enable_monitoring) and the parent puts the observations back
// in batch order (inBatchOrder, bpf/kernel/executor.ts). On any batch: the order is a permutation
// that keeps each group in batch order, switches start once per other kind at most (and enable_monitoring once), and undoing it
// gives every case its own observations. Starts are many kinds (control connects, none, km_manage
// written with a value; each with monitoring on or off): the number of switches is at most the
// number of kinds the batch holds.
// (test/kernel/dns.test.ts and the kernel agreement tests check the real worker on
// batches that mix enrolments.)

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { startKey, startKeyOf, startOrder } from '../../bpf/kernel/cases.js';
import { inBatchOrder } from '../../bpf/kernel/executor.js';
import { enrolmentFields, type Case, type Observation, type StartEnrolment } from '../../model/domain.js';

type Start = [StartEnrolment, boolean];
const caseOf = ([e, monitoring]: Start, n: number): Case => ({
  state: { frontends: [], services: [], endpoints: [], backends: [] },
  kind: 'consistent',
  ...enrolmentFields(e),
  ...(monitoring ? {} : { monitoringOff: true as const }),
  ops: [{ op: 'close', sock: n }],
});
const startArb = fc.tuple(fc.constantFrom<StartEnrolment>(true, false, 0, 7), fc.boolean());
const batchArb = fc.array(startArb, { maxLength: 40 }).map((es) => es.map((e, n) => caseOf(e, n)));
const currentArb = fc.oneof(
  startArb.map(([e, m]) => startKeyOf(e, m)),
  fc.constant('unknown'),
  fc.boolean().map((m) => startKeyOf('unknown', m)),
);

/** How often the start (or, with `part`, the part of it `part` takes) changes when the cases run in `order`, starting from `current`. */
function switches(cases: readonly Case[], order: readonly number[], current: string, part = (key: string) => key): number {
  let now = current === 'unknown' ? 'unknown' : part(current);
  let n = 0;
  for (const i of order) {
    const e = part(startKey(cases[i]!));
    if (now !== 'unknown' && e !== now) n++;
    now = e;
  }
  return n;
}

describe('kernel batch order', () => {
  it('is a permutation keeping batch order within each start (enrolment and monitoring), switching once per other one', () => {
    fc.assert(
      fc.property(batchArb, currentArb, (cases, current) => {
        const order = startOrder(cases, current);
        expect([...order].sort((a, b) => a - b)).toEqual(cases.map((_, i) => i));
        const kinds = new Set(cases.map(startKey));
        for (const want of kinds) {
          const group = order.filter((i) => startKey(cases[i]!) === want);
          expect(group).toEqual([...group].sort((a, b) => a - b));
        }
        // The first case switches only if the namespace is not already as it asks, and never when it is unknown.
        const first = order.length ? startKey(cases[order[0]!]!) : current;
        expect(switches(cases, order, current)).toBeLessThanOrEqual((current !== 'unknown' && first !== current ? 1 : 0) + Math.max(0, kinds.size - 1));
        expect(order.length === 0 || current === 'unknown' || !kinds.has(current) || first === current).toBe(true);
        // enable_monitoring (a key's last digit) changes once a batch at most, the first case included.
        expect(switches(cases, order, current, (k) => k.slice(-1))).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('gives every case back its own observations', () => {
    fc.assert(
      fc.property(batchArb, currentArb, (cases, current) => {
        const order = startOrder(cases, current);
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
