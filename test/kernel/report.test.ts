// Connection reports and inbound authorization (section 7) on the real kernel: hand-written cases
// through the report harness (our sockops and cgroup_skb objects attached to a fresh cgroup in a
// private namespace), judged by model/report's invariants; one case really waits past the 5 s
// period for the periodic report; each report mutant caught by the invariant meant for it; and
// the report phase's cases that let time pass, which run on the VM.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { KmeshCheckError } from '../../shared/errors.js';
import { MONITORING_OFF_BY_DEFAULT, WIDE_AUTH_VERDICT, WIDE_AUTH_VERDICT_ERROR, buildVariant, reportObjectsOf } from '../helpers/variant.js';
import { REPORT_MUTANTS, buildReportMutant } from '../../cli/report-mutants.js';
import { runReportCases } from '../../bpf/kernel/report/run.js';
import { createKernelExecutor } from '../../bpf/kernel/executor.js';
import { backend, endpoint, frontend, maps, service } from '../../model/builders.js';
import { REPORT_NEAR_MAPPED_LOCAL, type ReportCase, type ReportConn, type ReportObservation } from '../../model/report/domain.js';
import { judgeReports, reportInvariants } from '../../model/report/invariants.js';
import fc from 'fast-check';
import {
  REPORT_LARGE_SEND,
  REPORT_LISTEN6,
  REPORT_POD,
  REPORT_LISTEN_MAPPED,
  REPORT_STATE,
  REPORT_VIP6,
  REPORT_VIP_MAPPED_TO6,
  REPORT_VIP6_TO4,
  REPORT_WAYPOINT,
  REPORT_WAYPOINT_VIP,
  reportCaseArb,
} from '../../generators/report.js';
import { reportSpec, runReportChecks, timedReportRunner } from '../../properties/report.js';

function requireRoot(): void {
  if (process.geteuid && process.geteuid() !== 0) {
    throw new Error('kernel executor tests require root (CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN): run them as root or with sudo');
  }
}

/** A service VIP 10.96.0.1:80 whose one backend is the listener 127.0.0.1:8080. */
const STATE = maps({
  frontends: [frontend('10.96.0.1', 1)],
  services: [service(1, { counts: [1], ports: [[80, 8080]] })],
  endpoints: [endpoint(1, 0, 1, 7)],
  backends: [backend(7, '127.0.0.1', [1])],
});
const LISTEN = { addr: '127.0.0.1', port: 8080 };
const conn = (o: Partial<ReportConn> = {}): ReportConn => ({
  connectTo: LISTEN,
  listen: LISTEN,
  sends: [
    { from: 'client', size: 5 },
    { from: 'server', size: 7 },
  ],
  firstClose: 'client',
  storeVerdict: true,
  ...o,
});
const VIA_VIP = { connectTo: { addr: '10.96.0.1', port: 80 } };

