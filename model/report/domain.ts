// Connection reports and inbound authorization (kmesh-dataplane.md section 7) in domain terms:
// a report case (globals, routing state, connections with their traffic and closes) and what an
// executor observed, records already decoded at the bpf/ boundary (bpf/codec/report.ts).

import type { MapState, SockAddr } from '../domain.js';
import type { Family } from '../address.js';

export type ReportEnd = 'client' | 'server';

export interface ReportConn {
  /**
   * The client socket's family (default AF_INET). An AF_INET6 client connects to a v4-mapped
   * address (an AF_INET listener) or to ::1 (an AF_INET6 listener), binding ::ffff:127.0.0.1 or
   * ::1 as its local address.
   */
  readonly clientFamily?: Family;
  /** Where the client connects (a service VIP or the listener itself). */
  readonly connectTo: SockAddr;
  /** Where the server listens. */
  readonly listen: SockAddr;
  readonly sends: ReadonlyArray<{ readonly from: ReportEnd; readonly size: number }>;
  readonly firstClose: ReportEnd;
  /** User space stores a verdict under the requested tuple once it reads the request. */
  readonly storeVerdict: boolean;
  /** Sleep before the sends, ms (hand-written waits for periodic reports). */
  readonly waitMs?: number;
}

export interface ReportCase {
  readonly monitoring: boolean;
  readonly periodic: boolean;
  /** IPv4 addresses; user space stores them v4-mapped in node_ip / pod_gateway. */
  readonly nodeIp?: string;
  readonly podGateway?: string;
  readonly state: MapState;
  /** Run one after another: listen, connect, accept, sends, closes. */
  readonly conns: readonly ReportConn[];
}

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
}

export interface AuthRecord {
  readonly type: number;
  readonly tuple: ReportTuple | null;
  readonly unusedNonZero: number;
}

export interface ReportObservation {
  /** Per connection: the client's local address and the server's, as the sockets say. */
  readonly conns: ReadonlyArray<{ readonly client: SockAddr; readonly server: SockAddr }>;
  readonly probe: readonly ProbeRecord[];
  readonly auth: readonly AuthRecord[];
  /** km_auth_res keys left after every close. */
  readonly verdictsLeft: readonly ReportTuple[];
}
