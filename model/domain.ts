// The vocabulary every layer shares: map states, operations on sockets, and what can be observed
// of them. Plain JSON-friendly data (arrays, not Maps) so that cases can be saved, replayed,
// diffed and frozen. No bytes here: encoding to the ABI happens in bpf/codec.

import type { Family, IpAddr, SockAddr } from './address.js';
import { textMemo } from '../shared/memo.js';
// Before any record is made: layouts.ts settles the records' layouts once.
import './layouts.js';

export type { Family, IpAddr, SockAddr } from './address.js';

export const PRIO_GROUPS = 7;
export const PORT_SLOTS = 10;
export const SERVICES_PER_BACKEND = 10;
/** Backend uid reserved for the DNS proxy. */
export const DNS_PROXY_UID = 0;
export const DNS_PORT = 53;
/** The kernel's MAX_TAIL_CALL_CNT: at most this many tail calls, so at most 34 passes. */
export const TAIL_CALL_LIMIT = 33;

export const LbPolicy = { random: 0, strict: 1, failover: 2 } as const;
export type KnownLbPolicy = (typeof LbPolicy)[keyof typeof LbPolicy];

export const ControlPort = { enrol: 929, withdraw: 930 } as const;
export const CONTROL_ADDR = { inet: '0.0.0.2', inet6: '::2' } as const;

/** (wp_addr, waypoint_port) as stored; configured only when port != 0 and addr is not all zero. */
export interface Waypoint {
  readonly addr: IpAddr;
  /** A map port (MapPort); 0 means no waypoint. */
  readonly port: number;
}

/**
 * A port as a map stores it: a u32 whose low 16 bits hold the port. In the domain, the host-order
 * port plus the u32's upper half times 65536; consistent states have no upper half, raw states
 * may (interpretation.md, item 22). A slot matches a destination only when the whole u32 equals
 * its port, and a waypoint is configured when the whole u32 is not 0.
 */
export type MapPort = number;

/** The port a rewrite to `port` writes: user_port keeps the low 16 bits of what a program stores. */
export function writtenPort(port: MapPort): number {
  return port & 0xffff;
}

export const NO_WAYPOINT: Waypoint = { addr: '0.0.0.0', port: 0 };

/** km_frontend: a service VIP or pod IP -> a service id or, for direct pod access, a backend uid. */
export interface Frontend {
  readonly addr: IpAddr;
  readonly upstreamId: number;
}

/** km_service. Arrays have exactly PRIO_GROUPS and PORT_SLOTS entries; ports are map ports (MapPort). */
export interface Service {
  readonly id: number;
  readonly endpointCounts: readonly number[];
  /** 0 random, 1 strict, 2 failover; any other value is kept as is (raw states). */
  readonly lbPolicy: number;
  readonly servicePorts: readonly MapPort[];
  readonly targetPorts: readonly MapPort[];
  readonly waypoint: Waypoint;
}

/** km_endpoint: (service, priority group, 1-based index) -> backend uid. */
export interface Endpoint {
  readonly serviceId: number;
  readonly prio: number;
  readonly index: number;
  readonly backendUid: number;
}

/** km_backend. `services` has at most SERVICES_PER_BACKEND ids (service_count is its length). */
export interface Backend {
  readonly uid: number;
  readonly addr: IpAddr;
  readonly services: readonly number[];
  readonly waypoint: Waypoint;
}

/** The routing maps' contents, one entry per key. */
export interface MapState {
  readonly frontends: readonly Frontend[];
  readonly services: readonly Service[];
  readonly endpoints: readonly Endpoint[];
  readonly backends: readonly Backend[];
}

export const EMPTY_STATE: MapState = { frontends: [], services: [], endpoints: [], backends: [] };

/** Whether a state is one the control plane could have written (section 5) or arbitrary. */
export type StateKind = 'consistent' | 'raw';

export type Protocol = 'tcp' | 'udp';
export type SocketId = number;

/**
 * One step of a case. Control connects (enrolment) are ordinary connects to CONTROL_ADDR.
 * `apply` replaces the routing maps with a new state (executors apply it as a diff).
 */
