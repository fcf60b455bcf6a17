// The normative rules of connection reports and inbound authorization (section 7) as named
// invariants over a report case and what an executor observed (records decoded at bpf/). The
// case decides which connections are managed and what they did; each record is attributed to a
// connection end by its tuple and direction.

import { REPORT_MANAGED_LOCALS, enrolledAt, monitoredAt, recordsOriginal, type ProbeRecord as TcpProbeRecord, type ReportCase, type ReportConn, type ReportObservation, tupleText } from './domain.js';
import type { SockAddr } from '../domain.js';
import { Checker, type Verdict } from '../spec/types.js';
import { sockAddrText, v4Mapped, v4MappedInner } from '../address.js';

export interface ReportInvariant {
  readonly name: string;
  readonly statement: string;
  check(c: ReportCase, o: ReportObservation): Verdict;
}

export const REPORT_PERIOD_NS = 5_000_000_000n;
const ESTABLISHED = 1;
const CLOSE = 7;
const INBOUND = 1;
const OUTBOUND = 2;

type EndName = 'client' | 'server';

interface EndRecords {
  readonly conn: number;
  readonly end: EndName;
  readonly records: TcpProbeRecord[];
}

/** An address as a record's IPv4 view writes it: v4-mapped folded. */
const fold = (addr: string) => v4MappedInner(addr) ?? addr;
const same = (a: SockAddr, b: SockAddr) => fold(a.addr) === fold(b.addr) && a.port === b.port;
/**
 * An original destination (v4-mapped folded) as a record of `type` holds it (R4): v4-mapped in an
 * IPv6 record, none where an IPv4 record cannot hold it (a native IPv6 original: an AF_INET6
 * client of an IPv6 VIP rewritten to an IPv4 backend).
 */
function originalInView(type: number, a: SockAddr): SockAddr | null {
  const v6 = a.addr.includes(':');
  if (type === 1) return v6 ? a : { addr: v4Mapped(a.addr), port: a.port };
  return v6 ? null : a;
}
/** Type 1 exactly for native IPv6 connections (the client's local address says which). */
const expectedType = (client: SockAddr) => (client.addr.includes(':') && !v4MappedInner(client.addr) ? 1 : 0);
const bytesOf = (conn: ReportConn, from: EndName) => conn.sends.filter((s) => s.from === from).reduce((n, s) => n + s.size, 0);
/** Managed: the end's local IP (the client's own address, or the server's) is one the case enrols. */
const managedIp = (a: SockAddr) => REPORT_MANAGED_LOCALS.includes(fold(a.addr));
const managedEnd = (o: ReportObservation, e: { conn: number; end: EndName }) => managedIp(e.end === 'client' ? o.conns[e.conn]!.client : o.conns[e.conn]!.server);
/** Why an end is not reported: what a detail says, and the kind of reason a shape names. */
interface Unreported {
  readonly text: string;
  readonly shape: string;
}

/**
 * Why an end gets no report at all, or null when it is reported: monitoring off, its local IP not
 * managed, or (the client) no socket storage, since connect4/6 make none outside an enrolled namespace.
 */
function unreportedBecause(c: ReportCase, o: ReportObservation, e: { conn: number; end: EndName }): Unreported | null {
  if (!monitoredAt(c, e.conn)) return { text: c.monitoring ? 'an earlier connection turned monitoring off' : 'monitoring is off', shape: 'monitoring off' };
  if (!enrolledAt(c, e.conn)) return { text: 'the pod withdrew from km_manage before it was established', shape: 'pod withdrawn' };
  if (!managedEnd(o, e)) return { text: `its local address ${(e.end === 'client' ? o.conns[e.conn]!.client : o.conns[e.conn]!.server).addr} is not managed`, shape: 'local address not managed' };
  if (e.end === 'client' && c.namespaceOutside) return { text: 'the namespace is not enrolled (connect made no socket storage)', shape: 'namespace not enrolled' };
  return null;
}

/**
 * Where a rule is about the close, a shape says whether a reset closed the connection: the one
 * context of a report rule that a bug keeps to. A shape names the rule and no more (not the end,
 * the family or the record): every such context a bug shows in multiplies the shapes a sample
 * must hit for a baseline of one run to know the bug in the next.
 */
const closedBy = (c: ReportCase, e: { conn: number }) => (c.conns[e.conn]!.abort === true ? ', closed by a reset' : '');

