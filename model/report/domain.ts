// Connection reports and inbound authorization (kmesh-dataplane.md section 7) in domain terms:
// a report case (globals, routing state, connections with their traffic and closes) and what an
// executor observed, records already decoded at the bpf/ boundary (bpf/codec/report.ts).

import type { MapState, SockAddr } from '../domain.js';
import { canonicalIpAddr, sockAddrText, v4MappedInner, type Family } from '../address.js';

export type ReportEnd = 'client' | 'server';

export interface ReportConn {
  /**
   * The client socket's family (default AF_INET). An AF_INET6 client connects to a v4-mapped
   * address (an AF_INET listener) or to ::1 (an AF_INET6 listener), binding ::ffff:127.0.0.1 or
   * ::1 as its local address.
   */
  readonly clientFamily?: Family;
  /**
   * The local IP the client binds (default 127.0.0.1, ::ffff:127.0.0.1 for a v4-mapped client, ::1
   * for a native IPv6 one); one outside REPORT_MANAGED_LOCALS makes the client end unmanaged
   * (REPORT_UNMANAGED_LOCAL, v4-mapped or not, or REPORT_NEAR_MAPPED_LOCAL).
   */
  readonly clientAddr?: string;
  /** Where the client connects (a service VIP or the listener itself). */
  readonly connectTo: SockAddr;
  /** Where the server listens (an address outside REPORT_MANAGED_LOCALS: the server end is unmanaged). */
  readonly listen: SockAddr;
  /** In order; each after `waitNs` nanoseconds (default 0) since the step before. */
  readonly sends: ReadonlyArray<ReportSend>;
  readonly firstClose: ReportEnd;
  /**
   * The first closer aborts (SO_LINGER on, timeout 0): it sends a reset instead of a FIN, and
   * both ends go straight from ESTABLISHED to CLOSE (the closer as it closes, its peer as the
   * reset arrives), with no packet between. Its last data may be unacknowledged when the reset
   * leaves, so the sent byte counts of the connection's CLOSE reports are not judged.
   */
  readonly abort?: boolean;
  /** Nanoseconds that pass after the last send, before the closes (default 0). */
  readonly closeWaitNs?: number;
  /**
   * Nanoseconds that pass during the handshake (default 0): between the client's connect (its
   * connect4/6 pass, which stamps its connect_ns) and the SYN-ACK's arrival, which establishes
   * the client and then the server (whose connect_ns is stamped then). Only the VM's clock can
   * let it pass: a loopback handshake on the kernel completes inside connect().
   */
  readonly handshakeNs?: number;
  /** User space stores a verdict under the requested tuple once it reads the request. */
  readonly storeVerdict: boolean;
  /**
   * User space sets enable_monitoring to 0 once this connection is established (after reading
   * its authorization request), before its sends: no periodic report comes after (the gate is
   * off), its CLOSE report still does (the CLOSE rule has no gate), and the case's later
   * connections are not monitored.
   */
  readonly monitoringOff?: boolean;
  /**
   * User space sets enable_monitoring to 1 once this connection is established, before its
   * sends: a connection established with monitoring off stays unreported (no established report,
   * so no periodic one however long it lasts, and no CLOSE report), and the case's later
   * connections are monitored. Never with monitoringOff.
   */
  readonly monitoringOn?: boolean;
  /**
   * User space withdraws the pod once this connection is established (after reading its
   * authorization request), before its sends: a control connect to port 930 from each of
   * REPORT_MANAGED_LOCALS, so that neither their IPs nor the namespace's cookie is in km_manage.
   * Its ends are no longer managed, so no periodic report comes after; its CLOSE reports still do
   * and its verdict is still deleted at close (the CLOSE rule's one condition is the established
   * report; a verdict never outlives its connection). The case's later connections are not
   * managed, and connect straight to their listeners (nothing rewrites a VIP).
   */
  readonly withdraw?: boolean;
  /**
   * Both ends stay open until the case's later connections have been made and closed, then close
   * (in the case's order of such connections), so that connections overlap: a data path that
   * keeps a connection's report state anywhere but its own sockets' storage shows then. Only in
   * cases where no time passes (no waits), so that what each end is due stays its own.
   */
  readonly closeLast?: boolean;
}

