// DNS over UDP sends (kmesh-dataplane.md section 6; docs/interpretation.md, DNS items): sendto
// through cgroup/sendmsg4, the DNS stand-in that answers every query reaching port 53 of a local
// address, the socket's receive queue, and recvfrom through cgroup/recvmsg4/recvmsg6. Also the
// datagrams of a connected UDP socket's send, and datagrams delivered from an arbitrary source.
// The kernel facts used here are measured on 6.18 (docs/interpretation.md).

import { AddressError, canonicalSockText, isIPv4Form, v4Mapped, v4MappedInner } from '../address.js';
import {
  CONTROL_ADDR,
  ControlPort,
  DNS_PORT,
  DNS_PROXY_UID,
  deliveredFor,
  dnsAnswerTo,
  dnsQueryFor,
  payloadTextFor,
  type Family,
  type MapState,
  type Observation,
  type Operation,
  type SockAddr,
  type StorageView,
} from '../domain.js';
import { datagramPeer, deliverSourceProblem, flowAfterConnect, flowSend, hasNativeLocal, routable, udpTakes, type Environment, type StaleFlow } from '../environment.js';
import type { PassRecord } from '../spec/passes.js';
import { indexMaps } from './maps.js';
import type { Branch, SocketState, World } from './types.js';
import { socketWith, withSocket } from './world.js';

/** A datagram waiting in a socket's receive queue: its real source (IPv4 text for IPv4 traffic). */
export interface Datagram {
  readonly from: SockAddr;
  readonly data: string;
}

/** What section 6 adds to a UDP socket. */
export interface DnsSocket {
  /** The socket has a port: every UDP connect, sendto and send autobinds it (to the wildcard when unconnected). */
  readonly bound: boolean;
  /** DNS queries sent by sendto so far (numbers the next one's bytes). */
  readonly queries: number;
  /** The most recent redirected query: the IPv4 server it addressed and the proxy it went to. */
  readonly last: { readonly server: string; readonly proxy: string } | null;
  readonly inbox: readonly Datagram[];
  /** What a connected send does after a failed reconnect (StaleFlow). */
  readonly flow: StaleFlow;
}

export const FRESH_DNS: DnsSocket = { bound: false, queries: 0, last: null, inbox: [], flow: 'ok' };
/** A socket bound at creation (Operation socket's bindTo): it has its port already. */
export const BOUND_DNS: DnsSocket = { bound: true, queries: 0, last: null, inbox: [], flow: 'ok' };

const EMPTY_STORAGE: StorageView = { viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null };

/**
 * The DNS proxy's IPv4 address (km_backend[0] with an IPv4-form address), or null. Read through
 * the state's index, as the connect pass reads it, so that exploration's lazy maps see the read.
 */
export function dnsProxy(maps: MapState): string | null {
  const b = indexMaps(maps).backends.get(DNS_PROXY_UID);
  return b && isIPv4Form(b.addr) ? b.addr : null;
}

/** The IPv4 address a destination of the socket's family reaches over IPv4 (v4-mapped inner), or null. */
function ipv4Of(family: Family, addr: string): string | null {
  return family === 'inet' ? addr : v4MappedInner(addr);
}

/** The stand-in answers a datagram that reaches port 53 of an address local to the namespace. */
function answered(env: Environment, at: SockAddr): boolean {
  return at.port === DNS_PORT && routable(env, at.addr.includes(':') ? 'inet6' : 'inet', { addr: at.addr, port: 0 });
}

/** Whether the kernel queues a datagram from `from` on the socket (environment.ts, udpTakes). */
function accepts(sock: SocketState, from: SockAddr): boolean {
  return udpTakes(sock.family, sock.peer, hasNativeLocal(sock.kernel), from);
}

function dnsOf(sock: SocketState): DnsSocket {
  return sock.dns ?? FRESH_DNS;
}

function put(world: World, id: number, after: SocketState, netnsEnrolled = world.netnsEnrolled): World {
  return withSocket(world, { id, socket: after, netnsEnrolled });
}

/**
 * After a connect (step.ts): UDP sockets are bound; a connect4 DNS rewrite is the socket's most
 * recent redirected query; `error` (null: connected) decides the socket's flow (StaleFlow).
 */
