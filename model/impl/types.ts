// The reference model's state and results. Plain readonly data: worlds are updated by copying (world.ts) and
// shared between branches, so nothing here is ever mutated in place.

import type { Family, IpAddr, MapState, Observation, Protocol, SockAddr, StorageView, StreamView } from '../domain.js';
import type { KernelSocket } from '../environment.js';
import type { PassRecord } from '../spec/passes.js';
import type { DnsSocket } from './dns.js';

export type { PassPath, PassRecord, PassResult, PassTarget, TargetKind } from '../spec/passes.js';

export interface SocketState {
  readonly family: Family;
  readonly protocol: Protocol;
  /** Where the kernel has the socket associated (getpeername), or null. */
  readonly peer: SockAddr | null;
  /** A TCP socket whose connect succeeded: further connects fail with EISCONN. */
  readonly connected: boolean;
  /** A TCP socket left in SYN_SENT (environment.kernelConnect): further connects fail with EALREADY. */
  readonly connecting: boolean;
  /** What the kernel keeps of the socket for later connects (local address, IPv4 source, ...). */
  readonly kernel: KernelSocket;
  readonly storage: StorageView | null;
  readonly inSockhash: boolean;
  /** Messages the peer has received on this connection (the next payload's sequence number). */
  readonly sent: number;
  /** The stream as the peer sees it; null until a TCP connect succeeds. */
  readonly stream: StreamView | null;
  /** UDP datagrams and DNS (section 6, model/impl/dns.ts); absent means fresh. */
  readonly dns?: DnsSocket;
}

export interface World {
  readonly maps: MapState;
  /** The km_manage entry of the namespace cookie. */
  readonly netnsEnrolled: boolean;
  /** km_manage ip_addr entries (local IPs, v4-mapped folded), sorted. */
  readonly enrolledIps: readonly IpAddr[];
  /** Open sockets by id. */
  readonly sockets: Readonly<Record<number, SocketState>>;
}

/** One LB draw: every index in 1..count is possible (prandom % count + 1). */
export interface Choice {
  /** 0-based position of the operation in the case. */
  readonly step: number;
  /** 1-based pass within that connect. */
  readonly pass: number;
  readonly serviceId: number;
  readonly prio: number;
  readonly count: number;
  readonly index: number;
  /**
   * How many indices this branch stands for: 1, except for the indices with no km_endpoint entry,
   * which all fail alike and are enumerated once (index = the smallest of them).
   */
  readonly alike: number;
}

/** One possible outcome of one operation. */
export interface Branch {
  readonly world: World;
  readonly observation: Observation;
  readonly choices: readonly Choice[];
  readonly passes: readonly PassRecord[];
}

/** One possible observation trace of a whole case, with one run of choices that produces it. */
export interface Trace {
  readonly observations: readonly Observation[];
  /** Pass records per operation (empty for operations that run no connect program). */
  readonly passes: readonly (readonly PassRecord[])[];
  /** The draws of the representative run, in order. */
  readonly choices: readonly Choice[];
}
