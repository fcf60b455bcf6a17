// Choice points: prandom (and, on request, helper failures) explored depth first, so that a case
// yields every outcome it can have; replaying a path gives its outcome back.

import { describe, expect, it } from 'vitest';
import { createVmExecutor, distinctOutcomes } from '../../bpf/vm/executor.js';
import { explore, ScriptedChoices, SeededChoices } from '../../bpf/runner/choices.js';
import { lbDomain } from '../../model/lb-domain.js';
import { OutcomeSetLimitError } from '../../model/executor.js';
import { LbPolicy, NO_WAYPOINT, type Case, type MapState } from '../../model/domain.js';
import { dataPathObjects } from '../fixtures/vm/helpers.js';
import { buildMutant } from '../../cli/mutants.js';

const ports = (...p: number[]) => [...p, ...new Array<number>(10 - p.length).fill(0)];
const counts = (...c: number[]) => [...c, ...new Array<number>(7 - c.length).fill(0)];

function lbState(count: number, indices: number[], waypoint = NO_WAYPOINT): MapState {
  return {
    frontends: [
      { addr: '10.96.0.10', upstreamId: 1 },
      { addr: '10.96.0.20', upstreamId: 2 },
    ],
    services: [
      { id: 1, endpointCounts: counts(count), lbPolicy: LbPolicy.random, servicePorts: ports(80), targetPorts: ports(8080), waypoint },
      { id: 2, endpointCounts: counts(2), lbPolicy: LbPolicy.random, servicePorts: ports(15008), targetPorts: ports(15008), waypoint: NO_WAYPOINT },
    ],
    endpoints: [
      ...indices.map((i) => ({ serviceId: 1, prio: 0, index: i, backendUid: 100 + i })),
      { serviceId: 2, prio: 0, index: 1, backendUid: 201 },
      { serviceId: 2, prio: 0, index: 2, backendUid: 202 },
    ],
    backends: [
      ...indices.map((i) => ({ uid: 100 + i, addr: `10.0.1.${i}`, services: [1], waypoint: NO_WAYPOINT })),
      { uid: 201, addr: '10.0.2.1', services: [2], waypoint: NO_WAYPOINT },
      { uid: 202, addr: '10.0.2.2', services: [2], waypoint: NO_WAYPOINT },
    ],
  };
}

const connectCase = (state: MapState, family: 'inet' | 'inet6' = 'inet'): Case => ({
  state,
  kind: 'consistent',
  enrolled: true,
  ops: [
    { op: 'socket', sock: 1, family, protocol: 'tcp' },
    { op: 'connect', sock: 1, dest: { addr: family === 'inet' ? '10.96.0.10' : '::ffff:10.96.0.10', port: 80 } },
  ],
});

const peers = (outs: ReturnType<typeof distinctOutcomes>) => outs.map((o) => o.observations[1]?.peer?.addr ?? null).sort();