export function afterConnect(sock: SocketState, passes: readonly PassRecord[], error: string | null): SocketState {
  let last = dnsOf(sock).last;
  for (const p of passes) {
    if (p.path === 'dns' && p.result === 'rewritten' && p.target && isIPv4Form(p.target.addr) && !p.destIn.addr.includes(':')) {
      last = { server: p.destIn.addr, proxy: p.target.addr };
    }
  }
  const d = dnsOf(sock);
  const bound = d.bound || sock.protocol === 'udp';
  const flow = sock.protocol === 'udp' ? flowAfterConnect(d.flow, sock.family, error) : d.flow;
  if (last === d.last && bound === d.bound && flow === d.flow) return sock;
  return socketWith(sock, { dns: { bound, queries: d.queries, last, inbox: d.inbox, flow } });
}

/** sendto: `n` datagrams to `dest`; section 6's send hook runs for IPv4 (and v4-mapped) destinations. */
export function sendto(world: World, sock: SocketState, op: Extract<Operation, { op: 'sendto' }>, env: Environment, stepIndex: number, inputError: (m: string) => Error): Branch {
  if (sock.protocol !== 'udp') throw inputError(`operation ${stepIndex + 1} (sendto): socket ${op.sock} is TCP; sendto needs a UDP socket`);
  if (!Number.isInteger(op.n) || op.n < 0) throw inputError(`operation ${stepIndex + 1} (sendto): n must be a non-negative integer, got ${op.n}`);
  let dest: SockAddr;
  try {
    dest = { addr: canonicalSockText(sock.family, op.dest.addr), port: op.dest.port };
  } catch (e) {
    if (e instanceof AddressError) throw inputError(`operation ${stepIndex + 1} (sendto): ${e.message}; give an address of the socket's family`);
    throw e;
  }
  if (!Number.isInteger(dest.port) || dest.port < 1 || dest.port > 0xffff) {
    throw inputError(`operation ${stepIndex + 1} (sendto): port ${dest.port} is not an integer in 1..65535`);
  }
  const d0 = dnsOf(sock);
  if (op.n === 0) {
    return { world, observation: { op: 'sendto', sock: op.sock, arrivedAt: null, error: null, storage: sock.storage }, choices: [], passes: [] };
  }
  let enrolled = world.netnsEnrolled;
  let storage = sock.storage;
  let last = d0.last;
  const inner = ipv4Of(sock.family, dest.addr);
  let final: SockAddr = inner !== null ? { addr: inner, port: dest.port } : dest;
  if (inner !== null) {
    // cgroup/sendmsg4, once per datagram (each has the same effect as the first).
    const control = sock.family === 'inet' && inner === CONTROL_ADDR.inet ? controlOf(dest.port) : null;
    const proxy = dnsProxy(world.maps);
    if (control) {
      enrolled = control === 'enrol';
    } else if (enrolled && dest.port === DNS_PORT && sock.peer === null && proxy !== null) {
      storage = storage ?? EMPTY_STORAGE;
      if (!storage.hasSetIp) storage = { viaWaypoint: storage.viaWaypoint, hasSetIp: true, hasEncoded: storage.hasEncoded, original: dest };
      last = { server: inner, proxy };
      final = { addr: proxy, port: dest.port };
    }
  }
  // A datagram to the any-address goes to the socket's IPv4 source, or loopback (measured).
  final = datagramPeer(final, sock.kernel);
  const reach = routable(env, final.addr.includes(':') ? 'inet6' : 'inet', { addr: final.addr, port: 0 });
  // A socket whose local address is v4-mapped cannot send to a routed native IPv6 address (measured).
  const mappedLocal = sock.kernel.local !== null && v4MappedInner(sock.kernel.local) !== null;
  const error = !reach ? 'ENETUNREACH' : mappedLocal && inner === null ? 'EAFNOSUPPORT' : null;
  const arrivedAt = error === null && answered(env, final) ? final : null;
  const inbox = [...d0.inbox];
  if (arrivedAt && accepts(sock, arrivedAt)) {
    for (let i = 0; i < op.n; i++) inbox.push({ from: arrivedAt, data: dnsAnswerTo(dnsQueryFor(op.sock, d0.queries + i)) });
  }
  const after: SocketState = socketWith(sock, { storage, dns: { bound: true, queries: d0.queries + op.n, last, inbox, flow: d0.flow } });
  const observation: Observation = { op: 'sendto', sock: op.sock, arrivedAt, error, storage };
  return { world: put(world, op.sock, after, enrolled), observation, choices: [], passes: [] };
}

