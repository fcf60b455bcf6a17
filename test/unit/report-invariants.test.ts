// The report invariants on hand-made observations: connections that follow each other may reuse
// a client port (one four-tuple for two connections), which is two requests, not a duplicate; and
// the periodic reports the waits of a case make due, exactly on a controlled clock, a lower bound
// on a real one; a namespace withdrawn from km_manage reports its servers, not its clients; and a
// pod withdrawn mid-connection still gets that connection's CLOSE reports.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { REPORT_STATE, REPORT_VIP6_TO4, reportCases } from '../../generators/report.js';
import { EMPTY_STATE, type SockAddr } from '../../model/domain.js';
import { REPORT_NEAR_MAPPED_LOCAL, hasWaits, monitoredAt, type AuthRecord, type ProbeRecord, type ReportCase, type ReportConn, type ReportObservation } from '../../model/report/domain.js';
import { parseAddress } from '../../model/address.js';
import { nearMappedOf } from '../../generators/addresses.js';
import { authRequest, periodicDue, reportBytesWritten, reportClose, reportOnceEstablished, reportPeriodic } from '../../model/report/invariants.js';

const client: SockAddr = { addr: '127.0.0.1', port: 40275 };
const server: SockAddr = { addr: '127.0.0.1', port: 8080 };
const conn: ReportConn = { connectTo: server, listen: server, sends: [{ from: 'client', size: 10 }], firstClose: 'server', storeVerdict: false };
const request: AuthRecord = { type: 0, tuple: { family: 'inet', client, server }, unusedNonZero: 0 };
const twoConns: ReportCase = { monitoring: false, periodic: false, state: EMPTY_STATE, conns: [conn, conn] };

/** A report of the client -> server tuple, 10 bytes each way, its duration last_report_ns - start. */
const record = (direction: number, state: number, lastReportNs = 0n, startNs = 0n): ProbeRecord => ({
  type: 0,
  tuple: { family: 'inet', client, server },
  original: null,
  sentBytes: 10,
  receivedBytes: 10,
  connSuccess: 1,
  direction,
  state,
  durationNs: lastReportNs - startNs,
  startNs,
  lastReportNs,
  protocol: 6,
  srttUs: 0,
  rttMin: 0,
  totalRetrans: 0,
  lostOut: 0,
  padding: 0,
  unusedNonZero: 0,
});

function observed(auth: readonly AuthRecord[]): ReportObservation {
  return {
    conns: [
      { client, server },
      { client, server },
    ],
    probe: [],
    auth,
    verdictsLeft: [],
  };
}

describe('auth-request with a reused four-tuple', () => {
  it('accepts one request per connection that had the tuple', () => {
    expect(authRequest.check(twoConns, observed([request, request])).status).toBe('holds');
  });

  it('still fails on a missing request or an extra one', () => {
    expect(authRequest.check(twoConns, observed([request])).status).toBe('violated');
    expect(authRequest.check(twoConns, observed([request, request, request])).status).toBe('violated');
  });
});

describe('periodic reports due', () => {
  const S = 1_000_000_000;
  const withWaits = (sends: number[], closeWaitNs = 0): ReportConn => ({ ...conn, sends: sends.map((waitNs) => ({ from: 'client', size: 1, waitNs })), closeWaitNs });
  it('count moments more than 5 s after the last report, time adding up between them', () => {
    expect(periodicDue(withWaits([5 * S]), true, 'client')).toEqual({ due: 0, exact: true });
    expect(periodicDue(withWaits([5 * S + 1]), true, 'client')).toEqual({ due: 1, exact: true });
    expect(periodicDue(withWaits([3 * S, 3 * S]), true, 'client')).toEqual({ due: 1, exact: true });
    expect(periodicDue(withWaits([6 * S, 1], 6 * S), true, 'client')).toEqual({ due: 2, exact: true });
  });
  it("give an aborting end nothing at its close (its CLOSE report comes before its reset), its peer what the reset's arrival brings", () => {
    const aborted = { ...withWaits([1], 6 * S), firstClose: 'client' as const, abort: true };
    expect(periodicDue(aborted, true, 'client')).toEqual({ due: 0, exact: true });
    expect(periodicDue(aborted, true, 'server')).toEqual({ due: 1, exact: true });
    expect(periodicDue({ ...aborted, abort: false }, true, 'client')).toEqual({ due: 1, exact: true });
  });
  it('on a real clock, a moment within 1 s under the threshold leaves the rest a lower bound', () => {
    expect(periodicDue(withWaits([6 * S, 4.5 * S]), false, 'client')).toEqual({ due: 1, exact: false });
    expect(periodicDue(withWaits([3 * S]), false, 'client')).toEqual({ due: 0, exact: true });
  });
});

