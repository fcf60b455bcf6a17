// What the harness around the data path looks like, as data: which addresses are local inside the
// private network namespace, which source address sockets get, which ports have no listener.
// The reference model needs it to predict what a real connect reports (peer or error) and whether
// sockops saw the connection established; executors publish the environment they really built.
// `kernelConnect` is the Linux socket layer around the programs (route, source address, listener,
// the any-address and v4-mapped rules), measured on 6.18 in the harness's namespace.

import { AddressError, canonicalSockText, foldedIpAddr, parseAddress, v4MappedInner, formatIPv4, type Family, type IpAddr, type SockAddr } from './address.js';
import { CONTROL_ADDR, ControlPort, type Protocol } from './domain.js';
import { DestMemo, PerSocketKind } from './dest-memo.js';

export interface Environment {
  /** The pod's own address per family: the source of every harness socket. */
  readonly podAddress: { readonly inet: string; readonly inet6: string };
  /** CIDRs that are local inside the namespace (loopback and AnyIP routes). */
  readonly localPrefixes: readonly string[];
  /**
   * Ports with no listener: a TCP connect there is refused. Every other port a case names listens
   * (bpf/runner/listening.ts: connect destinations, service, target and waypoint ports), which
   * covers every port a data path that follows the semantics can reach.
   */
  readonly closedPorts: readonly number[];
  /**
   * The local addresses a case that starts enrolled has in km_manage: the harness makes one TCP
   * control connect bound to each (AF_INET for IPv4 text, AF_INET6 for IPv6 text; no v4-mapped
   * text, sockops folds those), and the model starts with their km_manage keys. 127.0.0.1 is here
   * because a connect to the any-address gets it as its local address whatever the routes say.
   */
  readonly enrolledLocals: readonly string[];
}

/** The first port of the kernel's default ephemeral range (net.ipv4.ip_local_port_range): autobound sockets get one at or above it. */
export const FIRST_EPHEMERAL_PORT = 32768;

export const DEFAULT_ENVIRONMENT: Environment = {
  podAddress: { inet: '10.255.0.1', inet6: 'fd00:ffff::1' },
  localPrefixes: ['127.0.0.0/8', '10.0.0.0/8', '0.0.0.2/32', '::1/128', '::2/128', 'fd00::/8'],
  closedPorts: [0, ControlPort.enrol, ControlPort.withdraw],
  enrolledLocals: ['10.255.0.1', '127.0.0.1', 'fd00:ffff::1'],
};

/** The kernel's loopback targets for a connect to the any-address (net/ipv4/route.c, net/ipv6). */
export const LOOPBACK = { inet: '127.0.0.1', inet6: '::1', mapped: '::ffff:127.0.0.1' } as const;
/** The any-address spellings a connect may ask for, as canonical socket text. */
export const ANY_ADDRESS = { inet: '0.0.0.0', inet6: '::', mapped: '::ffff:0.0.0.0' } as const;

