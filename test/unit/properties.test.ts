// The checker itself: the reference model refines the spec on generated cases, runs are
// deterministic, and a planted defect is found, shrunk to a 1-minimal case and replayed exactly.

import { describe, expect, it } from 'vitest';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { isConsistent } from '../../generators/index.js';
import { judge } from '../../properties/judge.js';
import { observationKey } from '../../properties/observation.js';
import type { Observation } from '../../model/domain.js';
import { caseSize, isOneMinimal } from '../../properties/minimize.js';
import { replayCounterexample, runChecks, type RunOptions } from '../../properties/run.js';
import { TlvDroppingExecutor } from '../helpers/planted.js';

const env = DEFAULT_ENVIRONMENT;

describe('reference model against the spec', () => {
  it('holds on 1,500 generated cases of each state kind, every invariant exercised', async () => {
    const r = await runChecks({ seed: 7, runs: 3000, states: 'both', env });
    expect(r.counterexamples).toEqual([]);
    expect(r.cases).toBeGreaterThanOrEqual(2900);
    expect(r.statistics.stateKind.consistent).toBeGreaterThan(1400);
    expect(r.statistics.stateKind.raw).toBeGreaterThan(1400);
    for (const inv of r.invariants) expect(inv.checked, inv.name).toBeGreaterThan(0);
  });

  it('gives the same cases and verdicts for the same seed', async () => {
    const a = await runChecks({ seed: 99, runs: 400, states: 'both', env });
    const b = await runChecks({ seed: 99, runs: 400, states: 'both', env });
    const c = await runChecks({ seed: 100, runs: 400, states: 'both', env });
    expect(b.statistics.toJSON()).toEqual(a.statistics.toJSON());
    expect(b.invariants).toEqual(a.invariants);
    expect(c.statistics.toJSON()).not.toEqual(a.statistics.toJSON());
  });
});

describe('a time limit', () => {
  it('is shared out over the phases, so raw states and sequences get their turn', async () => {
    const r = await runChecks({ seed: 3, runs: 1_000_000, timeLimitMs: 1500, states: 'both', env });
    expect(r.interrupted).toBe(true);
    expect(r.statistics.stateKind.consistent).toBeGreaterThan(0);
    expect(r.statistics.stateKind.raw).toBeGreaterThan(0);
  });
});

describe('a planted defect: an executor that never sends the TLV', () => {
  const opts: RunOptions = { seed: 42, runs: 2000, states: 'consistent', env, executor: new TlvDroppingExecutor() };

  it('is found, shrunk to a 1-minimal case, and replayed from its seed and path', async () => {
    const r = await runChecks(opts);
    expect(r.counterexamples).toHaveLength(1);
    const cx = r.counterexamples[0]!;
    expect(cx.failure.invariant).toBe('tlv-prefix');
    expect(cx.case.kind).toBe('consistent');
    expect(isConsistent(cx.case.state)).toEqual([]);

    // A small case: one frontend and the entries it leads to, one of them with a waypoint (a
    // service's or a backend's: which one shrinking reaches depends on the first failing case);
    // socket, connect, send.
    const { frontends, services, endpoints, backends } = cx.case.state;
    expect(frontends).toHaveLength(1);
    expect([...services, ...backends].some((x) => x.waypoint.port !== 0)).toBe(true);
    expect(services.length + endpoints.length + backends.length).toBeLessThanOrEqual(3);
    expect(cx.case.ops.map((o) => o.op)).toEqual(['socket', 'connect', 'send']);
    expect(cx.size).toBe(caseSize(cx.case));

    const fails = async (c: typeof cx.case) => (await judge(c, opts)).failure?.invariant === 'tlv-prefix';
    expect(await isOneMinimal(cx.case, fails, { consistencyViolations: isConsistent })).toBe(true);

    const [kind, shape] = cx.phase.split('/') as ['consistent', 'single' | 'sequence'];
    const again = await replayCounterexample({ kind, shape }, cx.seed, cx.path, opts);
    expect(again?.case).toEqual(cx.case);
    expect(again?.failure.invariant).toBe(cx.failure.invariant);
  });

  it('is not reported against the faithful model', async () => {
    const r = await runChecks({ ...opts, executor: undefined, runs: 500 });
    expect(r.counterexamples).toEqual([]);
  });
});

describe('observations compared exactly, datagram fields included', () => {
  it('a sendto that arrived elsewhere, or a recvfrom told another source or given other bytes, is a different observation', () => {
    const sent: Observation = { op: 'sendto', sock: 0, arrivedAt: { addr: '10.0.0.1', port: 53 }, error: null, storage: null };
    const got: Observation = { op: 'recvfrom', sock: 0, from: { addr: '10.0.0.1', port: 53 }, data: 'a', error: null, storage: null };
    expect(observationKey({ ...sent })).toBe(observationKey(sent));
    expect(observationKey({ ...sent, arrivedAt: { addr: '10.0.0.2', port: 53 } })).not.toBe(observationKey(sent));
    expect(observationKey({ ...got, from: { addr: '10.0.0.2', port: 53 } })).not.toBe(observationKey(got));
    expect(observationKey({ ...got, data: 'b' })).not.toBe(observationKey(got));
    // The errno itself is not compared, its presence is.
    expect(observationKey({ ...got, from: null, data: null, error: 'EAGAIN' })).toBe(observationKey({ ...got, from: null, data: null, error: 'EWOULDBLOCK' }));
  });
});