describe('outcome sets', () => {
  it('random over 3 endpoints gives exactly 3 distinct peers', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects() });
    const outs = distinctOutcomes(ex.outcomeSet(connectCase(lbState(3, [1, 2, 3]))));
    expect(peers(outs)).toEqual(['10.0.1.1', '10.0.1.2', '10.0.1.3']);
    // each outcome comes with the prandom value that produced it: index = value % 3 + 1
    for (const o of outs) expect(`10.0.1.${((o.choices[0]?.value ?? -1) % 3) + 1}`).toBe(o.observations[1]?.peer?.addr);
  });

  it('a missing endpoint index is one more outcome (no rewrite), found without enumerating every value', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects() });
    const c = connectCase(lbState(1_000_000, [1, 3]));
    expect(lbDomain(c)).toEqual([0, 1, 2]);
    const outs = distinctOutcomes(ex.outcomeSet(c));
    expect(peers(outs)).toEqual(['10.0.1.1', '10.0.1.3', '10.96.0.10']);
  });

  it('every pass draws: a waypoint chain explores the product of its draws', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects() });
    // service 1 (3 endpoints, waypoint 10.96.0.20:15008) -> service 2 draws among 2 backends
    const c = connectCase(lbState(3, [1, 2, 3], { addr: '10.96.0.20', port: 15008 }));
    const all = ex.outcomeSet(c);
    expect(all.every((o) => o.choices.length === 1)).toBe(true); // the waypoint pass does not draw
    expect(peers(distinctOutcomes(all))).toEqual(['10.0.2.1', '10.0.2.2']);
    const sixes = distinctOutcomes(ex.outcomeSet(connectCase(lbState(3, [1, 2, 3], { addr: '10.96.0.20', port: 15008 }), 'inet6')));
    expect(peers(sixes)).toEqual(['::ffff:10.0.2.1', '::ffff:10.0.2.2']);
  });

  it('draws are counted per pass: two connects of one case draw once each, and a second draw in one pass shows', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects() });
    const one = connectCase(lbState(3, [1, 2, 3]));
    const two: Case = { ...one, ops: [...one.ops, { op: 'socket', sock: 2, family: 'inet', protocol: 'tcp' }, { op: 'connect', sock: 2, dest: { addr: '10.96.0.10', port: 80 } }] };
    const all = ex.outcomeSet(two);
    expect(all.every((o) => o.choices.length === 2 && o.mostDrawsInAPass === 1)).toBe(true);
    // The program with a retry after a missing endpoint draws twice in the pass that missed.
    const retry = await createVmExecutor({ objects: buildMutant('lb-redraw-on-miss') });
    const missing = retry.outcomeSet(connectCase(lbState(3, [1, 3])));
    expect(Math.max(...missing.map((o) => o.mostDrawsInAPass))).toBe(2);
  });

  it('a waypoint loop drawing at every pass is explored in linear, not exponential, paths (states are merged)', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects() });
    // VIP 10.96.0.20 -> service 2 (2 endpoints) -> backends whose waypoint is 10.96.0.20 again: 34 passes, 2 draws each.
    const base = lbState(1, [1]);
    const state: MapState = {
      ...base,
      backends: base.backends.map((b) => (b.uid >= 201 ? { ...b, waypoint: { addr: '10.96.0.20', port: 15008 } } : b)),
    };
    const c: Case = {
      ...connectCase(state),
      ops: [
        { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
        { op: 'connect', sock: 1, dest: { addr: '10.96.0.20', port: 15008 } },
      ],
    };
    const all = ex.outcomeSet(c, { maxRuns: 1000 });
    // Draws are counted per pass: every tail call starts a pass of its own.
    expect(all.some((o) => o.choices.length > 1)).toBe(true);
    for (const o of all) expect(o.mostDrawsInAPass).toBe(1);
    const outs = distinctOutcomes(all);
    expect(outs.length).toBe(1);
    expect(outs[0]!.observations[1]).toMatchObject({ peer: { addr: '10.96.0.20', port: 15008 }, storage: { viaWaypoint: true } });
    expect(all.length).toBeLessThan(100);
  });

  it('the pass memo skips the draws of a waypoint loop that lead back to a state already explored: the same outcomes, a fraction of the runs', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects() });
    // VIP 10.96.0.20 -> service 2 (2 endpoints) -> backends whose waypoint is 10.96.0.20 again: 34 passes, a draw each.
    const base = lbState(1, [1]);
    const state: MapState = { ...base, backends: base.backends.map((b) => (b.uid >= 201 ? { ...b, waypoint: { addr: '10.96.0.20', port: 15008 } } : b)) };
    const c: Case = { ...connectCase(state), ops: [connectCase(state).ops[0]!, { op: 'connect', sock: 1, dest: { addr: '10.96.0.20', port: 15008 } }] };
    let runs = 0;
    const runCase = ex.runCase.bind(ex);
    ex.runCase = (k, choices) => {
      runs++;
      return runCase(k, choices);
    };
    const domain = { prandomDomain: [0, 1, 2, 0xffffffff], maxRuns: 20_000 };
    const keys = (outs: ReturnType<typeof ex.outcomeSet>) => [...new Set(outs.map((o) => JSON.stringify(o.observations)))].sort();
    const replayed = keys(ex.outcomeSet(c, { ...domain, passMemo: false }));
    const replayRuns = runs;
    runs = 0;
    const memo = keys(ex.outcomeSet(c, domain));
    expect(memo).toEqual(replayed);
    expect(memo.length).toBe(1);
    expect(runs * 5).toBeLessThan(replayRuns);
  });

  it('helper failures as choice points: storage creation failing leaves the connect untouched', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects() });
    const outs = distinctOutcomes(ex.outcomeSet(connectCase(lbState(1, [1])), { failures: ['storage-create'] }));
    const summary = outs.map((o) => [o.observations[1]?.peer?.addr, o.observations[1]?.storage === null]).sort();
    expect(summary).toEqual([
      ['10.0.1.1', false],
      ['10.96.0.10', true],
    ]);
    const failed = outs.find((o) => o.observations[1]?.storage === null)!;
    expect(failed.choices).toContainEqual({ point: 'storage-create', value: 1 });
  });

  it('replaying a path gives its observations back; run() is deterministic per seed, as sameDrawsEachRun says', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects(), seed: 7 });
    expect(ex.sameDrawsEachRun).toBe(true);
    const c = connectCase(lbState(3, [1, 2, 3]));
    for (const o of ex.outcomeSet(c)) expect(ex.runCase(c, new ScriptedChoices(o.choices))).toEqual(o.observations);
    const a = await ex.run([c, c]);
    expect(a[0]).toEqual(a[1]);
    expect(ex.runCase(c, new SeededChoices(7))).toEqual(a[0]);
  });
});