function inPrefix(addr: Uint8Array, cidr: string): boolean {
  const [base, lenText] = cidr.split('/');
  const net = parseAddress(base ?? '');
  if (net.length !== addr.length) return false;
  const len = Number(lenText ?? String(net.length * 8));
  for (let bit = 0; bit < len; bit++) {
    const i = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((addr[i] ?? 0) & mask) !== ((net[i] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Where the kernel connects a fresh socket asked to go to `dest`: connecting to the unspecified
 * address means loopback (0.0.0.0 -> 127.0.0.1, :: -> ::1, ::ffff:0.0.0.0 -> ::ffff:127.0.0.1);
 * everything else is itself. A socket that already has a local address may differ: kernelConnect.
 */
export function kernelPeer(family: Family, dest: SockAddr): SockAddr {
  if (family === 'inet') return dest.addr === '0.0.0.0' ? { addr: '127.0.0.1', port: dest.port } : dest;
  if (dest.addr === '::') return { addr: '::1', port: dest.port };
  if (dest.addr === '::ffff:0.0.0.0') return { addr: '::ffff:127.0.0.1', port: dest.port };
  return dest;
}

/**
 * Why a socket of `family` and `protocol` cannot be bound to `addr` here, or null. Only what is
 * measured and modelled: an AF_INET UDP socket, to an IPv4 address of the namespace (canonical
 * text), neither the any-address nor the control address, outside 127.0.0.0/8 (a loopback
 * source towards the namespace's other addresses is not modelled). Its local address and IPv4
 * source are then `addr` (socketAtCreation).
 */
export function bindProblem(env: Environment, family: Family, protocol: Protocol, addr: string): string | null {
  if (family !== 'inet' || protocol !== 'udp') return `only an AF_INET UDP socket is bound (bindTo), not an ${family === 'inet' ? 'AF_INET' : 'AF_INET6'} ${protocol.toUpperCase()} one`;
  let canonical: string;
  try {
    canonical = canonicalSockText('inet', addr);
  } catch (e) {
    if (e instanceof AddressError) return `bindTo ${addr}: ${e.message}`;
    throw e;
  }
  if (canonical !== addr) return `write bindTo ${addr} as ${canonical}`;
  if (addr === ANY_ADDRESS.inet || addr === CONTROL_ADDR.inet || addr.startsWith('127.'))
    return `bindTo ${addr}: give an address of the namespace outside 127.0.0.0/8, not the any-address or the control address`;
  if (!routable(env, 'inet', { addr, port: 0 })) return `bindTo ${addr} is not an address of the namespace (environment.localPrefixes)`;
  return null;
}

/**
 * The kernel's view of a socket as its `socket` operation makes it: bound to `bindTo` (bindProblem
 * gave null; the address is its local address and IPv4 source), else fresh.
 */
export function socketAtCreation(op: { readonly bindTo?: string }): KernelSocket {
  return op.bindTo === undefined ? FRESH_SOCKET : socketState(op.bindTo, op.bindTo, false);
}

/**
 * An AF_INET UDP socket's connect that fails at the route lookup (ENETUNREACH) leaves the
 * association as it was but the socket's cached flow naming the failed destination (measured on
 * 6.18): the next datagram a connected send offers is routed afresh and reaches the peer
 * ('reroute'); every later one goes out towards the failed destination, which has no route, and
 * is lost ('stale'), until a connect succeeds ('ok').
 */
export type StaleFlow = 'ok' | 'reroute' | 'stale';

/** The flow of a UDP socket of `family` after a connect that ended with `error` (null: it connected). */
export function flowAfterConnect(flow: StaleFlow, family: Family, error: string | null): StaleFlow {
  return error === null ? 'ok' : error === 'ENETUNREACH' && family === 'inet' ? 'reroute' : flow;
}

/** Of `messages` datagrams a connected send offers, how many reach the peer, and the flow after. */
export function flowSend(flow: StaleFlow, messages: number): { readonly reaching: number; readonly flow: StaleFlow } {
  if (flow !== 'reroute') return { reaching: flow === 'ok' ? messages : 0, flow };
  return { reaching: Math.min(1, messages), flow: messages > 0 ? 'stale' : 'reroute' };
}

/**
 * Where a datagram a UDP socket sends to `dest` (after the send hook: IPv4 text, also for an
 * AF_INET6 socket's v4-mapped destination, or native IPv6) goes. Measured on 6.18: the IPv4
 * any-address means the socket's IPv4 source when it has one (bound, or connected), else
 * 127.0.0.1, whose route then gives the source; `::` means ::1.
 */
export function datagramPeer(dest: SockAddr, socket: KernelSocket): SockAddr {
  if (dest.addr === ANY_ADDRESS.inet) return { addr: socket.source4 ?? LOOPBACK.inet, port: dest.port };
  return kernelPeer(dest.addr.includes(':') ? 'inet6' : 'inet', dest);
}

// Per environment, by family then address text (no key strings to build on the hot path).
const routeMemo = new WeakMap<Environment, Record<Family, Map<string, boolean>>>();

/** Whether a connect to `dest` finds a route inside the namespace (memoised per environment). */
export function routable(env: Environment, family: Family, dest: SockAddr): boolean {
  let byFamily = routeMemo.get(env);
  if (!byFamily) routeMemo.set(env, (byFamily = { inet: new Map(), inet6: new Map() }));
  const m = byFamily[family];
  let r = m.get(dest.addr);
  if (r === undefined) {
    const peer = kernelPeer(family, dest);
    const inner = family === 'inet6' ? v4MappedInner(peer.addr) : null;
    const bytes = parseAddress(inner ?? peer.addr);
    r = env.localPrefixes.some((cidr) => inPrefix(bytes, cidr));
    if (m.size > 20_000) m.clear();
    m.set(dest.addr, r);
  }
  return r;
}

/** Whether a TCP connect to `dest` is accepted (routable and a listener on the port). */
export function accepts(env: Environment, family: Family, dest: SockAddr): boolean {
  return routable(env, family, dest) && !env.closedPorts.includes(dest.port);
}

/**
 * The local address a fresh socket of `family` gets when it connects to `peer` (pod address): the
 * route's source. Not for any-address destinations, whose local is loopback (see kernelConnect).
 */
export function localAddressFor(env: Environment, family: Family, peer: SockAddr): string {
  if (family === 'inet') return env.podAddress.inet;
  const inner = v4MappedInner(peer.addr);
  if (inner === null) return env.podAddress.inet6;
  // A v4-mapped peer is reached over IPv4, from the pod's IPv4 address, seen mapped.
  return `::ffff:${formatIPv4(parseAddress(env.podAddress.inet))}`;
}

// ---- the socket layer ------------------------------------------------------------------------

/** What the kernel keeps of a socket between connects, as far as later connects depend on it. */
export interface KernelSocket {
  /** getsockname's address once set (canonical text in the socket's family), else null. */
  readonly local: string | null;
  /**
   * The IPv4 source the socket uses towards IPv4 (and, on AF_INET6, v4-mapped) destinations once
   * set, else null. AF_INET: the local address. AF_INET6: the inner address of a v4-mapped local;
   * a socket with a native IPv6 local gets one, unseen, from its first v4-mapped UDP connect.
   */
  readonly source4: string | null;
  /**
   * TCP AF_INET6: the socket's last v4-mapped connect was refused by an RST (after the SYN left).
   * The kernel then keeps the socket's IPv4 transmit path, and a later connect to a native IPv6
   * address never completes (SYN_SENT until ETIMEDOUT, ~134 s on 6.18).
   */
  readonly mappedRefused: boolean;
}

// One frozen object per distinct socket state, so that the connect memo can key on identity.
const socketStates = new Map<string, KernelSocket>();
const internedStates = new WeakSet<KernelSocket>();

/** The (shared, frozen) socket state with these fields. */
export function socketState(local: string | null, source4: string | null, mappedRefused: boolean): KernelSocket {
  const key = `${local}|${source4}|${mappedRefused}`;
  let s = socketStates.get(key);
  if (s === undefined) {
    if (socketStates.size > 10_000) socketStates.clear();
    s = Object.freeze({ local, source4, mappedRefused });
    socketStates.set(key, s);
    internedStates.add(s);
  }
  return s;
}

function interned(s: KernelSocket): KernelSocket {
  return internedStates.has(s) ? s : socketState(s.local, s.source4, s.mappedRefused);
}

export const FRESH_SOCKET: KernelSocket = socketState(null, null, false);

export type ConnectOutcome = 'connected' | 'in-progress' | 'failed';

export interface KernelConnectResult {
  /**
   * connected: the association (UDP) or connection (TCP) is made, getpeername gives `peer`;
   * in-progress: TCP left in SYN_SENT (the harness's bounded wait reports EINPROGRESS): further
   * connects fail with EALREADY before any cgroup program runs, sends carry nothing;
   * failed: nothing connected (`error` says why).
   */
  readonly outcome: ConnectOutcome;
  /** The peer when connected (getpeername), else null; null too for UDP connected to port 0. */
  readonly peer: SockAddr | null;
  /** errno name when not connected (EINPROGRESS for in-progress), else null. */
  readonly error: string | null;
  /**
   * TCP: the SYN went out (sockops TCP_CONNECT_CB ran), towards `remote`, from local address
   * `local`; null when the connect failed before (no route, address family). UDP: null.
   */
  readonly syn: { readonly remote: SockAddr; readonly local: string } | null;
  /** The local address of the connection (or of the association) when one was made, else null. */
  readonly local: string | null;
  /** The socket afterwards. */
  readonly socket: KernelSocket;
}

function mappedOf(ipv4: string): string {
  return `::ffff:${ipv4}`;
}

function failed(error: string, socket: KernelSocket): KernelConnectResult {
  return { outcome: 'failed', peer: null, error, syn: null, local: null, socket };
}

/** Where a v4 connect goes and from where: the kernel's any-address rule, then the route. */
function route4(env: Environment, dest: string, source4: string | null): { peer: string; local: string } | null {
  if (dest === ANY_ADDRESS.inet) {
    // ip_route_connect: no destination means the source itself, and with no source both loopback.
    const self = source4 ?? LOOPBACK.inet;
    return { peer: self, local: self };
  }
  if (!routable(env, 'inet', { addr: dest, port: 0 })) return null;
  return { peer: dest, local: source4 ?? env.podAddress.inet };
}

/**
 * What a connect of a socket of `family` and `protocol`, in state `socket`, to the (final,
 * post-program) destination `dest` does in this environment. `dest` is canonical socket text of
 * the family. The caller handles sockets the kernel refuses before the cgroup program: a TCP
 * socket that is connected (EISCONN) or whose connect is in progress (EALREADY).
 *
 * Measured on 6.18 (test/unit/environment.test.ts states each case):
 *  - AF_INET: 0.0.0.0 goes to the socket's IPv4 source, or to 127.0.0.1 from 127.0.0.1 when it
 *    has none; any other address needs a route and gets the route's source (the pod address).
 *  - AF_INET6, native destination: `::` means ::1, except on a socket with a v4-mapped local,
 *    where it means ::ffff:127.0.0.1. A socket with a v4-mapped local cannot reach a routed native
 *    address (EAFNOSUPPORT); an unrouted one is ENETUNREACH first.
 *  - AF_INET6, v4-mapped destination: the IPv4 rules on the inner address, from the socket's
 *    IPv4 source; a socket with a native local keeps it.
 *  - A local address, once set by a successful UDP connect, never changes (native -> v4-mapped
 *    included: see receivesIpv4 for what that does to replies). TCP resets it when a
 *    connect fails, and a TCP socket connects successfully once, so each TCP connect starts fresh
 *    except for `mappedRefused`.
 *  - TCP: a route and a listener on the port connect; a route without one is refused (the SYN
 *    left). UDP needs only the route; a UDP connect to port 0 succeeds (and sets the local
 *    address) but leaves getpeername without a peer.
 */
export function kernelConnect(env: Environment, family: Family, protocol: Protocol, dest: SockAddr, socket: KernelSocket = FRESH_SOCKET): KernelConnectResult {
  let byEnv = connectMemo.get(env);
  if (!byEnv) connectMemo.set(env, (byEnv = new WeakMap()));
  const s = interned(socket);
  let m = byEnv.get(s);
  if (!m) byEnv.set(s, (m = new DestMemo()));
  let r = m.get(family, protocol, dest);
  if (r === undefined) {
    r = connectOnce(env, family, protocol, dest, s);
    m.set(family, protocol, dest, r);
  }
  return r;
}

// Per environment and (interned) socket state. Results are shared between callers: never mutate them.
const connectMemo = new WeakMap<Environment, WeakMap<KernelSocket, DestMemo<KernelConnectResult>>>();

function connectOnce(env: Environment, family: Family, protocol: Protocol, dest: SockAddr, socket: KernelSocket): KernelConnectResult {
  const tcp = protocol === 'tcp';
  // TCP starts every connect from a closed socket without addresses.
  const s: KernelSocket = tcp ? socketState(null, null, socket.mappedRefused) : socket;
  let peer: string;
  let local: string;
  let mapped = false;
  /** AF_INET6 over the IPv4 path: the IPv4 source used, as v4-mapped text. */
  let routedFrom = '';
  if (family === 'inet') {
    const r = route4(env, dest.addr, s.source4);
    if (!r) return failed('ENETUNREACH', s);
    peer = r.peer;
    local = r.local;
  } else {
    const localMapped = s.local !== null && v4MappedInner(s.local) !== null;
    let addr = dest.addr;
    if (addr === ANY_ADDRESS.inet6) addr = localMapped ? LOOPBACK.mapped : LOOPBACK.inet6;
    const inner = v4MappedInner(addr);
    if (inner !== null) {
      mapped = true;
      const r = route4(env, inner, s.source4);
      if (!r) return failed('ENETUNREACH', socketState(s.local, s.source4, false));
      peer = mappedOf(r.peer);
      routedFrom = mappedOf(r.local);
      local = s.local ?? routedFrom;
    } else {
      // The route lookup comes first: no route is ENETUNREACH even from a v4-mapped local.
      if (!routable(env, 'inet6', { addr, port: 0 })) return failed('ENETUNREACH', s);
      if (localMapped) return failed('EAFNOSUPPORT', s);
      peer = addr;
      local = s.local ?? env.podAddress.inet6;
    }
  }
  const remote: SockAddr = { addr: peer, port: dest.port };
  if (!tcp) {
    // The IPv4 source, once set, stays; the IPv4 path sets it (AF_INET6 too, unseen behind a native local).
    const source4 = s.source4 ?? (family === 'inet' ? local : mapped ? v4MappedInner(routedFrom) : null);
    // Port 0: the connect succeeds and sets the local address, but getpeername says ENOTCONN.
    const seen = dest.port === 0 ? null : remote;
    return { outcome: 'connected', peer: seen, error: null, syn: null, local, socket: socketState(local, source4, false) };
  }
  const syn = { remote, local };
  if (family === 'inet6' && !mapped && s.mappedRefused) {
    return { outcome: 'in-progress', peer: null, error: 'EINPROGRESS', syn, local, socket: socketState(local, null, true) };
  }
  if (env.closedPorts.includes(dest.port)) {
    return { outcome: 'failed', peer: null, error: 'ECONNREFUSED', syn, local: null, socket: socketState(null, null, mapped || s.mappedRefused) };
  }
  return { outcome: 'connected', peer: remote, error: null, syn, local, socket: socketState(local, null, false) };
}

/**
 * Whether a UDP socket of `family` takes IPv4 datagrams (on AF_INET6: v4-mapped ones). `nativeLocal`:
 * the socket's local address is a native IPv6 one (see kernelConnect: once set by a connect it stays).
 * Measured on 6.18: an AF_INET6 UDP socket connected to a native IPv6 address and then to a
 * v4-mapped one (or that sendto()s a v4-mapped address) keeps its native local address; its
 * datagrams leave over IPv4 from the pod's IPv4 address, but the socket's IPv4 receive address is
 * a placeholder, so the answers (and any IPv4 datagram) are dropped: recvfrom says EAGAIN. A
 * socket with no local address yet, bound to the wildcard by sendto or v4-mapped, takes them. An
 * AF_UNSPEC disconnect clears the local address (not an operation here).
 */
export function receivesIpv4(family: Family, nativeLocal: boolean): boolean {
  return family === 'inet' || !nativeLocal;
}

/** Whether a KernelSocket's local address is a native IPv6 one (for receivesIpv4). */
export function hasNativeLocal(socket: KernelSocket): boolean {
  return socket.local !== null && socket.local.includes(':') && v4MappedInner(socket.local) === null;
}

/**
 * Whether the kernel queues a datagram from `from` (IPv4 text for IPv4 traffic) on a UDP socket of
 * `family` connected to `peer` (null: not connected): a connected socket takes datagrams from its
 * peer only (a v4-mapped peer is its IPv4 address), and IPv4 ones only if receivesIpv4.
 */
export function udpTakes(family: Family, peer: SockAddr | null, nativeLocal: boolean, from: SockAddr): boolean {
  if (!from.addr.includes(':') && !receivesIpv4(family, nativeLocal)) return false;
  if (from.addr.includes(':') && family === 'inet') return false;
  if (peer === null) return true;
  const addr = family === 'inet6' ? (v4MappedInner(peer.addr) ?? peer.addr) : peer.addr;
  return addr === from.addr && peer.port === from.port;
}

/**
 * The connect `r` had there been no listener on its port: a TCP connect refused after its SYN
 * left (bpf/runner/listening.ts: a port the case never names has none). Others are unchanged.
 */
export function withoutListener(r: KernelConnectResult, family: Family): KernelConnectResult {
  if (r.outcome !== 'connected' || r.syn === null) return r;
  const mapped = family === 'inet6' && v4MappedInner(r.syn.remote.addr) !== null;
  return { outcome: 'failed', peer: null, error: 'ECONNREFUSED', syn: r.syn, local: null, socket: socketState(null, null, mapped) };
}

/** The km_manage key sockops uses for a local address (interpretation.md, item 9: v4-mapped folded). */
export function manageKey(local: string): IpAddr {
  return foldedIpAddr(local);
}

/** km_manage ip keys of a case that starts enrolled (Environment.enrolledLocals), sorted, unique. */
export function enrolledLocalKeys(env: Environment): readonly IpAddr[] {
  let keys = enrolledKeysMemo.get(env);
  if (keys === undefined) {
    for (const l of env.enrolledLocals) {
      if (l.includes(':') && v4MappedInner(l) !== null) {
        throw new Error(`environment: enrolledLocals holds the v4-mapped address ${l}: give its IPv4 text (${v4MappedInner(l)}) instead`);
      }
    }
    keys = Object.freeze([...new Set(env.enrolledLocals.map(manageKey))].sort());
    enrolledKeysMemo.set(env, keys);
  }
  return keys;
}

// Shared between callers (frozen): every case that starts enrolled starts from the same keys.
const enrolledKeysMemo = new WeakMap<Environment, readonly IpAddr[]>();

/** The IPv4 sources a socket can have here: the pod's, or loopback after a connect to 0.0.0.0. */
function ipv4Sources(env: Environment): string[] {
  return [...new Set([env.podAddress.inet, LOOPBACK.inet])];
}

/**
 * Every state a socket of `family` and `protocol` can be in before a connect the cgroup program
 * runs for (TCP: closed, maybe after a refused v4-mapped connect; UDP: any local it can get).
 * For a reader that cannot see the socket's local address: a superset of the truth.
 */
export function possibleSockets(env: Environment, family: Family, protocol: Protocol): readonly KernelSocket[] {
  let m = socketsMemo.get(env);
  if (!m) socketsMemo.set(env, (m = new PerSocketKind((f, p) => Object.freeze(socketsOnce(env, f, p)))));
  return m.get(family, protocol);
}

const socketsMemo = new WeakMap<Environment, PerSocketKind<readonly KernelSocket[]>>();

function socketsOnce(env: Environment, family: Family, protocol: Protocol): KernelSocket[] {
  if (protocol === 'tcp') return family === 'inet6' ? [FRESH_SOCKET, socketState(null, null, true)] : [FRESH_SOCKET];
  const v4 = ipv4Sources(env);
  if (family === 'inet') return [FRESH_SOCKET, ...v4.map((a) => socketState(a, a, false))];
  return [FRESH_SOCKET, ...v4.map((a) => socketState(mappedOf(a), a, false)), ...[null, ...v4].map((source4) => socketState(env.podAddress.inet6, source4, false))];
}

/**
 * Where a connect of a socket in state `socket` to `dest` goes here: the peer it connects to, or
 * the remote end it tried (a failed connect: the fresh socket's view).
 */
export function connectPlace(env: Environment, family: Family, protocol: Protocol, dest: SockAddr, socket: KernelSocket): SockAddr {
  const k = kernelConnect(env, family, protocol, dest, socket);
  return k.peer ?? k.syn?.remote ?? kernelPeer(family, dest);
}

/**
 * Every place a connect to `dest` can go here, over all socket states (see possibleSockets): the
 * peer it connects to, or the remote end it tried (a failed connect: the fresh socket's view).
 */
export function possiblePeers(env: Environment, family: Family, protocol: Protocol, dest: SockAddr): readonly SockAddr[] {
  let m = peersMemo.get(env);
  if (!m) peersMemo.set(env, (m = new DestMemo()));
  let r = m.get(family, protocol, dest);
  if (r === undefined) {
    const out = new Map<string, SockAddr>();
    for (const s of possibleSockets(env, family, protocol)) {
      const p = connectPlace(env, family, protocol, dest, s);
      out.set(p.addr, p);
    }
    r = Object.freeze([...out.values()]);
    m.set(family, protocol, dest, r);
  }
  return r;
}

// Per environment; shared between callers (frozen).
const peersMemo = new WeakMap<Environment, DestMemo<readonly SockAddr[]>>();

/** The any-address spellings of a family (destinations whose peer is not themselves). */
export function anyAddresses(family: Family): readonly string[] {
  return family === 'inet' ? [ANY_ADDRESS.inet] : [ANY_ADDRESS.inet6, ANY_ADDRESS.mapped];
}

/**
 * Why a `deliver` from `from` to a UDP socket of `family` cannot be run, or null: the source is an
 * address of the namespace, IPv4 or, for an AF_INET6 socket, a native IPv6 one, each written as the
 * kernel reports it (a v4-mapped source is its IPv4 address), at port 53 (the DNS stand-in) or
 * another port below the kernel's ephemeral ports, which no socket of a case is bound to.
 */
export function deliverSourceProblem(env: Environment, family: Family, from: SockAddr): string | null {
  if (!Number.isInteger(from.port) || from.port < 1 || from.port >= FIRST_EPHEMERAL_PORT) {
    return `the source port must be an integer in 1..${FIRST_EPHEMERAL_PORT - 1} (53: the DNS stand-in; the ephemeral ports from ${FIRST_EPHEMERAL_PORT} are the case's sockets'), got ${from.port}`;
  }
  const native = from.addr.includes(':');
  if (native && family === 'inet') return `an AF_INET socket gets no datagram from the IPv6 address ${from.addr}`;
  let canonical: string;
  try {
    canonical = canonicalSockText(native ? 'inet6' : 'inet', from.addr);
  } catch (e) {
    if (e instanceof AddressError) return e.message;
    throw e;
  }
  if (native && v4MappedInner(canonical) !== null) return `write the v4-mapped source ${from.addr} as its IPv4 address`;
  if (canonical !== from.addr) return `write the source ${from.addr} as ${canonical}`;
  if (!routable(env, native ? 'inet6' : 'inet', { addr: from.addr, port: 0 })) return `${from.addr} is not an address of the namespace (environment.localPrefixes)`;
  return null;
}
