// Bounded-exhaustive report cases (section 7) for `check --exhaustive`: every combination, in a
// fixed order (small first), of the two gates, a node global that is or is not the client's own
// address, and one connection: managed at both ends or unmanaged at one, its sends (from either
// end, each after no wait, exactly 5 s or just over 5 s), a wait before the close or none, which
// end closes first, and whether user space stores a verdict; with monitoring on, a connection
// straight to its listener also in a namespace withdrawn from km_manage; with both gates on, the
// pod withdrawn once the connection is established; with the gates at section 7's defaults and no
// node global, the globals also left as the objects load them; with monitoring alone on and no
// waits, the connection also kept open while a second one (through the IPv4 VIP) is made and
// closed. The scope widens the connection: scope 1 an AF_INET client connecting straight to its
// listener with at most one send; scope 2 every client family (AF_INET, v4-mapped AF_INET6,
// native AF_INET6, also bound to an unmanaged address ending like ::ffff:127.0.0.1), the service
// VIPs (an IPv4 one of the IPv6 listener too, one routed via a waypoint, whose client then sends
// nothing) and an AF_INET client of an AF_INET6 listener on ::ffff:127.0.0.1;
// scope 3 and more up to scope - 1 sends. Waits need a clock that is an input (the VM).

import {
  REPORT_LOADED_GLOBALS,
  REPORT_NEAR_MAPPED_LOCAL,
  REPORT_UNMANAGED_LOCAL,
  connectsDirectly,
  hasWaits,
  type ReportCase,
  type ReportConn,
  type ReportEnd,
  type ReportSend,
} from '../../model/report/domain.js';
import {
  REPORT_LARGE_SEND,
  REPORT_LISTEN,
  REPORT_POD,
  REPORT_LISTEN6,
  REPORT_LISTEN_MAPPED,
  REPORT_STATE,
  REPORT_VIP,
  REPORT_VIP6,
  REPORT_VIP_MAPPED_TO6,
  REPORT_VIP6_TO4,
  REPORT_WAYPOINT,
  REPORT_WAYPOINT_VIP,
} from '../report.js';

const ENDS: readonly ReportEnd[] = ['client', 'server'];
const WAITS: readonly number[] = [0, 5_000_000_000, 5_000_000_001];
const CLOSE_WAITS: readonly number[] = [0, 5_000_000_001];
/** A handshake's time (ReportConn.handshakeNs) in the cases that have one. */
const HANDSHAKE_NS = 1_000_000_000;

/**
 * The connection a connection closed last overlaps: an AF_INET client through the IPv4 VIP (an
 * original destination recorded), sending nothing, so that each end's reports differ from the
 * first connection's ends'.
 */
const OVERLAPPING: ReportConn = { clientFamily: 'inet', connectTo: REPORT_VIP, listen: REPORT_LISTEN, sends: [], firstClose: 'client', storeVerdict: false };

/** The shapes of a connection: family, target and which end is not managed. */
function shapes(scope: number): Array<Pick<ReportConn, 'clientFamily' | 'clientAddr' | 'connectTo' | 'listen'>> {
  const out: Array<Pick<ReportConn, 'clientFamily' | 'clientAddr' | 'connectTo' | 'listen'>> = [];
  const lonely = { addr: REPORT_UNMANAGED_LOCAL, port: 8080 };
  const v4 = (family: 'inet' | 'mapped') => {
    const text = (a: string) => (family === 'inet' ? a : `::ffff:${a}`);
    const clientFamily = family === 'inet' ? ('inet' as const) : ('inet6' as const);
    const targets = scope >= 2 ? [REPORT_LISTEN, REPORT_VIP] : [REPORT_LISTEN];
    for (const t of targets) {
      const connectTo = { addr: text(t.addr), port: t.port };
      out.push({ clientFamily, connectTo, listen: REPORT_LISTEN });
      out.push({ clientFamily, clientAddr: text(REPORT_UNMANAGED_LOCAL), connectTo, listen: REPORT_LISTEN });
    }
    out.push({ clientFamily, connectTo: { addr: text(lonely.addr), port: lonely.port }, listen: lonely });
    // A pod reached by its own address: kept, its original the server end. A client routed via a waypoint.
    if (scope >= 2) out.push({ clientFamily, connectTo: { addr: text(REPORT_POD.addr), port: REPORT_POD.port }, listen: REPORT_POD });
    if (scope >= 2) out.push({ clientFamily, connectTo: { addr: text(REPORT_WAYPOINT_VIP.addr), port: REPORT_WAYPOINT_VIP.port }, listen: REPORT_WAYPOINT });
  };
  v4('inet');
  if (scope >= 2) {
    v4('mapped');
    out.push({ clientFamily: 'inet6', connectTo: REPORT_LISTEN6, listen: REPORT_LISTEN6 });
    out.push({ clientFamily: 'inet6', clientAddr: REPORT_NEAR_MAPPED_LOCAL, connectTo: REPORT_LISTEN6, listen: REPORT_LISTEN6 });
    out.push({ clientFamily: 'inet6', connectTo: REPORT_VIP6, listen: REPORT_LISTEN6 });
    out.push({ clientFamily: 'inet6', connectTo: REPORT_VIP_MAPPED_TO6, listen: REPORT_LISTEN6 });
    out.push({ clientFamily: 'inet6', connectTo: REPORT_VIP6_TO4, listen: REPORT_LISTEN });
    out.push({ clientFamily: 'inet', connectTo: REPORT_LISTEN, listen: REPORT_LISTEN_MAPPED });
  }
  return out;
}

