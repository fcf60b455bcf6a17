// What the case runner needs from the world under the data path: the kernel's real sockets
// (bpf/kernel/sockets.ts) or the VM's emulated ones (bpf/vm/sockets.ts). Everything a case means
// (which socket an operation names, what a send expects to arrive, which ports listen, when to
// enrol) is decided once, in case-runner.ts; a layer only performs the step it is asked for and
// reports the raw result: errno numbers, sockaddr bytes, sock_storage_data bytes.

import type { Case, Family, Protocol, SockAddr, SocketId, StartEnrolment } from '../../model/domain.js';
import type { ChangeSink } from '../codec/tracker.js';
import type { ChoiceSource } from './choices.js';

/** What a connect let us see, in the kernel's own terms (buffers may be reused by the next call). */
export interface ConnectSeen {
  /** errno of a failed connect, or -1. */
  readonly error: number;
  /** struct sockaddr_in/in6 of the peer (getpeername) after a successful connect, else null. */
  readonly peer: Uint8Array | null;
  /** The socket's raw sock_storage_data, or null when it has none. */
  readonly storage: Uint8Array | null;
  /** Whether the socket's forward tuple is a key of km_socket. */
  readonly inSockhash: boolean;
}

/** One socket as the runner's table holds it: the layer's handle and what was sent on it. */
export interface RunnerSocket<S> {
  readonly id: SocketId;
  readonly family: Family;
  readonly protocol: Protocol;
  readonly handle: S;
  /** Messages the socket took so far (the next payload's sequence number). */
  sent: number;
  /** The bytes of those messages, in order: what the peer must receive after any prefix. */
  expected: Uint8Array[];
  /** DNS queries sendto sent so far (the next query's sequence number). */
  queries: number;
}

/** What one datagram a sendto offered came to. */
export interface DatagramSent {
  /** The errno name of a refused send, or null. */
  readonly error: string | null;
  /** The DNS stand-in that received it (address and port 53), or null when none did. */
  readonly arrivedAt: SockAddr | null;
}

/** What one recvfrom saw: a datagram's reported source and bytes, or an errno name. */
export interface DatagramReceived {
  readonly from: SockAddr | null;
  readonly data: string | null;
  readonly error: string | null;
}

export interface SocketLayer<S> {
  /**
   * Whether enrolment carries over from one case to the next (the kernel: km_manage stays as the
   * control connects left it). The VM starts every case from its initial state instead.
   */
  readonly keepsEnrolment: boolean;
  /**
   * Called first for every case (the VM resets what programs wrote). True when the layer emptied
   * the routing maps, so that the runner writes the next state whole.
   */
  beginCase(): boolean;
  /** Where the runner sends the map writes (value null: delete) that make the maps hold a state. */
  readonly writeMap: ChangeSink;
  /** After the writes of one state: writes still queued are made now. */
  mapsWritten(): void;
  /** Empties the routing maps, whatever wrote them. */
  resetMaps(): void;
  /**
   * Enrols (control connects to port 929) or withdraws (930) every enrolled local; for a written
   * enrolment (writtenEnrolment), empties km_manage and writes the namespace's netns cookie and
   * every enrolled local's IP, or the kind of key it names alone, with its value. Leaving written
   * entries empties km_manage first, so that no entry the programs would not have written (or
   * removed) outlives them.
   */
  setEnrolment(want: StartEnrolment): void;
  /**
   * Sets the objects' enable_monitoring global (Case.monitoringOff) for this case and the next,
   * in every object that has it; objects without it run as they are.
   */
  setMonitoring(on: boolean): void;
  /** Makes the ports this case may reach listen (listening.ts says which). */
  listen(c: Case): void;
  /** The answers to the programs' choice points (prandom, helper failures), where the layer can give them. */
  useChoices?(choices: ChoiceSource): void;

  /** A new socket; with `bindTo` (checked: environment.ts bindProblem), bound to that address, port 0. */
  open(id: SocketId, family: Family, protocol: Protocol, bindTo?: string): S;
  connect(s: RunnerSocket<S>, dest: SockAddr): ConnectSeen;
  /** Offers one message; returns the bytes the socket took (0 when it refused the message). */
  send(s: RunnerSocket<S>, payload: Uint8Array): number;
  /**
   * What the peer of a TCP connection has received so far, or null when the socket has no such
   * peer. `complete` says when the bytes are all there (a layer whose delivery is not immediate
   * waits for it, within a bound).
   */
  received(s: RunnerSocket<S>, complete: (got: Uint8Array) => boolean): Uint8Array | null;
  /** The socket's raw sock_storage_data, or null when it has none. */
  storage(s: RunnerSocket<S>): Uint8Array | null;
  close(s: RunnerSocket<S>): void;
  /**
   * Section 6 (DNS over UDP sends): one datagram `query` sent to `dest` on an unconnected or
   * connected UDP socket; the layer's DNS stand-ins answer what reaches them at port 53.
   */
  sendto(s: RunnerSocket<S>, dest: SockAddr, query: string): DatagramSent;
  /** The next datagram in the socket's receive queue, without waiting (EAGAIN when empty). */
  recvfrom(s: RunnerSocket<S>): DatagramReceived;
  /**
   * The stand-in at `from` (IPv4, port 53) sends one datagram `data` to the socket's port; the
   * errno name when the socket has no port yet (EDESTADDRREQ), else null.
   */
  deliver(s: RunnerSocket<S>, from: SockAddr, data: string): string | null;
  /** After the case's sockets are closed (the kernel drops connections no socket claimed). */
  endCase(): void;
}