/** Whether any connection of the case lets time pass (a send's, a close's or a handshake's wait). */
export function hasWaits(c: Pick<ReportCase, 'conns'>): boolean {
  return c.conns.some((k) => (k.closeWaitNs ?? 0) > 0 || (k.handshakeNs ?? 0) > 0 || k.sends.some((s) => (s.waitNs ?? 0) > 0));
}

/** Whether monitoring is on when connection `i` of the case is established (earlier ones may have turned it off or on). */
export function monitoredAt(c: Pick<ReportCase, 'monitoring' | 'conns'>, i: number): boolean {
  let on = c.monitoring;
  for (const k of c.conns.slice(0, i)) on = k.monitoringOff === true ? false : k.monitoringOn === true ? true : on;
  return on;
}

/** Whether the pod's local IPs are still enrolled when connection `i` is established (an earlier one may have withdrawn them). */
export function enrolledAt(c: Pick<ReportCase, 'conns'>, i: number): boolean {
  return !c.conns.slice(0, i).some((k) => k.withdraw === true);
}

/**
 * The local IP a client binds: its own (clientAddr), else 127.0.0.1, ::1 for an AF_INET6 client
 * of a native IPv6 listener, ::ffff:127.0.0.1 for one of an IPv4 listener (v4-mapped or not).
 */
export function clientLocalAddr(k: Pick<ReportConn, 'clientFamily' | 'clientAddr' | 'listen'>): string {
  if (k.clientAddr !== undefined) return k.clientAddr;
  if ((k.clientFamily ?? 'inet') === 'inet') return '127.0.0.1';
  return k.listen.addr.includes(':') && v4MappedInner(k.listen.addr) === null ? '::1' : '::ffff:127.0.0.1';
}

/** A tuple as text, client to server, IPv6 endpoints in brackets. */
export function tupleText(t: ReportTuple | null): string {
  return t ? `${sockAddrText(t.client)} -> ${sockAddrText(t.server)}` : 'no tuple';
}

/** Whether a client connects straight to its listener (v4-mapped folded): nothing to rewrite, no original destination. */
export function connectsDirectly(k: Pick<ReportConn, 'connectTo' | 'listen'>): boolean {
  const fold = (addr: string) => v4MappedInner(addr) ?? addr;
  return k.connectTo.port === k.listen.port && fold(k.connectTo.addr) === fold(k.listen.addr);
}

/**
 * Whether the client's connect records an original destination: it is enrolled and connects to
 * a frontend of the case's state (REPORT_STATE routes each of them: a VIP rewritten to its
 * backend, a pod address kept as it is), v4-mapped folded.
 */
export function recordsOriginal(c: Pick<ReportCase, 'state' | 'namespaceOutside'>, k: Pick<ReportConn, 'connectTo'>): boolean {
  if (c.namespaceOutside === true) return false;
  const to = canonicalIpAddr(v4MappedInner(k.connectTo.addr) ?? k.connectTo.addr);
  return c.state.frontends.some((f) => canonicalIpAddr(f.addr) === to);
}

export interface ReportSend {
  readonly from: ReportEnd;
  readonly size: number;
  /**
   * Time that passes before this send, ns. The VM moves its clock by exactly this much (the kernel
   * executor's cases that wait run there); the kernel harness really sleeps (a test's hand-written case).
   */
  readonly waitNs?: number;
}

/**
 * The local IPs both executors enrol (km_manage, through control connects): a socket is managed
 * exactly when its local IP is one of these (v4-mapped folded).
 */
export const REPORT_MANAGED_LOCALS: readonly string[] = ['127.0.0.1', '::1'];
/** A loopback address that is never enrolled: a socket bound to it is not managed. */
export const REPORT_UNMANAGED_LOCAL = '127.0.0.2';
/**
 * A native IPv6 address that is never enrolled, whose last 64 bits are those of ::ffff:127.0.0.1
 * (fd00:1::ffff:7f00:1): an AF_INET6 client bound to it is not managed, and it is no node or
 * gateway when 127.0.0.1 is one (node_ip holds ::ffff:127.0.0.1: a check of its low 64 bits alone
 * takes this client for the node).
 */