/** A record's state as a shape names it. */
const stateShape = (r: TcpProbeRecord | undefined) => (!r ? 'none' : r.state === CLOSE ? 'CLOSE' : r.state === ESTABLISHED ? 'ESTABLISHED' : 'another state');

/**
 * The periodic reports an end is due: time passes only before a send and before the closes, and
 * each of those moments brings packets to both ends; a report is due at a moment more than 5 s
 * after the end's last report. On a real clock elapsed time is the waits plus under 1 s, so a
 * moment within 1 s below the threshold makes the rest unknown (`exact` false: a lower bound).
 * An aborting end's close brings it no packet before its CLOSE report (its reset leaves after).
 */
export function periodicDue(conn: ReportConn, exactClock: boolean, end: EndName): { due: number; exact: boolean } {
  const slack = exactClock ? 0 : 1_000_000_000;
  const period = Number(REPORT_PERIOD_NS);
  let since = 0;
  let due = 0;
  const closing = conn.abort === true && conn.firstClose === end ? [] : [conn.closeWaitNs ?? 0];
  for (const wait of [...conn.sends.map((x) => x.waitNs ?? 0), ...closing]) {
    since += wait;
    if (since > period) {
      due++;
      since = 0;
    } else if (since > period - slack) {
      return { due, exact: false };
    }
  }
  return { due, exact: true };
}

/** Records per connection end, in order; the records no end claims. */
export function attribute(c: ReportCase, o: ReportObservation): { ends: EndRecords[]; orphans: TcpProbeRecord[] } {
  const ends: EndRecords[] = o.conns.flatMap((_, i) => [
    { conn: i, end: 'client' as const, records: [] },
    { conn: i, end: 'server' as const, records: [] },
  ]);
  const orphans: TcpProbeRecord[] = [];
  for (const r of o.probe) {
    const i = o.conns.findIndex((k) => r.tuple && same(r.tuple.client, k.client) && same(r.tuple.server, k.server));
    const end = r.direction === OUTBOUND ? 'client' : r.direction === INBOUND ? 'server' : null;
    const slot = ends.find((e) => e.conn === i && e.end === end);
    if (slot) slot.records.push(r);
    else orphans.push(r);
  }
  void c;
  return { ends, orphans };
}

function fmt(r: TcpProbeRecord): string {
  return `${r.state === CLOSE ? 'CLOSE' : r.state === ESTABLISHED ? 'ESTABLISHED' : `state ${r.state}`} (direction ${r.direction})`;
}

/**
 * Where an end's reports went missing because their tuple names no connection, the note that says
 * so (else ''): a wrong tuple shows as a missing report of every kind.
 */
function orphanNote(orphans: readonly TcpProbeRecord[]): string {
  const first = orphans[0];
  return first ? `; ${orphans.length} report(s) of the case match no connection end, the first ${fmt(first)} for ${tupleText(first.tuple)}` : '';
}

export const reportOnceEstablished: ReportInvariant = {
  name: 'report-once-established',
  statement:
    'With monitoring on, each managed end of a connection (its local IP enrolled) gets exactly one ESTABLISHED report before any other report of it (outbound for the client, inbound for the server); an end that is not managed, a client whose connect made no socket storage (its namespace not enrolled), or any end with monitoring off, none; and no record belongs to no connection.',
  check(c, o) {
    const k = new Checker();
    const { ends, orphans } = attribute(c, o);
    k.exercise();
    k.expect(
      orphans.length === 0,
      () => `${orphans.length} record(s) match no connection end, the first ${fmt(orphans[0]!)} for ${tupleText(orphans[0]!.tuple)}`,
      () => `a record of no connection end (${stateShape(orphans[0])})`,
    );
    for (const e of ends) {
      const why = unreportedBecause(c, o, e);
      if (why !== null) {
        k.expect(
          e.records.length === 0,
          () => `${why.text}, but the ${e.end} of connection ${e.conn} got ${e.records.length} report(s)`,
          () => `reported, ${why.shape}`,
        );
        continue;
      }
      const first = e.records[0];
      k.expect(
        first?.state === ESTABLISHED,
        () => `the ${e.end} of connection ${e.conn}: its first report is ${first ? fmt(first) : 'missing'}, not ESTABLISHED`,
        () => `first report ${stateShape(first)}`,
      );
      const periodicWindow = e.records.slice(1).filter((r) => r.state === ESTABLISHED);
      // Later ESTABLISHED records are periodic ones: each more than 5 s after the one before.
      let last = first?.lastReportNs ?? 0n;
      for (const r of periodicWindow) {
        k.expect(
          r.lastReportNs - last > REPORT_PERIOD_NS,
          () => `the ${e.end} of connection ${e.conn} got a second ESTABLISHED report ${r.lastReportNs - last} ns after the one before (periodic reports need more than 5 s)`,
          () => 'ESTABLISHED again within 5 s',
        );
        last = r.lastReportNs;
      }
    }
    return k.verdict();
  },
};