function controlOf(port: number): 'enrol' | 'withdraw' | null {
  if (port === ControlPort.enrol) return 'enrol';
  if (port === ControlPort.withdraw) return 'withdraw';
  return null;
}

/**
 * A connected UDP socket's `send` of `messages` datagrams to its peer: the send hook runs for a
 * v4-mapped peer of an AF_INET6 socket but never redirects a connected socket, so each reaches the
 * peer; the stand-in answers those at port 53. Returns the socket afterwards.
 */
export function udpSend(sock: SocketState, id: number, messages: number, env: Environment): SocketState {
  const d0 = dnsOf(sock);
  // Every send autobinds the socket, even one the kernel then refuses (EDESTADDRREQ, measured).
  if (sock.peer === null) return messages > 0 && !d0.bound ? socketWith(sock, { dns: { bound: true, queries: d0.queries, last: d0.last, inbox: d0.inbox, flow: d0.flow } }) : sock;
  const inner = ipv4Of(sock.family, sock.peer.addr);
  const at: SockAddr = { addr: inner ?? sock.peer.addr, port: sock.peer.port };
  const inbox = [...d0.inbox];
  // After a failed reconnect, one datagram at most reaches the peer (StaleFlow).
  const { reaching, flow } = flowSend(d0.flow, messages);
  if (answered(env, at) && accepts(sock, at)) {
    for (let i = 0; i < reaching; i++) inbox.push({ from: at, data: dnsAnswerTo(payloadTextFor(id, sock.sent + i)) });
  }
  return socketWith(sock, { sent: sock.sent + messages, dns: { bound: d0.bound || messages > 0, queries: d0.queries, last: d0.last, inbox, flow } });
}

/** recvfrom: the next datagram, its source as cgroup/recvmsg4 (AF_INET) or recvmsg6 (AF_INET6) reports it. */
export function recvfrom(world: World, sock: SocketState, id: number): Branch {
  const d0 = dnsOf(sock);
  const [head, ...rest] = d0.inbox;
  if (!head) {
    const observation: Observation = { op: 'recvfrom', sock: id, from: null, data: null, error: 'EAGAIN', storage: sock.storage };
    return { world, observation, choices: [], passes: [] };
  }
  let source = head.from;
  const last = d0.last;
  if (!source.addr.includes(':') && last && source.port === DNS_PORT && source.addr === last.proxy) {
    source = { addr: last.server, port: source.port };
  }
  const from: SockAddr = sock.family === 'inet6' && !source.addr.includes(':') ? { addr: v4Mapped(source.addr), port: source.port } : source;
  const after: SocketState = socketWith(sock, { dns: { bound: d0.bound, queries: d0.queries, last: d0.last, inbox: rest, flow: d0.flow } });
  const observation: Observation = { op: 'recvfrom', sock: id, from, data: head.data, error: null, storage: sock.storage };
  return { world: put(world, id, after), observation, choices: [], passes: [] };
}

/** deliver: the stand-in sends a datagram from `from` (IPv4, or native IPv6 to an AF_INET6 socket) to the socket's port. */
export function deliver(world: World, sock: SocketState, op: Extract<Operation, { op: 'deliver' }>, stepIndex: number, env: Environment, inputError: (m: string) => Error): Branch {
  if (sock.protocol !== 'udp') throw inputError(`operation ${stepIndex + 1} (deliver): socket ${op.sock} is TCP; deliver needs a UDP socket`);
  const wrong = deliverSourceProblem(env, sock.family, op.from);
  if (wrong !== null) throw inputError(`operation ${stepIndex + 1} (deliver): ${wrong}`);
  const d0 = dnsOf(sock);
  if (!d0.bound) {
    return { world, observation: { op: 'deliver', sock: op.sock, error: 'EDESTADDRREQ' }, choices: [], passes: [] };
  }
  if (!accepts(sock, op.from)) return { world, observation: { op: 'deliver', sock: op.sock, error: null }, choices: [], passes: [] };
  const after: SocketState = socketWith(sock, { dns: { bound: d0.bound, queries: d0.queries, last: d0.last, inbox: [...d0.inbox, { from: op.from, data: deliveredFor(op.sock) }], flow: d0.flow } });
  return { world: put(world, op.sock, after), observation: { op: 'deliver', sock: op.sock, error: null }, choices: [], passes: [] };
}