export type Operation =
  /**
   * A new socket. `bindTo`: bound at once to this address of the namespace, port 0 (the kernel
   * picks one), so that its programs see that source (AF_INET UDP only: environment.ts bindProblem).
   */
  | { readonly op: 'socket'; readonly sock: SocketId; readonly family: Family; readonly protocol: Protocol; readonly bindTo?: string }
  | { readonly op: 'connect'; readonly sock: SocketId; readonly dest: SockAddr }
  | { readonly op: 'send'; readonly sock: SocketId; readonly messages: number }
  | { readonly op: 'close'; readonly sock: SocketId }
  /** UDP: `n` datagrams (DNS queries) to `dest`, each naming its destination (section 6). */
  | { readonly op: 'sendto'; readonly sock: SocketId; readonly dest: SockAddr; readonly n: number }
  /** UDP: takes the next datagram of the socket's queue, asking for its source. */
  | { readonly op: 'recvfrom'; readonly sock: SocketId }
  /** A datagram from `from` (an IPv4 address of the namespace, sent by the DNS stand-in) to the socket's port. */
  | { readonly op: 'deliver'; readonly sock: SocketId; readonly from: SockAddr }
  | { readonly op: 'apply'; readonly state: MapState };

/** A complete, replayable input: the maps, whether the namespace starts enrolled, the steps. */
export interface Case {
  readonly state: MapState;
  readonly kind: StateKind;
  readonly enrolled: boolean;
  /**
   * Set when the namespace starts enrolled by km_manage entries written directly, as a control
   * plane would (its netns cookie and each enrolled local IP), each with this value: 0 by the ABI,
   * others in raw states (a key present is enrolled, whatever its value). Absent: enrolled by
   * control connects (section 3, step 1), the programs writing the keys themselves.
   */
  readonly enrolmentWrite?: number;
  /**
   * Set (with enrolmentWrite 0) when the written entries are of one kind only: the netns cookie
   * alone (connect4/6 see the namespace enrolled; sockops and the reports see no local IP
   * managed) or the enrolled locals' IPs alone (the reverse). A control plane may write either
   * without the other; the programs read each where section 3 or 4 says. Absent: both.
   */
  readonly enrolmentKeys?: ManageKeys;
  /**
   * Set when the case runs with the objects' `enable_monitoring` global at 0 (section 7): user
   * space may turn connection reports off at any time, and routing, km_socket and the TLV
   * (sections 3-4) must not change. Absent: 1, the ABI's default.
   */
  readonly monitoringOff?: true;
  readonly ops: readonly Operation[];
}

/** Whether `enable_monitoring` is 1 for case `c` (Case.monitoringOff). */
export function monitoringOf(c: Pick<Case, 'monitoringOff'>): boolean {
  return c.monitoringOff !== true;
}

/** The km_manage keys of one kind: the namespace's netns cookie, or the enrolled locals' IPs. */
export type ManageKeys = 'cookie' | 'locals';

/**
 * How a case's namespace starts, as one value: not enrolled (false), enrolled by control connects
 * (true), by km_manage entries written with this value (a number), or by the ABI's entries (value
 * 0) of one kind only (Case.enrolmentKeys).
 */
export type StartEnrolment = boolean | number | `${ManageKeys}-only`;

export function startEnrolment(c: Case): StartEnrolment {
  if (!c.enrolled) return false;
  return c.enrolmentKeys !== undefined ? `${c.enrolmentKeys}-only` : (c.enrolmentWrite ?? true);
}

/** The Case fields of a start enrolment. */
export function enrolmentFields(e: StartEnrolment): Pick<Case, 'enrolled' | 'enrolmentWrite' | 'enrolmentKeys'> {
  if (typeof e === 'boolean') return { enrolled: e };
  if (typeof e === 'number') return { enrolled: true, enrolmentWrite: e };
  return { enrolled: true, enrolmentWrite: 0, enrolmentKeys: e === 'cookie-only' ? 'cookie' : 'locals' };
}

/** The km_manage entries a start enrolment writes (its value and which keys), or null: control connects or none. */
export function writtenEnrolment(e: StartEnrolment): { readonly value: number; readonly keys: ManageKeys | 'both' } | null {
  if (typeof e === 'number') return { value: e, keys: 'both' };
  if (e === 'cookie-only') return { value: 0, keys: 'cookie' };
  if (e === 'locals-only') return { value: 0, keys: 'locals' };
  return null;
}

/** Whether km_manage holds the namespace's netns cookie when case `c` starts (section 3, step 2). */
export function netnsEnrolledAtStart(c: Pick<Case, 'enrolled' | 'enrolmentKeys'>): boolean {
  return c.enrolled && c.enrolmentKeys !== 'locals';
}