describe('the byte counts of a CLOSE report', () => {
  // One connection, both ends managed: 10 bytes from the client; each end established then closed.
  const sent: ReportCase = { monitoring: true, periodic: false, state: EMPTY_STATE, conns: [conn] };
  const o = (clientSent: number): ReportObservation => ({
    ...observed([]),
    conns: [{ client, server }],
    probe: [record(2, 1), { ...record(2, 7), sentBytes: clientSent }, record(1, 1), { ...record(1, 7), sentBytes: 0 }],
  });
  it('hold the sent bytes to what the case sent, but after a reset only the received ones', () => {
    expect(reportBytesWritten.check(sent, o(10)).status).toBe('holds');
    expect(reportBytesWritten.check(sent, o(9)).status).toBe('violated');
    const aborted = { ...sent, conns: [{ ...conn, abort: true }] };
    expect(reportBytesWritten.check(aborted, o(9)).status).toBe('holds');
    expect(reportBytesWritten.check(aborted, { ...o(9), probe: o(9).probe.map((r) => ({ ...r, receivedBytes: 0 })) }).status).toBe('violated');
  });
});

describe('the original destination of an IPv4 record whose client connected to an IPv6 VIP', () => {
  // An AF_INET6 client of [fd00::96:2]:80, rewritten to the IPv4 listener: its records are IPv4
  // (a v4-mapped pair, client ::ffff:127.0.0.1), and an IPv4 record cannot hold the IPv6 original.
  const mappedClient: SockAddr = { addr: '::ffff:127.0.0.1', port: 40275 };
  const c: ReportCase = { monitoring: true, periodic: false, state: REPORT_STATE, conns: [{ ...conn, clientFamily: 'inet6', connectTo: REPORT_VIP6_TO4 }] };
  const o = (original: SockAddr | null): ReportObservation => ({
    ...observed([]),
    conns: [{ client: mappedClient, server }],
    probe: [{ ...record(2, 1), original }, { ...record(2, 7), original }, record(1, 1), { ...record(1, 7), sentBytes: 0 }],
  });
  it('is none; its last word as an IPv4 address is another original', () => {
    expect(reportBytesWritten.check(c, o(null)).status).toBe('holds');
    const v = reportBytesWritten.check(c, o({ addr: '0.150.0.2', port: 80 }));
    expect(v.status === 'violated' && v.detail).toMatch(/original destination 0\.150\.0\.2:80, expected none/);
  });
});