const CASES: ReportCase[] = [
  { monitoring: true, periodic: false, state: STATE, conns: [conn(), conn({ ...VIA_VIP, firstClose: 'server' })] },
  { monitoring: true, periodic: true, state: STATE, conns: [conn({ ...VIA_VIP, sends: [] }), conn({ sends: [{ from: 'server', size: 1 }] })] },
  { monitoring: false, periodic: true, state: STATE, conns: [conn(), conn({ ...VIA_VIP, storeVerdict: false })] },
  { monitoring: true, periodic: false, nodeIp: '127.0.0.1', state: STATE, conns: [conn()] },
  { monitoring: true, periodic: false, podGateway: '127.0.0.1', state: STATE, conns: [conn({ firstClose: 'server' })] },
  // Withdrawn namespace, managed IPs: the server end is reported, the client (no storage) is not;
  // the case after it shows the namespace enrolled again.
  { monitoring: true, periodic: false, namespaceOutside: true, state: STATE, conns: [conn(), conn({ firstClose: 'server' })] },
  { monitoring: true, periodic: false, state: STATE, conns: [conn({ ...VIA_VIP })] },
  // A native IPv6 client through the IPv6 VIP: an IPv6 original destination.
  { monitoring: true, periodic: false, state: REPORT_STATE, conns: [conn({ clientFamily: 'inet6', connectTo: REPORT_VIP6, listen: REPORT_LISTEN6 })] },
  // An AF_INET6 client through an IPv4 VIP to the IPv6 listener: an IPv6 record, its original v4-mapped.
  { monitoring: true, periodic: false, state: REPORT_STATE, conns: [conn({ clientFamily: 'inet6', connectTo: REPORT_VIP_MAPPED_TO6, listen: REPORT_LISTEN6 })] },
  // An AF_INET client of an AF_INET6 listener on ::ffff:127.0.0.1: the server end is IPv4 traffic too.
  { monitoring: true, periodic: false, state: STATE, conns: [conn({ listen: REPORT_LISTEN_MAPPED })] },
  // An AF_INET6 client bound to an address whose last 64 bits are the node's (::ffff:127.0.0.1): not the node, so asked about.
  {
    monitoring: true,
    periodic: false,
    nodeIp: '127.0.0.1',
    state: REPORT_STATE,
    conns: [conn({ clientFamily: 'inet6', clientAddr: REPORT_NEAR_MAPPED_LOCAL, connectTo: REPORT_LISTEN6, listen: REPORT_LISTEN6 })],
  },
  // A pod reached by its own address: kept, the original recorded is the server end.
  { monitoring: true, periodic: false, state: REPORT_STATE, conns: [conn({ connectTo: REPORT_POD, listen: REPORT_POD })] },
  // Monitoring turned off once the first connection is established: its CLOSE reports still come, the second connection gets none.
  { monitoring: true, periodic: true, state: STATE, conns: [conn({ monitoringOff: true }), conn({ firstClose: 'server' })] },
  // The pod withdrawn once the first connection is established: its CLOSE reports still come and its
  // verdict is deleted at close; the second connection (straight to its listener) is not managed at all.
  { monitoring: true, periodic: true, state: STATE, conns: [conn({ withdraw: true }), conn({ firstClose: 'server' })] },
  // Overlapping connections: the first, straight to its listener, stays open while the second (through
  // the VIP, an original recorded) is made and closed; each end's reports are still its own.
  { monitoring: true, periodic: false, state: STATE, conns: [conn({ closeLast: true }), conn({ ...VIA_VIP })] },
  // More bytes than a u16 counts (sent in slices by the harness): the close report counts them all.
  { monitoring: true, periodic: false, state: STATE, conns: [conn({ sends: [{ from: 'client', size: REPORT_LARGE_SEND }] })] },
  // A client routed via a waypoint (in km_socket; it sends nothing, so no TLV): reported as any other, its original the VIP.
  { monitoring: true, periodic: false, state: REPORT_STATE, conns: [conn({ connectTo: REPORT_WAYPOINT_VIP, listen: REPORT_WAYPOINT, sends: [{ from: 'server', size: 3 }] })] },
  // Aborted connections (a reset, no FIN): each end straight to CLOSE, reported so, its verdict deleted;
  // the client aborting with data both ways, the server aborting one that stays open across another.
  {
    monitoring: true,
    periodic: true,
    state: STATE,
    conns: [
      conn({
        ...VIA_VIP,
        abort: true,
        sends: [
          { from: 'client', size: 5 },
          { from: 'server', size: 7 },
        ],
      }),
      conn({ firstClose: 'server', abort: true, closeLast: true }),
      conn({ ...VIA_VIP }),
    ],
  },
  // An AF_INET6 client through an IPv6 VIP to the IPv4 listener: rewritten to ::ffff:127.0.0.1, so
  // its records are IPv4, and an IPv4 record cannot hold the native IPv6 original: none (R4).
  { monitoring: true, periodic: false, state: REPORT_STATE, conns: [conn({ clientFamily: 'inet6', connectTo: REPORT_VIP6_TO4, listen: LISTEN })] },
];

function violations(cases: readonly ReportCase[], obs: readonly ReportObservation[]): Record<string, string> {
  const out: Record<string, string> = {};
  obs.forEach((o, i) => {
    for (const j of judgeReports(cases[i]!, o)) if (j.verdict.status === 'violated') out[j.name] ??= `case ${i}: ${j.verdict.detail}`;
  });
  return out;
}