export const reportPeriodic: ReportInvariant = {
  name: 'report-periodic',
  statement:
    'Periodic reports come only with both gates on, to a managed end, at a packet more than 5 s after its previous report: an end gets exactly the periodic reports the waits before its sends and its close make due (at least those on a real clock, where time also passes between steps).',
  check(c, o) {
    const k = new Checker();
    const { ends, orphans } = attribute(c, o);
    for (const e of ends) {
      const periodic = e.records.slice(1).filter((r) => r.state === ESTABLISHED);
      const conn = c.conns[e.conn]!;
      const why: Unreported | null = !c.periodic
        ? { text: 'periodic reports are off', shape: 'periodic reports off' }
        : conn.monitoringOff
          ? { text: 'monitoring was turned off once it was established', shape: 'monitoring turned off' }
          : conn.withdraw
            ? { text: 'the pod withdrew from km_manage once it was established', shape: 'pod withdrawn once established' }
            : unreportedBecause(c, o, e);
      if (why !== null) {
        k.expect(
          periodic.length === 0,
          () => `the ${e.end} of connection ${e.conn} got a periodic report, but ${why.text}`,
          () => `periodic report, ${why.shape}`,
        );
        continue;
      }
      k.exercise();
      const { due, exact } = periodicDue(c.conns[e.conn]!, o.exactClock === true, e.end);
      k.expect(
        exact ? periodic.length === due : periodic.length >= due,
        () =>
          `the ${e.end} of connection ${e.conn} got ${periodic.length} periodic report(s), expected ${exact ? '' : 'at least '}${due} (waits before its sends ${c.conns[e.conn]!.sends.map((x) => `${x.waitNs ?? 0} ns`).join(', ') || 'none'}, before its close ${c.conns[e.conn]!.closeWaitNs ?? 0} ns)${periodic.length < due ? orphanNote(orphans) : ''}`,
        () => `${periodic.length < due ? 'fewer' : 'more'} periodic reports than due`,
      );
    }
    return k.verdict();
  },
};

export const reportClose: ReportInvariant = {
  name: 'report-close',
  statement:
    'With monitoring on when it was established, each managed end of a connection that was reported established (a client only if its connect made socket storage) gets exactly one CLOSE report, its last one, even if monitoring was turned off or the pod withdrew from km_manage since (its one condition is the established report).',
  check(c, o) {
    const k = new Checker();
    const { ends, orphans } = attribute(c, o);
    for (const e of ends) {
      if (unreportedBecause(c, o, e) !== null) continue;
      k.exercise();
      const closes = e.records.filter((r) => r.state === CLOSE);
      k.expect(
        closes.length === 1,
        () => `the ${e.end} of connection ${e.conn} got ${closes.length} CLOSE reports${closes.length === 0 ? orphanNote(orphans) : ''}`,
        () => `${closes.length === 0 ? 'no' : 'several'} CLOSE reports${closedBy(c, e)}`,
      );
      const last = e.records.at(-1);
      k.expect(
        !last || last.state === CLOSE,
        () => `the ${e.end} of connection ${e.conn}: a ${fmt(last!)} report came after its CLOSE report`,
        () => `a report after CLOSE${closedBy(c, e)}`,
      );
    }
    return k.verdict();
  },
};

