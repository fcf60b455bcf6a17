// Coverage: instruction and branch counts per program across a run, mapped to source lines, the
// same under both engines, growing as cases reach more code, and resettable.

import { describe, expect, it } from 'vitest';
import { createVmExecutor, type VmExecutor } from '../../bpf/vm/executor.js';
import { formatCoverage, mergeShardCoverage, type CoverageSummary } from '../../bpf/vm/coverage.js';
import { LbPolicy, NO_WAYPOINT, type Case, type MapState } from '../../model/domain.js';
import { dataPathObjects } from '../fixtures/vm/helpers.js';

const ports = (...p: number[]) => [...p, ...new Array<number>(10 - p.length).fill(0)];
const STATE: MapState = {
  frontends: [{ addr: '10.96.0.10', upstreamId: 1 }],
  services: [{ id: 1, endpointCounts: [2, 0, 0, 0, 0, 0, 0], lbPolicy: LbPolicy.random, servicePorts: ports(80), targetPorts: ports(8080), waypoint: NO_WAYPOINT }],
  endpoints: [
    { serviceId: 1, prio: 0, index: 1, backendUid: 101 },
    { serviceId: 1, prio: 0, index: 2, backendUid: 102 },
  ],
  backends: [
    { uid: 0, addr: '10.0.0.53', services: [], waypoint: NO_WAYPOINT },
    { uid: 101, addr: '10.0.1.1', services: [1], waypoint: NO_WAYPOINT },
    { uid: 102, addr: '10.0.1.2', services: [1], waypoint: NO_WAYPOINT },
  ],
};
const connectTo = (addr: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): Case => ({
  state: STATE,
  kind: 'consistent',
  enrolled: true,
  ops: [
    { op: 'socket', sock: 1, family: 'inet', protocol },
    { op: 'connect', sock: 1, dest: { addr, port } },
  ],
});

const prog = (s: CoverageSummary, name: string) => s.programs.find((p) => p.program === name)!;

describe('coverage', () => {
  it('starts at zero, counts what ran, maps it to lines, and grows as cases reach more code', async () => {
    const ex = await createVmExecutor({ objects: dataPathObjects() });
    ex.resetCoverage();
    const zero = ex.coverage();
    expect(zero.executedInstructions).toBe(0);
    expect(zero.programs.map((p) => p.program).sort()).toEqual([
      'bpf_redirect_dns_send',
      'bpf_restore_dns_recv',
      'bpf_restore_dns_recv6',
      'cgroup_connect4_prog',
      'cgroup_connect6_prog',
      'sendmsg_prog',
      'sockops_prog',
    ]);

    await ex.run([connectTo('10.96.0.10', 80)]);
    const first = prog(ex.coverage(), 'cgroup_connect4_prog');
    expect(first.executedInstructions).toBeGreaterThan(50);
    expect(first.executedInstructions).toBeLessThan(first.instructions);
    expect(first.lines.some((l) => l.file.endsWith('route.h') && l.hits > 0)).toBe(true);
    const dnsLines = first.lines.filter((l) => l.file.endsWith('dns.h'));
    expect(dnsLines.length).toBeGreaterThan(0);
    expect(first.uncoveredLines.some((l) => l.startsWith('src/dns.h:'))).toBe(true);
    expect(first.branches).toBeGreaterThan(10);
    expect(prog(ex.coverage(), 'cgroup_connect6_prog').executedInstructions).toBeGreaterThan(0); // enrolment

    await ex.run([connectTo('8.8.8.8', 53, 'udp')]);
    const second = prog(ex.coverage(), 'cgroup_connect4_prog');
    expect(second.executedInstructions).toBeGreaterThan(first.executedInstructions);
    expect(second.uncoveredLines.filter((l) => l.startsWith('src/dns.h:')).length).toBeLessThan(first.uncoveredLines.filter((l) => l.startsWith('src/dns.h:')).length);
    expect(second.branchesBothWays).toBeGreaterThanOrEqual(first.branchesBothWays);

    const text = formatCoverage(ex.coverage());
    expect(text).toMatch(/cgroup_connect4_prog \(cgroup\/connect4\): instructions \d+\/\d+ \(\d+\.\d%\), branches both ways \d+\/\d+/);
    ex.resetCoverage();
    expect(ex.coverage().executedInstructions).toBe(0);
  });

  it("of two runs merges (as merge does shards') to the coverage of one run of both", async () => {
    const a = await createVmExecutor({ objects: dataPathObjects() });
    const b = await createVmExecutor({ objects: dataPathObjects() });
    const both = await createVmExecutor({ objects: dataPathObjects() });
    for (const ex of [a, b, both]) ex.resetCoverage();
    await a.run([connectTo('10.96.0.10', 80)]);
    await b.run([connectTo('8.8.8.8', 53, 'udp')]);
    await both.run([connectTo('10.96.0.10', 80), connectTo('8.8.8.8', 53, 'udp')]);
    const asRun = (c: CoverageSummary) => ({ ...c, programs: c.programs.map((p) => ({ ...p, lines: p.lines.map((l) => ({ ...l, hits: l.hits > 0 })) })) });
    const merged = mergeShardCoverage([a.coverage(), b.coverage()]);
    expect(asRun(merged)).toEqual(asRun(both.coverage()));
    expect(merged.executedInstructions).toBeGreaterThan(Math.max(a.coverage().executedInstructions, b.coverage().executedInstructions));
    // A report without the unrun instructions (an older version) gives the most any part ran, no more.
    const older = { ...b.coverage(), programs: b.coverage().programs.map((p) => ({ ...p, unexecutedPcs: undefined })) };
    const connect4 = (c: CoverageSummary) => prog(c, 'cgroup_connect4_prog');
    const lower = connect4(mergeShardCoverage([a.coverage(), older]));
    expect(lower.executedInstructions).toBe(Math.max(connect4(a.coverage()).executedInstructions, connect4(b.coverage()).executedInstructions));
    expect(lower.unexecutedPcs).toBeUndefined();
    expect(lower.runs).toBe(connect4(both.coverage()).runs);
    for (const ex of [a, b, both]) await ex.close();
  });

  it('is the same under the interpreter and the compiler', async () => {
    const cases = [connectTo('10.96.0.10', 80), connectTo('8.8.8.8', 53, 'udp'), connectTo('10.96.0.10', 81)];
    const summaries: CoverageSummary[] = [];
    for (const engine of ['interp', 'jit'] as const) {
      const ex: VmExecutor = await createVmExecutor({ objects: dataPathObjects(), engine });
      ex.resetCoverage();
      for (const c of cases) ex.outcomeSet(c);
      summaries.push(ex.coverage());
    }
    expect(summaries[1]).toEqual(summaries[0]);
  });
});