/** Whether km_manage holds the enrolled locals' IPs when case `c` starts (section 4; section 7's "managed"). */
export function localsEnrolledAtStart(c: Pick<Case, 'enrolled' | 'enrolmentKeys'>): boolean {
  return c.enrolled && c.enrolmentKeys !== 'cookie';
}

/** What the checker reads back from km_sockstorage (docs/interpretation.md, item 10). */
export interface StorageView {
  readonly viaWaypoint: boolean;
  readonly hasSetIp: boolean;
  readonly hasEncoded: boolean;
  /** The recorded original destination, in the socket's family; null while has_set_ip is 0. */
  readonly original: SockAddr | null;
}

/** The original-destination TLV as parsed from the start of a stream. */
export interface Tlv {
  /** 'inet' for the 16-byte form (length 6), 'inet6' for the 28-byte form (length 18). */
  readonly form: Family;
  readonly original: SockAddr;
}

/** What a listener at the peer has received on this connection so far. */
export interface StreamView {
  /** The prefix found at the start, or null when the stream starts with the payload. */
  readonly tlv: Tlv | null;
  /** True when the bytes after the prefix are exactly the payload sent so far. */
  readonly payloadIntact: boolean;
  /** Hex of everything received, for reports. */
  readonly hex: string;
}

/** What one operation let us see of the socket it touched. */
export interface Observation {
  readonly op: Operation['op'];
  readonly sock: SocketId | null;
  /** connect: where the socket is connected to, or null when the connect failed. */
  readonly peer?: SockAddr | null;
  /** connect: errno name of a failed connect (e.g. ECONNREFUSED), else null. */
  readonly error?: string | null;
  readonly storage?: StorageView | null;
  readonly inSockhash?: boolean;
  /** send: the stream as the peer saw it after this send. */
  readonly stream?: StreamView | null;
  /**
   * sendto: where the DNS stand-in received the queries (the address they were sent to after the
   * programs, as the stand-in saw it: IPv4 text for IPv4 traffic, v4-mapped sends included), or
   * null when no stand-in received them (a port other than 53, or an error).
   */
  readonly arrivedAt?: SockAddr | null;
  /** recvfrom: the source the application is told, in the socket's family; null when nothing was received. */
  readonly from?: SockAddr | null;
  /** recvfrom: the datagram's bytes as text; null when nothing was received. */
  readonly data?: string | null;
}

/** The bytes of DNS query `seq` (0-based, per socket) that socket `sock` sends. */
export function dnsQueryFor(sock: SocketId, seq: number): string {
  return `kmesh-check s${sock} q${seq};`;
}

/** The DNS stand-in's answer to a query: the same bytes behind a marker. */
export function dnsAnswerTo(query: string): string {
  return `ans:${query}`;
}

/** The bytes of a datagram a `deliver` operation sends to socket `sock`. */
export function deliveredFor(sock: SocketId): string {
  return `kmesh-check deliver s${sock};`;
}

/**
 * Payload of message `seq` (0-based) on socket `sock` as text (ASCII): what a datagram's receiver
 * reads. One byte when sock + seq is odd, so that first messages come both shorter and longer than
 * the TLV prefix (16 or 28 bytes) across a case's sockets, and later messages of one socket vary too.
 */
export function payloadTextFor(sock: SocketId, seq: number): string {
  return (sock + seq) % 2 === 1 ? String.fromCharCode(0x61 + (seq % 26)) : `kmesh-check s${sock} m${seq};`;
}

const UTF8 = new TextEncoder();

/** Payload of message `seq` (0-based) on socket `sock`: the same bytes in every executor. */
export function payloadFor(sock: SocketId, seq: number): Uint8Array {
  return UTF8.encode(payloadTextFor(sock, seq));
}

/** Lowercase hex of payloadFor(sock, seq), as streams are compared (interned: cases reuse a few). */
export function payloadHexFor(sock: SocketId, seq: number): string {
  return payloadHexMemo(`${sock}/${seq}`);
}

const payloadHexMemo = textMemo((key) => {
  const [sock, seq] = key.split('/').map(Number);
  let out = '';
  for (const b of payloadFor(sock ?? 0, seq ?? 0)) out += (b | 0x100).toString(16).slice(1);
  return out;
}, 10_000);