describe('explore', () => {
  it('enumerates a product depth first and stops at maxRuns', () => {
    const paths = explore((ch) => [ch.prandom(), ch.prandom()], { prandomDomain: [0, 1, 2] });
    expect(paths.map((p) => p.result)).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
      [2, 0],
      [2, 1],
      [2, 2],
    ]);
    expect(() => explore((ch) => ch.prandom(), { prandomDomain: [0, 1, 2], maxRuns: 2 })).toThrow(/more than 2 paths/);
    // Typed, so that a capped exact set (properties/judge.ts) is told from a real error.
    expect(() => explore((ch) => ch.prandom(), { prandomDomain: [0, 1, 2], maxRuns: 2 })).toThrow(OutcomeSetLimitError);
    let calls = 0;
    expect(() => explore((ch) => (calls++ === 0 ? ch.prandom() : ch.fail('push-data')), { prandomDomain: [0, 1], failures: ['push-data'] })).toThrow(/not deterministic/);
  });

  it('forecast: gives up after the first run whose choice points make more combinations than it allows, not before', () => {
    // Three draws of three values: 27 combinations, known from the first path.
    let runs = 0;
    const three = (ch: { prandom(): number }) => (runs++, [ch.prandom(), ch.prandom(), ch.prandom()]);
    expect(() => explore(three, { prandomDomain: [0, 1, 2], forecast: 26 })).toThrow(OutcomeSetLimitError);
    expect(runs).toBe(1);
    runs = 0;
    expect(explore(three, { prandomDomain: [0, 1, 2], forecast: 27 })).toHaveLength(27);
    expect(runs).toBe(27);
    // A deeper path met later (value 2 draws twice more): the forecast sees it on the run that takes it.
    runs = 0;
    const uneven = (ch: { prandom(): number }) => (runs++, ch.prandom() === 2 ? [ch.prandom(), ch.prandom()] : []);
    expect(() => explore(uneven, { prandomDomain: [0, 1, 2], forecast: 8 })).toThrow(/path 3's 3 choice points make 27 combinations, more than 8/);
    expect(runs).toBe(3);
  });

  it('skips the alternatives its redundant() option names, and only those', () => {
    const run = (ch: { prandom(): number }) => [ch.prandom(), ch.prandom()];
    const paths = explore(run, { prandomDomain: [0, 1, 2], redundant: (position, value) => position === 1 && value === 2 });
    expect(paths.map((p) => p.result)).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [2, 0],
      [2, 1],
    ]);
  });

  it('branches only on the failures it was asked for', () => {
    const paths = explore((ch) => [ch.fail('map-update'), ch.fail('push-data')], { prandomDomain: [0], failures: ['push-data'] });
    expect(paths.map((p) => p.result)).toEqual([
      [false, false],
      [false, true],
    ]);
  });
});