/**
 * Every send sequence of at most `max` sends, shortest first: one byte from either end after each
 * wait, and from scope 2 a client send larger than a u16 counts (byte counts kept at 16 bits).
 */
function sendSequences(max: number, scope: number): ReportSend[][] {
  const one: ReportSend[] = ENDS.flatMap((from) => WAITS.map((w) => (w ? { from, size: 1, waitNs: w } : { from, size: 1 })));
  if (scope >= 2) one.push({ from: 'client', size: REPORT_LARGE_SEND });
  let level: ReportSend[][] = [[]];
  const out: ReportSend[][] = [[]];
  for (let n = 1; n <= max; n++) {
    level = level.flatMap((seq) => one.map((s) => [...seq, s]));
    out.push(...level);
  }
  return out;
}

/** The report cases of a scope (>= 1), in order. */
export function reportCasesAtScope(scope: number): ReportCase[] {
  const sends = sendSequences(scope >= 3 ? scope - 1 : 1, scope);
  const conns: ReportConn[] = [];
  // A waypoint-bound client sends nothing (its first send would carry the TLV, which the report harnesses do not read).
  const serverOnly = sends.filter((seq) => seq.every((x) => x.from === 'server'));
  for (const shape of shapes(scope))
    for (const s of shape.listen === REPORT_WAYPOINT ? serverOnly : sends)
      for (const closeWaitNs of CLOSE_WAITS)
        for (const firstClose of ENDS) for (const storeVerdict of [false, true]) conns.push({ ...shape, sends: s, ...(closeWaitNs ? { closeWaitNs } : {}), firstClose, storeVerdict });
  const out: ReportCase[] = [];
  for (const monitoring of [false, true])
    for (const periodic of [false, true])
      for (const nodeIp of [undefined, '127.0.0.1'])
        for (const k of conns) {
          const c: ReportCase = { monitoring, periodic, ...(nodeIp ? { nodeIp } : {}), state: REPORT_STATE, conns: [k] };
          out.push(c);
          // The same with the globals as the objects load them (section 7's defaults are these two).
          if (monitoring === REPORT_LOADED_GLOBALS.monitoring && periodic === REPORT_LOADED_GLOBALS.periodic && !nodeIp) out.push({ ...c, globalsAsLoaded: true });
          // Outside an enrolled namespace (only reports can tell; nothing rewrites a VIP there).
          if (monitoring && connectsDirectly(k)) out.push({ ...c, namespaceOutside: true });
          // From scope 2, both gates on and monitoring turned off once established: no periodic report, the CLOSE ones still.
          if (scope >= 2 && monitoring && periodic) out.push({ ...c, conns: [{ ...k, monitoringOff: true }] });
          // Periodic reports on, monitoring turned on once established: that connection stays unreported.
          if (!monitoring && periodic && !nodeIp) out.push({ ...c, conns: [{ ...k, monitoringOn: true }] });
          // Both gates on and the pod withdrawn once established: no periodic report; the CLOSE ones and the verdict's deletion still.
          if (monitoring && periodic) out.push({ ...c, conns: [{ ...k, withdraw: true }] });
          // Monitoring on, no time passing: the connection stays open while another is made and
          // closed (ReportConn.closeLast), each end's reports still its own.
          if (monitoring && !periodic && !nodeIp && !hasWaits(c)) out.push({ ...c, conns: [{ ...k, closeLast: true }, OVERLAPPING] });
          // Monitoring on, the first closer aborting (ReportConn.abort): both ends straight to CLOSE.
          if (monitoring && !nodeIp) out.push({ ...c, conns: [{ ...k, abort: true }] });
          // Monitoring on, a handshake that takes 1 s: the client's start is its connect, the server's its establishment.
          if (monitoring && !periodic && !nodeIp) out.push({ ...c, conns: [{ ...k, handshakeNs: HANDSHAKE_NS }] });
        }
  return out;
}