export const reportBytesWritten: ReportInvariant = {
  name: 'report-bytes-written',
  statement:
    "Every byte of a report is the program's: type 0 for IPv4 (also v4-mapped) and 1 for IPv6, the tuple client to server (host-order ports), the original destination connect4/6 recorded (none for the server end, nor where an IPv4 record cannot hold it), protocol 6, padding and unused view bytes 0, conn_success 1 in the client's report at establishment, start the connect time (connect_ns: the client's connect4/6 pass, the server's establishment) and duration consistent with it, and at close the sent and received byte counts at least what the case sent and received (the received ones only, after a reset).",
  check(c, o) {
    const k = new Checker();
    const { ends } = attribute(c, o);
    for (const e of ends) {
      const conn = c.conns[e.conn]!;
      const type = expectedType(o.conns[e.conn]!.client);
      const original = e.end === 'client' && recordsOriginal(c, conn) ? originalInView(type, { addr: fold(conn.connectTo.addr), port: conn.connectTo.port }) : null;
      const start = e.records[0]?.startNs;
      for (const r of e.records) {
        k.exercise();
        const at = `the ${fmt(r)} report of the ${e.end} of connection ${e.conn}`;
        // The field that is wrong: "padding", "start not the connect time".
        const field = (name: string) => () => name;
        k.expect(r.type === type, () => `${at}: type ${r.type}, expected ${type} (${type ? 'IPv6' : 'IPv4, also for v4-mapped'})`, field('type'));
        k.expect(r.protocol === 6, () => `${at}: protocol ${r.protocol}, expected 6`, field('protocol'));
        k.expect(r.padding === 0, () => `${at}: padding 0x${r.padding.toString(16)}, expected 0`, field('padding'));
        k.expect(
          r.unusedNonZero === 0,
          () => `${at}: ${r.unusedNonZero} byte(s) that the ${type ? 'IPv6' : 'IPv4'} view does not use are not 0${r.unusedAt ? ` (${unusedWhere(r.unusedAt)})` : ''}`,
          field(`bytes outside the view${r.unusedAt ? ` (${unusedFields(r.unusedAt)})` : ''}`),
        );
        // Section 7 pins conn_success for sockops' ACTIVE_ESTABLISHED report alone (the client's first): the server's, periodic and CLOSE reports may carry any.
        if (e.end === 'client' && r === e.records[0] && r.state === ESTABLISHED) k.expect(r.connSuccess === 1, () => `${at}: conn_success ${r.connSuccess}, expected 1`, field('conn_success'));
        k.expect(
          (original === null && r.original === null) || (original !== null && r.original !== null && same(original, r.original)),
          () => `${at}: original destination ${r.original ? sockAddrText(r.original) : 'none'}, expected ${original ? sockAddrText(original) : 'none'}`,
          field(original === null ? 'an original destination where none is due' : r.original === null ? 'no original destination' : 'another original destination'),
        );
        k.expect(r.startNs === start, () => `${at}: start ${r.startNs} differs from the first report's ${start}`, field('start differs between reports'));
        // The end's own stamp where the clock tells the ends apart (the client's connect4/6 pass, the server's establishment), else the set-up's.
        const own = o.conns[e.conn]!.ends?.[e.end];
        const w = own ?? o.conns[e.conn]!.window;
        const when = own ? (e.end === 'client' ? "the client's connect4/6 pass" : "the server's establishment") : "the connection's set-up";
        if (w)
          k.expect(
            r.startNs >= w.fromNs && r.startNs <= w.toNs,
            () => `${at}: start ${r.startNs} is not the connect time, ${when} (${w.fromNs === w.toNs ? `at ${w.fromNs}` : `between ${w.fromNs} and ${w.toNs}`})`,
            field('start not the connect time'),
          );
        k.expect(r.durationNs === r.lastReportNs - r.startNs, () => `${at}: duration ${r.durationNs} is not last_report_ns - start (${r.lastReportNs - r.startNs})`, field('duration'));
        if (r.state === CLOSE) {
          // After a reset the last data may be unacknowledged: what was received still counts.
          const sent = conn.abort === true ? 0 : bytesOf(conn, e.end);
          const received = bytesOf(conn, e.end === 'client' ? 'server' : 'client');
          k.expect(
            r.sentBytes >= sent && r.receivedBytes >= received,
            () => `${at}: sent ${r.sentBytes} / received ${r.receivedBytes} bytes, but the case ${conn.abort === true ? '(closed by a reset) ' : `sent ${sent} and `}received ${received}`,
            field(r.sentBytes < sent ? 'sent bytes' : 'received bytes'),
          );
        }
      }
    }
    return k.verdict();
  },
};

/** The record's fields that hold the offsets: the tuple (4-39) and the original destination (40-59). */
function unusedFields(at: readonly number[]): string {
  const fields = [...new Set(at.map((o) => (o < 40 ? 'tuple' : 'original destination')))];
  return fields.join(' and ');
}

/** "offsets 46-59, in the original destination": where unwritten bytes of a record lie, as ranges. */
function unusedWhere(at: readonly number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < at.length;) {
    let j = i;
    while (j + 1 < at.length && at[j + 1] === at[j]! + 1) j++;
    ranges.push(i === j ? String(at[i]) : `${at[i]}-${at[j]}`);
    i = j + 1;
  }
  return `offset${at.length === 1 ? '' : 's'} ${ranges.join(', ')}, in the ${unusedFields(at)}`;
}