export const REPORT_NEAR_MAPPED_LOCAL = 'fd00:1::ffff:7f00:1';

export interface ReportCase {
  /** enable_monitoring and enable_periodic_report, as user space sets them before the case. */
  readonly monitoring: boolean;
  readonly periodic: boolean;
  /**
   * User space leaves both globals as the objects load them: section 7's defaults, so `monitoring`
   * is true and `periodic` false (REPORT_LOADED_GLOBALS). An object with other defaults than the
   * table's is seen only by such cases.
   */
  readonly globalsAsLoaded?: true;
  /** IPv4 addresses; user space stores them v4-mapped in node_ip / pod_gateway. */
  readonly nodeIp?: string;
  readonly podGateway?: string;
  readonly state: MapState;
  /**
   * The namespace's cookie is withdrawn from km_manage (a control connect to port 930 from the
   * unmanaged local) while the managed local IPs stay enrolled: connect4/6 then create no socket
   * storage, so a client end gets no outbound report however managed its IP is. Its clients
   * connect straight to their listeners (nothing rewrites a VIP).
   */
  readonly namespaceOutside?: boolean;
  /** Run one after another: listen, connect, accept, sends, closes. */
  readonly conns: readonly ReportConn[];
}

/** Section 7's defaults of enable_monitoring (1) and enable_periodic_report (0): what a case with globalsAsLoaded runs with. */
export const REPORT_LOADED_GLOBALS = { monitoring: true, periodic: false } as const;

/** Client to server, host-order ports. */
export interface ReportTuple {
  readonly family: Family;
  readonly client: SockAddr;
  readonly server: SockAddr;
}

export interface ProbeRecord {
  /** The raw type word; 0 IPv4 (also v4-mapped), 1 IPv6. */
  readonly type: number;
  /** The tuple in the view `type` names (null for a type that is neither). */
  readonly tuple: ReportTuple | null;
  readonly original: SockAddr | null;
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly connSuccess: number;
  readonly direction: number;
  readonly state: number;
  readonly durationNs: bigint;
  readonly startNs: bigint;
  readonly lastReportNs: bigint;
  readonly protocol: number;
  readonly srttUs: number;
  readonly rttMin: number;
  readonly totalRetrans: number;
  readonly lostOut: number;
  readonly padding: number;
  /** Bytes of the tuple and original-destination fields outside the view in use that are not 0. */
  readonly unusedNonZero: number;
  /** Where those bytes are: their offsets in the 128-byte record (absent when there are none). */
  readonly unusedAt?: readonly number[];
}

export interface AuthRecord {
  readonly type: number;
  readonly tuple: ReportTuple | null;
  readonly unusedNonZero: number;
}

/** The executor's monotonic clock (bpf_ktime_get_ns's) just before a client's connect and once its server end is established. */
export interface ConnectWindow {
  readonly fromNs: bigint;
  readonly toNs: bigint;
}

/**
 * Where an executor's clock can tell each end's connect_ns apart (the VM, whose clock is an
 * input): the client's, its connect4/6 pass; the server's, its establishment.
 */
export interface EndWindows {
  readonly client: ConnectWindow;
  readonly server: ConnectWindow;
}

export interface ReportObservation {
  /**
   * Per connection: the client's local address and the server's, as the sockets say, and when it
   * was set up (both ends' connect_ns, so every report's start, lie inside).
   */
  readonly conns: ReadonlyArray<{ readonly client: SockAddr; readonly server: SockAddr; readonly window?: ConnectWindow; readonly ends?: EndWindows }>;
  readonly probe: readonly ProbeRecord[];
  readonly auth: readonly AuthRecord[];
  /** km_auth_res keys left after every close. */
  readonly verdictsLeft: readonly ReportTuple[];
  /**
   * True when the executor's clock moved only by the case's waits (the VM): elapsed times are
   * exactly the waits. Otherwise (real time) an elapsed time is the waits plus well under 1 s.
   */
  readonly exactClock?: boolean;
}