describe('connection reports on the kernel', () => {
  let obs: ReportObservation[];
  beforeAll(() => {
    requireRoot();
    obs = runReportCases(CASES);
  });

  it('hand-written cases: every invariant holds, and every one is exercised', () => {
    expect(violations(CASES, obs)).toEqual({});
    for (const inv of reportInvariants) {
      expect(
        CASES.some((c, i) => inv.check(c, obs[i]!).status === 'holds'),
        inv.name,
      ).toBe(true);
    }
  });

  it('the records say what the document says, field by field', () => {
    const first = obs[0]!;
    const client = first.conns[1]!.client;
    const est = first.probe.find((r) => r.direction === 2 && r.tuple?.client.port === client.port && r.state === 1)!;
    expect(est.tuple).toEqual({ family: 'inet', client, server: LISTEN });
    expect(est.original).toEqual({ addr: '10.96.0.1', port: 80 });
    expect([est.type, est.protocol, est.padding, est.connSuccess]).toEqual([0, 6, 0, 1]);
    expect(first.auth.map((a) => a.tuple)).toEqual(first.conns.map((c) => ({ family: 'inet', client: c.client, server: c.server })));
    expect(obs[2]!.probe).toEqual([]);
    expect(obs[2]!.auth).toHaveLength(2);
    expect(obs[3]!.auth).toEqual([]);
    expect(obs[4]!.auth).toEqual([]);
    // Outside: only the servers' inbound reports (ESTABLISHED then CLOSE, two connections); enrolled again after.
    expect(obs[5]!.probe.map((r) => [r.direction, r.state])).toEqual([
      [1, 1],
      [1, 7],
      [1, 1],
      [1, 7],
    ]);
    expect(obs[6]!.probe.filter((r) => r.direction === 2).map((r) => [r.state, r.original])).toEqual([
      [1, { addr: '10.96.0.1', port: 80 }],
      [7, { addr: '10.96.0.1', port: 80 }],
    ]);
    // IPv6 records whose original is the IPv4 VIP in its v4-mapped form.
    expect(obs[8]!.probe.filter((r) => r.direction === 2).map((r) => [r.type, r.original])).toEqual([
      [1, { addr: '::ffff:10.96.0.2', port: 80 }],
      [1, { addr: '::ffff:10.96.0.2', port: 80 }],
    ]);
    // The AF_INET6 listener's end of an IPv4 connection: IPv4 records and an IPv4 authorization request.
    expect(obs[9]!.probe.filter((r) => r.direction === 1).map((r) => [r.type, r.state])).toEqual([
      [0, 1],
      [0, 7],
    ]);
    expect(obs[9]!.auth.map((a) => a.type)).toEqual([0]);
    // The client really is fd00:1::ffff:7f00:1 (on lo), and it is asked about: an IPv6 request naming it.
    expect(obs[10]!.conns[0]!.client.addr).toBe(REPORT_NEAR_MAPPED_LOCAL);
    expect(obs[10]!.auth.map((a) => [a.type, a.tuple?.client.addr])).toEqual([[1, REPORT_NEAR_MAPPED_LOCAL]]);
    // The AF_INET6 client of the IPv6 VIP of the IPv4 listener: IPv4 records, no original in them.
    const last = obs[CASES.length - 1]!;
    expect(last.conns[0]!.client.addr).toBe('::ffff:127.0.0.1');
    expect(last.probe.filter((r) => r.direction === 2).map((r) => [r.type, r.state, r.original])).toEqual([
      [0, 1, null],
      [0, 7, null],
    ]);
  });

  it('a connection that waits past 5 s gets a periodic report at its next packet (a real wait)', () => {
    const c: ReportCase = { monitoring: true, periodic: true, state: STATE, conns: [conn({ sends: [{ from: 'client', size: 3, waitNs: 5_300_000_000 }] })] };
    const [o] = runReportCases([c]);
    expect(violations([c], [o!])).toEqual({});
    const states = (dir: number) => o!.probe.filter((r) => r.direction === dir).map((r) => r.state);
    expect(states(2)).toEqual([1, 1, 7]);
    expect(states(1)).toEqual([1, 1, 7]);
  });
});