function exemptPeer(c: ReportCase, client: SockAddr): boolean {
  return fold(client.addr) === c.nodeIp || fold(client.addr) === c.podGateway;
}

export const authRequest: ReportInvariant = {
  name: 'auth-request',
  statement:
    "Each managed inbound connection (the server's local IP enrolled when it is established) gets exactly one authorization request with its exact tuple (client to server, host-order ports, unused bytes 0), none when the server is not managed or the peer is the node or the pod gateway.",
  check(c, o) {
    const k = new Checker();
    const reqs = o.auth;
    const stray = reqs.filter((r) => !o.conns.some((conn) => r.tuple && same(r.tuple.client, conn.client) && same(r.tuple.server, conn.server)));
    o.conns.forEach((conn, i) => {
      k.exercise();
      const mine = reqs.filter((r) => r.tuple && same(r.tuple.client, conn.client) && same(r.tuple.server, conn.server));
      // Connections that follow each other may reuse a client port: requests are counted per
      // four-tuple, one for each managed connection that had it.
      const twins = o.conns.flatMap((d, j) => (same(d.client, conn.client) && same(d.server, conn.server) ? [{ d, j }] : []));
      const want = twins.filter(({ d, j }) => managedIp(d.server) && enrolledAt(c, j) && !exemptPeer(c, d.client)).length;
      // Why none is due: the first reason of the connection's own.
      const noneDue = !managedIp(conn.server) ? 'server not managed' : !enrolledAt(c, i) ? 'pod withdrawn' : exemptPeer(c, conn.client) ? 'peer the node or gateway' : 'due';
      k.expect(
        mine.length === want,
        () =>
          `connection ${i} (${sockAddrText(conn.client)} -> ${sockAddrText(conn.server)}) got ${mine.length} authorization requests, expected ${want}` +
          (twins.length > 1 ? ` (${twins.length} connections of the case had this four-tuple)` : '') +
          (stray[0] && mine.length < want ? `; ${stray.length} request(s) name no connection of the case, the first ${tupleText(stray[0].tuple)}` : ''),
        () => `${mine.length < want ? 'fewer' : 'more'} requests (${want > 0 ? 'request due' : noneDue})`,
      );
      for (const r of mine) {
        const type = expectedType(conn.client);
        k.expect(
          r.type === type,
          () => `connection ${i}: request type ${r.type}, expected ${type}`,
          () => 'request type',
        );
        k.expect(
          r.unusedNonZero === 0,
          () => `connection ${i}: ${r.unusedNonZero} request byte(s) outside the tuple's view are not 0`,
          () => "request bytes outside the tuple's view",
        );
      }
    });
    k.expect(
      stray.length === 0,
      () => `an authorization request names no connection of the case: ${tupleText(stray[0]!.tuple)}`,
      () => 'a request of no connection',
    );
    return k.verdict();
  },
};

export const authCleanup: ReportInvariant = {
  name: 'auth-cleanup',
  statement: 'A verdict user space stored under a requested tuple is gone once that connection has closed, even if the pod withdrew from km_manage meanwhile.',
  check(c, o) {
    const k = new Checker();
    if (c.conns.some((x) => x.storeVerdict) && o.auth.length > 0) k.exercise();
    k.expect(
      o.verdictsLeft.length === 0,
      () => `km_auth_res still holds ${o.verdictsLeft.length} verdict(s) after every connection closed, the first for ${tupleText(o.verdictsLeft[0]!)}`,
      () => {
        const t = o.verdictsLeft[0]!;
        const i = o.conns.findIndex((k) => same(t.client, k.client) && same(t.server, k.server));
        const conn = c.conns[i];
        if (!conn) return 'a verdict of no connection left';
        return `a verdict left${conn.withdraw === true ? ', pod withdrawn' : ''}`;
      },
    );
    return k.verdict();
  },
};

export const reportInvariants: readonly ReportInvariant[] = [reportOnceEstablished, reportPeriodic, reportClose, reportBytesWritten, authRequest, authCleanup];

export function judgeReports(c: ReportCase, o: ReportObservation): Array<{ name: string; verdict: Verdict }> {
  return reportInvariants.map((inv) => ({ name: inv.name, verdict: inv.check(c, o) }));
}