describe("a violation's shape", () => {
  const one: ReportCase = { monitoring: true, periodic: false, state: EMPTY_STATE, conns: [conn] };
  const withProbe = (probe: ProbeRecord[]): ReportObservation => ({ conns: [{ client, server }], probe, auth: [], verdictsLeft: [] });
  const shapeOf = (v: ReturnType<typeof reportBytesWritten.check>) => (v.status === 'violated' ? v.shape : undefined);
  const good = [record(2, 1), record(1, 1), record(2, 7), record(1, 7)];

  it("names the rule (the field), not the end, family or record: two bugs of one invariant differ, one bug's cases agree", () => {
    const padding = withProbe(good.map((r) => ({ ...r, padding: 0xa5 })));
    const sentShort = withProbe(good.map((r) => (r.state === 7 && r.direction === 2 ? { ...r, sentBytes: 1 } : r)));
    expect(shapeOf(reportBytesWritten.check(one, padding))).toBe('padding');
    expect(shapeOf(reportBytesWritten.check(one, sentShort))).toBe('sent bytes');
    // A v4-mapped connection's end is the same shape: a sample need not hit every family to know the bug again.
    const mapped: ReportCase = { ...one, conns: [{ ...conn, clientFamily: 'inet6', listen: server }] };
    expect(shapeOf(reportBytesWritten.check(mapped, padding))).toBe('padding');
    // A close rule says whether a reset closed the connection.
    const noClose = withProbe(good.filter((r) => !(r.state === 7 && r.direction === 1)));
    expect(shapeOf(reportClose.check(one, noClose))).toBe('no CLOSE reports');
    expect(shapeOf(reportClose.check({ ...one, conns: [{ ...conn, abort: true }] }, noClose))).toBe('no CLOSE reports, closed by a reset');
  });

  it('names the offsets and the field of bytes a view does not use', () => {
    const leftover = withProbe(good.map((r, i) => (i === 0 ? { ...r, unusedNonZero: 14, unusedAt: Array.from({ length: 14 }, (_, j) => 46 + j) } : r)));
    const v = reportBytesWritten.check(one, leftover);
    expect(v.status === 'violated' && v.detail).toMatch(/14 byte\(s\) that the IPv4 view does not use are not 0 \(offsets 46-59, in the original destination\)/);
    expect(shapeOf(v)).toBe('bytes outside the view (original destination)');
  });

  it("names why an end must not be reported, not the case's addresses", () => {
    const v = reportOnceEstablished.check({ ...one, namespaceOutside: true }, withProbe(good));
    expect(shapeOf(v)).toBe('reported, namespace not enrolled');
    const off = reportOnceEstablished.check({ ...one, monitoring: false }, withProbe(good));
    expect(shapeOf(off)).toBe('reported, monitoring off');
  });
});