describe('report objects on the kernel', () => {
  it('refuses a section 7 map of another shape than its table, with a one-line error naming it', async () => {
    requireRoot();
    const dir = mkdtempSync(join(tmpdir(), 'kc-wide-verdict-'));
    try {
      const objects = reportObjectsOf(buildVariant(dir, [WIDE_AUTH_VERDICT]));
      let error: unknown = null;
      try {
        runReportCases(CASES.slice(0, 1), objects);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(KmeshCheckError);
      expect((error as KmeshCheckError).code).toBe('abi-mismatch');
      expect((error as KmeshCheckError).message).toMatch(WIDE_AUTH_VERDICT_ERROR);
      // The routing check refuses them too, before any case.
      await expect(createKernelExecutor({ objects })).rejects.toThrow(WIDE_AUTH_VERDICT_ERROR);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('report globals as the objects load them (kernel)', () => {
  it("checks section 7's defaults only where the case leaves them: enable_monitoring loaded as 0 is caught there", () => {
    requireRoot();
    const asLoaded: ReportCase = { monitoring: true, periodic: false, globalsAsLoaded: true, state: STATE, conns: [conn()] };
    const written: ReportCase = { monitoring: true, periodic: false, state: STATE, conns: [conn()] };
    const ours = runReportCases([asLoaded, written]);
    expect(ours.every((o) => o.probe.length > 0)).toBe(true);
    expect(violations([asLoaded, written], ours)).toEqual({});
    const dir = mkdtempSync(join(tmpdir(), 'kc-monitoring-off-'));
    try {
      const objects = reportObjectsOf(buildVariant(dir, [MONITORING_OFF_BY_DEFAULT]));
      expect(Object.keys(violations([asLoaded], runReportCases([asLoaded], objects)))).toContain('report-once-established');
      // Written by user space, the wrong default is invisible.
      expect(violations([written], runReportCases([written], objects))).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('connections of a case never share a tuple (kernel)', () => {
  it('a client port freed within a case is not given to a later connection to the same server', () => {
    requireRoot();
    // Two ephemeral ports: the server closes first, so the first client's port is free again (no
    // TIME_WAIT on its side), and bind(0), which tries odd ports first here, returns it unless the
    // harness keeps it.
    const twice: ReportCase = { monitoring: true, periodic: false, state: STATE, conns: [conn({ firstClose: 'server' }), conn({ firstClose: 'server' })] };
    const cases = Array.from({ length: 12 }, () => twice);
    const obs = runReportCases(cases, {}, { localPorts: [40000, 40001] });
    for (const o of obs) expect(new Set(o.conns.map((k) => k.client.port)).size).toBe(2);
    expect(violations(cases, obs)).toEqual({});
  });
});

describe('connection reports on generated cases (kernel)', () => {
  it('every invariant holds on 40 generated cases (fixed seed), each exercised', () => {
    requireRoot();
    const cases = fc.sample(reportCaseArb, { seed: 715, numRuns: 40 });
    const obs = runReportCases(cases);
    expect(violations(cases, obs)).toEqual({});
    for (const inv of reportInvariants.filter((i) => i.name !== 'report-periodic')) {
      expect(cases.filter((c, i) => inv.check(c, obs[i]!).status === 'holds').length, inv.name).toBeGreaterThan(5);
    }
  });
});

describe('report mutants are caught', () => {
  beforeAll(() => requireRoot());
  for (const m of REPORT_MUTANTS.filter((x) => x.shows === 'kernel')) {
    it(`${m.name}: ${m.expectedInvariant}`, () => {
      const found = violations(CASES, runReportCases(CASES, buildReportMutant(m.name)));
      expect(Object.keys(found)).toContain(m.expectedInvariant);
    });
  }
});

describe('the report phase on the kernel: cases that let time pass run on the VM', () => {
  const runnerOf = (t: ReturnType<typeof timedReportRunner>) => {
    if (!('runner' in t)) throw new Error(`the VM cannot run the report objects: ${t.why}`);
    return t.runner;
  };

  it('a mixed batch keeps its order: the timed case on the VM clock, the others on real sockets', async () => {
    requireRoot();
    const spec = reportSpec({ executor: 'kernel', timed: { runner: runnerOf(timedReportRunner()) } });
    const waited: ReportCase = { monitoring: true, periodic: true, state: STATE, conns: [conn({ sends: [{ from: 'client', size: 3, waitNs: 5_300_000_000 }] })] };
    const cases = [CASES[0]!, waited, CASES[3]!];
    const started = Date.now();
    const obs = await spec.run(cases);
    // No real 5 s wait: the VM's clock moved.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(obs.map((o) => o.exactClock === true)).toEqual([false, true, false]);
    expect(violations(cases, obs)).toEqual({});
    expect(obs[1]!.probe.filter((r) => r.direction === 2).map((r) => r.state)).toEqual([1, 1, 7]);
    expect(spec.formatObservation(waited, obs[1]!)[0]).toMatch(/on the userspace VM/);
  });

  it('catches a bug only a movable clock shows (report-periodic-at-threshold) in a kernel run', async () => {
    requireRoot();
    const objects = buildReportMutant('report-periodic-at-threshold');
    const r = await runReportChecks({ seed: 11, runs: 150, executor: 'kernel', objects, timed: { runner: runnerOf(timedReportRunner(objects)) }, shrink: false });
    expect(r.failed['report-periodic'], JSON.stringify(r.failed)).toBeGreaterThan(0);
  });

  it('objects the VM cannot load: timedReportRunner says why instead of failing', () => {
    const t = timedReportRunner({ skb: '/nonexistent/cgroup_skb.o' });
    expect('why' in t && t.why).toMatch(/cgroup_skb\.o/);
  });
});