describe("a report's start where the clock tells the ends' connect times apart (the VM)", () => {
  const one: ReportCase = { monitoring: true, periodic: false, state: EMPTY_STATE, conns: [{ ...conn, handshakeNs: 1_000_000_000 }] };
  // The client connected at 1000 s, the handshake took 1 s: the server was established at 1001 s.
  const at = (ns: bigint) => ({ fromNs: ns, toNs: ns });
  const withStarts = (clientStart: bigint, serverStart: bigint): ReportObservation => ({
    conns: [{ client, server, window: { fromNs: 1_000_000_000_000n, toNs: 1_001_000_000_000n }, ends: { client: at(1_000_000_000_000n), server: at(1_001_000_000_000n) } }],
    probe: [2, 1].flatMap((direction) => [1, 7].map((state) => record(direction, state, 1_001_000_000_000n, direction === 2 ? clientStart : serverStart))),
    auth: [],
    verdictsLeft: [],
  });

  it("holds the client's start to its connect and the server's to its establishment, each exactly", () => {
    expect(reportBytesWritten.check(one, withStarts(1_000_000_000_000n, 1_001_000_000_000n)).status).toBe('holds');
    // A client's start stamped at its establishment lies in the set-up's window, not at its connect.
    const late = reportBytesWritten.check(one, withStarts(1_001_000_000_000n, 1_001_000_000_000n));
    expect(late).toMatchObject({ status: 'violated', shape: 'start not the connect time' });
    expect(late.status === 'violated' && late.detail).toMatch(/start 1001000000000 is not the connect time, the client's connect4\/6 pass \(at 1000000000000\)/);
    const early = reportBytesWritten.check(one, withStarts(1_000_000_000_000n, 1_000_000_000_000n));
    expect(early.status === 'violated' && early.detail).toMatch(/the server's establishment \(at 1001000000000\)/);
  });
});

describe('a namespace withdrawn from km_manage, its local IPs still enrolled', () => {
  const one: ReportCase = { monitoring: true, periodic: false, state: EMPTY_STATE, conns: [conn] };
  const outside: ReportCase = { ...one, namespaceOutside: true };
  const withProbe = (probe: ProbeRecord[]): ReportObservation => ({ conns: [{ client, server }], probe, auth: [], verdictsLeft: [] });
  const serverOnly = withProbe([record(1, 1), record(1, 7)]);
  const both = withProbe([record(2, 1), record(1, 1), record(2, 7), record(1, 7)]);

  it('expects the server end reported and the client end (no socket storage) not', () => {
    expect(reportOnceEstablished.check(outside, serverOnly).status).toBe('holds');
    expect(reportClose.check(outside, serverOnly).status).toBe('holds');
    const v = reportOnceEstablished.check(outside, both);
    expect(v.status).toBe('violated');
    expect(v.status === 'violated' && v.detail).toMatch(/namespace is not enrolled.*client of connection 0 got 2 report/);
  });

  it('in an enrolled namespace, expects both ends', () => {
    expect(reportOnceEstablished.check(one, both).status).toBe('holds');
    expect(reportOnceEstablished.check(one, serverOnly).status).toBe('violated');
    expect(reportClose.check(one, serverOnly).status).toBe('violated');
  });
});

// User space turns monitoring off, or withdraws the pod from km_manage, once the first connection
// is established (both gates on, 6 s pass before its send): no periodic report of it after that,
// its CLOSE reports still; the next connection is not monitored, or not managed at all (then it
// asks for no authorization either).
describe.each([
  {
    what: 'monitoring turned off',
    flag: { monitoringOff: true },
    periodicWhy: 'monitoring was turned off once it was established',
    nextWhy: 'an earlier connection turned monitoring off',
    nextAsks: true,
  },
  {
    what: 'the pod withdrawn from km_manage',
    flag: { withdraw: true },
    periodicWhy: 'the pod withdrew from km_manage once it was established',
    nextWhy: 'the pod withdrew from km_manage before it was established',
    nextAsks: false,
  },
])('$what once a connection is established', ({ flag, periodicWhy, nextWhy, nextAsks }) => {
  const S = 1_000_000_000n;
  const at = (direction: number, state: number, lastReportNs: bigint) => record(direction, state, lastReportNs, S);
  const next = { client: { ...client, port: 40276 }, server };
  const second: AuthRecord = { type: 0, tuple: { family: 'inet', ...next }, unusedNonZero: 0 };
  const waited: ReportConn = { ...conn, sends: [{ from: 'client', size: 10, waitNs: 6_000_000_000 }], storeVerdict: true, ...flag };
  const c: ReportCase = { monitoring: true, periodic: true, state: EMPTY_STATE, conns: [waited, conn] };
  const obs = (probe: ProbeRecord[], auth: AuthRecord[]): ReportObservation => ({ conns: [{ client, server }, next], probe, auth, verdictsLeft: [], exactClock: true });
  const established = [at(2, 1, S), at(1, 1, S)];
  const closed = [at(2, 7, 7n * S), at(1, 7, 7n * S)];
  const asked = nextAsks ? [request, second] : [request];

  it('stops the periodic reports of that connection, not its CLOSE reports, and leaves the next one unreported', () => {
    // No end is due a periodic report (vacuous), and none came.
    expect(reportPeriodic.check(c, obs([...established, ...closed], asked)).status).toBe('vacuous');
    expect(reportClose.check(c, obs([...established, ...closed], asked)).status).toBe('holds');
    expect(reportOnceEstablished.check(c, obs([...established, ...closed], asked)).status).toBe('holds');
    expect(authRequest.check(c, obs([...established, ...closed], asked)).status).toBe('holds');
  });

  it('fails a periodic report after it, a missing CLOSE report, a report of the next connection, a request too many or too few', () => {
    const v = reportPeriodic.check(c, obs([...established, at(2, 1, 7n * S), ...closed], asked));
    expect(v.status === 'violated' && v.detail).toContain(`client of connection 0 got a periodic report, but ${periodicWhy}`);
    expect(reportClose.check(c, obs(established, asked)).status).toBe('violated');
    const w = reportOnceEstablished.check(c, obs([...established, ...closed, { ...at(2, 1, 8n * S), tuple: { family: 'inet' as const, ...next } }], asked));
    expect(w.status === 'violated' && w.detail).toContain(nextWhy);
    expect(authRequest.check(c, obs([...established, ...closed], nextAsks ? [request] : [request, second])).status).toBe('violated');
  });
});

describe('monitoring turned on once a connection is established', () => {
  const S = 1_000_000_000n;
  const waited: ReportConn = { ...conn, sends: [{ from: 'client', size: 10, waitNs: 6_000_000_000 }], monitoringOn: true };
  const c: ReportCase = { monitoring: false, periodic: true, state: EMPTY_STATE, conns: [waited, conn] };
  const next = { client: { ...client, port: 40276 }, server };
  const obs = (probe: ProbeRecord[]): ReportObservation => ({ conns: [{ client, server }, next], probe, auth: [], verdictsLeft: [], exactClock: true });
  const nextRecords = [1, 7].flatMap((state) => [2, 1].map((direction) => ({ ...record(direction, state, S, S), tuple: { family: 'inet' as const, ...next } })));
  it('leaves that connection unreported, however long it lasts, and monitors the next one', () => {
    expect(monitoredAt(c, 0)).toBe(false);
    expect(monitoredAt(c, 1)).toBe(true);
    expect(monitoredAt({ ...c, conns: [{ ...waited, monitoringOn: false, monitoringOff: true }, waited, conn] }, 2)).toBe(true);
    expect(reportOnceEstablished.check(c, obs(nextRecords)).status).toBe('holds');
    // A periodic report of the first connection (timed from its connect): before any established one.
    expect(reportOnceEstablished.check(c, obs([record(2, 1, 7n * S, S), ...nextRecords])).status).toBe('violated');
    expect(reportOnceEstablished.check(c, obs([])).status).toBe('violated');
  });
});

describe('the near-mapped client of the report cases', () => {
  const six: SockAddr = { addr: REPORT_NEAR_MAPPED_LOCAL, port: 40001 };
  const listener: SockAddr = { addr: '::1', port: 8080 };
  const c: ReportCase = {
    monitoring: false,
    periodic: false,
    nodeIp: '127.0.0.1',
    state: EMPTY_STATE,
    conns: [{ clientFamily: 'inet6', clientAddr: REPORT_NEAR_MAPPED_LOCAL, connectTo: listener, listen: listener, sends: [], firstClose: 'client', storeVerdict: false }],
  };
  const obs = (auth: readonly AuthRecord[]): ReportObservation => ({ conns: [{ client: six, server: listener }], probe: [], auth, verdictsLeft: [] });

  it('is the near-mapped form of 127.0.0.1: its last 64 bits are those of ::ffff:127.0.0.1', () => {
    expect(REPORT_NEAR_MAPPED_LOCAL).toBe(nearMappedOf('127.0.0.1'));
    expect(parseAddress(REPORT_NEAR_MAPPED_LOCAL).slice(8)).toEqual(parseAddress('::ffff:127.0.0.1').slice(8));
  });

  it('is not the node 127.0.0.1: its connection is asked about, and a missing request fails', () => {
    const req: AuthRecord = { type: 1, tuple: { family: 'inet6', client: six, server: listener }, unusedNonZero: 0 };
    expect(authRequest.check(c, obs([req])).status).toBe('holds');
    expect(authRequest.check(c, obs([])).status).toBe('violated');
  });
});

describe('overlapping connections in generated report cases', () => {
  it('come in both kinds of report case, never where time passes nor on the last connection', () => {
    for (const waits of [false, true]) {
      const cases = fc.sample(reportCases({ waits }), { seed: 5, numRuns: 400 });
      const overlapping = cases.filter((c) => c.conns.some((k) => k.closeLast === true));
      expect(overlapping.length, `waits ${waits}`).toBeGreaterThan(30);
      for (const c of overlapping) {
        expect(hasWaits(c)).toBe(false);
        expect(c.conns.at(-1)!.closeLast).toBeUndefined();
      }
      // Elsewhere the waits stay as drawn.
      if (waits) expect(cases.some((c) => hasWaits(c))).toBe(true);
    }
  });
});
