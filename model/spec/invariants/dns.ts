// DNS over UDP sends (kmesh-dataplane.md section 6; docs/interpretation.md, DNS items): where a
// query goes (dns-query-destination), what the application is told about a reply's source
// (dns-reply-source) and that every exchange works end to end (dns-exchange). Derived only from
// the case, the environment and the observations: one pass over the steps rebuilds, per socket,
// the datagrams the kernel must have queued (the DNS stand-in answers every query that reaches
// port 53 of a local address, from that address) and the most recent redirected query.

import { canonicalSockText, isIPv4Form, v4Mapped, v4MappedInner } from '../../address.js';
import {
  CONTROL_ADDR,
  ControlPort,
  DNS_PORT,
  DNS_PROXY_UID,
  deliveredFor,
  dnsAnswerTo,
  dnsQueryFor,
  netnsEnrolledAtStart,
  payloadTextFor,
  type Family,
  type MapState,
  type Observation,
  type Operation,
  type SockAddr,
  type StorageView,
} from '../../domain.js';
import {
  datagramPeer,
  flowAfterConnect,
  flowSend,
  hasNativeLocal,
  kernelConnect,
  kernelPeer,
  routable,
  socketAtCreation,
  udpTakes,
  type Environment,
  type KernelSocket,
  type StaleFlow,
} from '../../environment.js';
import { derived, sameSockAddr, show } from '../facts.js';
import { Checker, type Invariant, type SpecContext } from '../types.js';

type Known = boolean | 'unknown';

/** A datagram the kernel must have queued on a socket. */
interface Queued {
  /** Its real source (IPv4 text for IPv4 traffic). */
  readonly from: SockAddr;
  readonly data: string;
  /** An answer to a query the application sent: the server that query addressed (socket view); null otherwise. */
  readonly server: SockAddr | null;
  /** Operation (0-based) that caused it. */
  readonly at: number;
  /** A redirected query's answer: the (IPv4) server it addressed, for the one-record scope of dns-exchange. */
  readonly redirectedFrom: string | null;
}

interface Track {
  readonly family: Family;
  readonly udp: boolean;
  /** The connected peer (getpeername) of a UDP socket, or null. */
  peer: SockAddr | null;
  /** What the application asked its connect for (the server a connected socket's queries address). */
  asked: SockAddr | null;
  /** The kernel's view of the socket's addresses (its IPv4 source: where the any-address goes). */
  kernel: KernelSocket;
  /** What a connected send does after a failed reconnect (environment.ts StaleFlow). */
  flow: StaleFlow;
  bound: boolean;
  queries: number;
  sent: number;
  /** The most recent redirected query: the server it addressed (IPv4) and the proxy it went to. */
  last: { server: string; proxy: string } | null | 'unknown';
  queue: Queued[];
  storage: StorageView | null | undefined;
}

/** One step as the DNS invariants see it. */
export interface DnsEvent {
  readonly i: number;
  readonly op: Operation;
  readonly obs: Observation;
  readonly sock: Track | null;
  /** sendto: where the queries must arrive (null: nowhere), or 'either' when enrolment is unknown. */
  readonly expectArrival?: { readonly one: SockAddr | null; readonly alt: SockAddr | null } | null;
  /** sendto: the expected error. */
  readonly expectError?: string | null;
  /** recvfrom: the datagram the kernel queued first, if any, and the datagrams lost before the one received. */
  readonly head?: Queued | null;
  readonly received?: Queued | null;
  readonly lost?: readonly Queued[];
  /** recvfrom: the source the application must be told for `received` (null: unknown, do not judge). */
  readonly expectFrom?: SockAddr | null;
  /** recvfrom/deliver: the storage before the step. */
  readonly storageBefore?: StorageView | null | undefined;
  /** recvfrom: the socket's most recent redirected query at the time. */
  readonly lastAt?: { readonly server: string; readonly proxy: string } | null | 'unknown';
}

/** The DNS proxy's IPv4 address (km_backend[0] with an IPv4-form address), or null. */
export function dnsProxyOf(maps: MapState): string | null {
  const b = maps.backends.find((x) => x.uid === DNS_PROXY_UID);
  return b && isIPv4Form(b.addr) ? b.addr : null;
}

function inner4(family: Family, addr: string): string | null {
  return family === 'inet' ? (addr.includes(':') ? null : addr) : v4MappedInner(addr);
}

function view(family: Family, s: SockAddr): SockAddr {
  return family === 'inet6' && !s.addr.includes(':') ? { addr: v4Mapped(s.addr), port: s.port } : s;
}

function local(env: Environment, addr: string): boolean {
  return routable(env, addr.includes(':') ? 'inet6' : 'inet', { addr, port: 0 });
}

/** The stand-in answers at port 53 of an address local to the namespace. */
function answered(env: Environment, at: SockAddr): boolean {
  return at.port === DNS_PORT && local(env, at.addr);
}

/** Whether the kernel queues a datagram from `from` on the socket (environment.ts, udpTakes). */
function accepts(t: Track, from: SockAddr): boolean {
  return udpTakes(t.family, t.peer, hasNativeLocal(t.kernel), from);
}

function controlOf(port: number): boolean | null {
  if (port === ControlPort.enrol) return true;
  if (port === ControlPort.withdraw) return false;
  return null;
}

/** The DNS view of every step (memoised per context). */
export function dnsEvents(ctx: SpecContext): DnsEvent[] {
  const memo = derived(ctx);
  if (memo.dns) return memo.dns as DnsEvent[];
  const out: DnsEvent[] = [];
  memo.dns = out;
  // The DNS invariants judge sendto, deliver and recvfrom events only: without them there is nothing to derive.
  if (!ctx.steps.some(({ op }) => op.op === 'sendto' || op.op === 'deliver' || op.op === 'recvfrom')) return out;
  const env = ctx.env;
  let state = ctx.case.state;
  let enrolled: Known = netnsEnrolledAtStart(ctx.case);
  const socks = new Map<number, Track>();
  ctx.steps.forEach(({ op, observation: obs }, i) => {
    if (op.op === 'apply') {
      state = op.state;
      out.push({ i, op, obs, sock: null });
      return;
    }
    if (op.op === 'socket') {
      const bound = op.bindTo !== undefined;
      socks.set(op.sock, {
        family: op.family,
        udp: op.protocol === 'udp',
        peer: null,
        asked: null,
        kernel: socketAtCreation(op),
        flow: 'ok',
        bound,
        queries: 0,
        sent: 0,
        last: null,
        queue: [],
        storage: null,
      });
    }
    const t = socks.get(op.sock) ?? null;
    if (!t) {
      out.push({ i, op, obs, sock: null });
      return;
    }
    const proxy = dnsProxyOf(state);
    // Events with more fields are written out whole: a spread of `ev` is V8's slow path.
    let ev: DnsEvent = { i, op, obs, sock: t };
    switch (op.op) {
      case 'connect': {
        let asked: SockAddr;
        try {
          asked = { addr: canonicalSockText(t.family, op.dest.addr), port: op.dest.port };
        } catch {
          break;
        }
        const control = asked.addr === CONTROL_ADDR[t.family] ? controlOf(asked.port) : null;
        if (control !== null) enrolled = control;
        else if (obs.peer && sameSockAddr(obs.peer, { addr: CONTROL_ADDR[t.family], port: obs.peer.port })) enrolled = 'unknown';
        if (t.udp) {
          t.bound = true;
          // The addresses the connect gave the socket: from where it went, the observed peer,
          // unless that is only what the kernel made of the asked any-address.
          if (!obs.error) {
            const peer = obs.peer ?? null;
            const final = peer && !sameSockAddr(peer, kernelPeer(t.family, asked)) ? peer : asked;
            t.kernel = kernelConnect(env, t.family, 'udp', final, t.kernel).socket;
          }
          t.flow = flowAfterConnect(t.flow, t.family, obs.error ?? null);
          if (obs.peer) {
            t.peer = obs.peer;
            t.asked = asked;
          }
        }
        // connect4's DNS branch: the socket's most recent redirected query.
        if (t.family === 'inet' && asked.port === DNS_PORT && obs.peer && proxy !== null && obs.peer.addr === proxy && obs.peer.port === DNS_PORT) {
          if (asked.addr !== proxy) t.last = { server: asked.addr, proxy };
          else if (enrolled === 'unknown') t.last = 'unknown';
          else if (enrolled) t.last = { server: proxy, proxy };
        }
        break;
      }
      case 'sendto': {
        if (!t.udp || op.n <= 0) break;
        let dest: SockAddr;
        try {
          dest = { addr: canonicalSockText(t.family, op.dest.addr), port: op.dest.port };
        } catch {
          break;
        }
        const in4 = inner4(t.family, dest.addr);
        const isControl = t.family === 'inet' && in4 === CONTROL_ADDR.inet ? controlOf(dest.port) : null;
        // The kernel sends a datagram to the any-address to the socket's IPv4 source, or loopback.
        const plain: SockAddr = datagramPeer(in4 !== null ? { addr: in4, port: dest.port } : dest, t.kernel);
        let one: SockAddr = plain;
        let alt: SockAddr | null = null;
        const redirectable = isControl === null && in4 !== null && dest.port === DNS_PORT && t.peer === null && proxy !== null;
        if (isControl !== null) enrolled = isControl;
        else if (redirectable && enrolled !== false) {
          const p = { addr: proxy, port: dest.port };
          if (enrolled === true) one = p;
          else alt = p;
        }
        const arrival = (s: SockAddr | null) => (s && answered(env, s) ? s : null);
        // A socket with a v4-mapped local address cannot reach a routed native IPv6 address (measured).
        const expectError = !local(env, one.addr) ? 'ENETUNREACH' : in4 === null && t.kernel.local !== null && v4MappedInner(t.kernel.local) !== null ? 'EAFNOSUPPORT' : null;
        ev = { i, op, obs, sock: t, expectArrival: { one: expectError ? null : arrival(one), alt: alt && local(env, alt.addr) ? arrival(alt) : null }, expectError };
        t.bound = true;
        // What really happened, as observed (query-destination judges it).
        const at = obs.arrivedAt ?? null;
        if (redirectable && at && at.addr === proxy && in4 !== null) {
          if (in4 !== proxy || enrolled === true) t.last = { server: in4, proxy };
          else if (enrolled === 'unknown') t.last = 'unknown';
        }
        if (at && accepts(t, at)) {
          // Redirected (even to the proxy's own address, when the namespace may be enrolled).
          const redirectedFrom = redirectable && in4 !== null && at.addr === proxy && (in4 !== proxy || enrolled !== false) ? in4 : null;
          // Queries on a connected socket addressed elsewhere than its peer are outside the exchange
          // rule. A redirected one is answered as from the server it named; one the kernel sent
          // elsewhere (the any-address) as from there.
          const server = t.peer === null ? view(t.family, redirectedFrom !== null ? dest : plain) : null;
          for (let k = 0; k < op.n; k++) t.queue.push({ from: at, data: dnsAnswerTo(dnsQueryFor(op.sock, t.queries + k)), server, at: i, redirectedFrom });
        }
        t.queries += op.n;
        break;
      }
      case 'send': {
        if (t.udp && op.messages > 0) t.bound = true;
        if (!t.udp || !t.peer) break;
        const at: SockAddr = { addr: inner4(t.family, t.peer.addr) ?? t.peer.addr, port: t.peer.port };
        // After a failed reconnect, one datagram at most reaches the peer (StaleFlow).
        const sent = flowSend(t.flow, op.messages);
        if (answered(env, at) && accepts(t, at)) {
          const server = t.asked ? view(t.family, { addr: inner4(t.family, t.asked.addr) ?? t.asked.addr, port: t.asked.port }) : null;
          const askedIn4 = t.asked ? inner4(t.family, t.asked.addr) : null;
          const redirectedFrom = askedIn4 !== null && askedIn4 !== at.addr ? askedIn4 : null;
          for (let k = 0; k < sent.reaching; k++) t.queue.push({ from: at, data: dnsAnswerTo(payloadTextFor(op.sock, t.sent + k)), server, at: i, redirectedFrom });
        }
        t.flow = sent.flow;
        t.sent += op.messages;
        break;
      }
      case 'deliver': {
        ev = { i, op, obs, sock: t, storageBefore: t.storage };
        if (t.bound && accepts(t, op.from)) t.queue.push({ from: op.from, data: deliveredFor(op.sock), server: null, at: i, redirectedFrom: null });
        break;
      }
      case 'recvfrom': {
        const head = t.queue[0] ?? null;
        let received: Queued | null = null;
        let lost: Queued[] = [];
        if (obs.data !== null && obs.data !== undefined) {
          const k = t.queue.findIndex((q) => q.data === obs.data);
          if (k >= 0) {
            received = t.queue[k]!;
            lost = t.queue.slice(0, k);
            t.queue = t.queue.slice(k + 1);
          }
        }
        let expectFrom: SockAddr | null = null;
        if (received) {
          const src = received.from;
          const last = t.last;
          if (last === 'unknown' && src.port === DNS_PORT && !src.addr.includes(':')) expectFrom = null;
          else if (last && last !== 'unknown' && src.port === DNS_PORT && src.addr === last.proxy) expectFrom = view(t.family, { addr: last.server, port: src.port });
          else expectFrom = view(t.family, src);
        }
        ev = { i, op, obs, sock: t, head, received, lost, expectFrom, storageBefore: t.storage, lastAt: t.last };
        break;
      }
      case 'close':
        socks.delete(op.sock);
        break;
      default:
        break;
    }
    if (obs.storage !== undefined) t.storage = obs.storage;
    out.push(ev);
  });
  return out;
}

export const dnsQueryDestination: Invariant = {
  name: 'dns-query-destination',
  statement:
    "A UDP query that names its destination (sendto) to port 53 of an IPv4 server, from an AF_INET socket or an AF_INET6 socket giving a v4-mapped server, on an unconnected socket of an enrolled namespace while km_backend[0] has an IPv4 address, reaches the DNS proxy with port 53 kept; every other sendto reaches the address it names (the any-address: where the kernel sends it, the socket's IPv4 source if it has one, else loopback; a connected socket is never redirected by the send hook), and a send to 0.0.0.2:929/930 from an AF_INET socket enrols or withdraws the namespace.",
  check(ctx) {
    const chk = new Checker();
    for (const e of dnsEvents(ctx)) {
      if (e.op.op !== 'sendto' || e.expectArrival === undefined || e.expectArrival === null) continue;
      chk.exercise();
      const got = e.obs.arrivedAt ?? null;
      const { one, alt } = e.expectArrival;
      const ok = sameSockAddr(got, one) || (alt !== null && sameSockAddr(got, alt));
      chk.expect(
        ok,
        () => `operation ${e.i + 1} (sendto ${show(e.op.op === 'sendto' ? e.op.dest : null)}): the queries arrived at ${show(got)}, expected ${show(one)}${alt ? ` or ${show(alt)}` : ''}`,
      );
      chk.expect(
        (e.obs.error ?? null) === (e.expectError ?? null) || (alt !== null && (e.obs.error ?? null) === null),
        () => `operation ${e.i + 1} (sendto): error ${e.obs.error ?? 'none'}, expected ${e.expectError ?? 'none'}`,
      );
    }
    return chk.verdict();
  },
};

export const dnsReplySource: Invariant = {
  name: 'dns-reply-source',
  statement:
    "A datagram from the DNS proxy's address and port 53, on a socket whose most recent redirected query (through sendto or the connect4 DNS branch) went to that proxy, is reported by recvfrom as coming from the server that query addressed (port 53, v4-mapped on an AF_INET6 socket); every other datagram's source is reported as it is, and receiving never creates or changes socket storage.",
  check(ctx) {
    const chk = new Checker();
    for (const e of dnsEvents(ctx)) {
      if (e.op.op === 'deliver' || e.op.op === 'recvfrom') {
        if (e.obs.storage !== undefined && e.storageBefore !== undefined) {
          chk.expect(
            JSON.stringify(e.obs.storage) === JSON.stringify(e.storageBefore),
            () => `operation ${e.i + 1} (${e.op.op}): the socket storage changed from ${JSON.stringify(e.storageBefore)} to ${JSON.stringify(e.obs.storage)}; receiving must not create or change it`,
          );
        }
      }
      if (e.op.op !== 'recvfrom' || !e.received || e.expectFrom === null || e.expectFrom === undefined) continue;
      chk.exercise();
      const r = e.received;
      chk.expect(
        sameSockAddr(e.obs.from, e.expectFrom),
        () => `operation ${e.i + 1} (recvfrom): a datagram from ${show(r.from)} (${JSON.stringify(r.data)}) was reported as from ${show(e.obs.from)}, expected ${show(e.expectFrom)}`,
      );
    }
    return chk.verdict();
  },
};

export const dnsExchange: Invariant = {
  name: 'dns-exchange',
  statement:
    "Every DNS query the application sends to a server S port 53 (sendto on an unconnected socket, or send on a socket connected to S) that the data path delivers is answered, and the answer reaches the application in order (unless the kernel itself drops it: an AF_INET6 socket whose local address is native IPv6 takes no IPv4 datagram), seen as coming from S (a redirected query while it is still the socket's most recent redirected query and its proxy is unchanged); recvfrom never returns a datagram that nobody sent.",
  check(ctx) {
    const chk = new Checker();
    for (const e of dnsEvents(ctx)) {
      if (e.op.op !== 'recvfrom' || !e.sock) continue;
      const head = e.head;
      if (head?.server) chk.exercise();
      if (e.obs.data === null || e.obs.data === undefined) {
        chk.expect(
          !head,
          () =>
            `operation ${e.i + 1} (recvfrom): nothing was received (${e.obs.error ?? 'no error'}) but ${head!.server ? `the answer to the query of operation ${head!.at + 1} to ${show(head!.server)}` : `the datagram of operation ${head!.at + 1} from ${show(head!.from)}`} should be waiting`,
        );
        continue;
      }
      chk.expect(e.received !== null, () => `operation ${e.i + 1} (recvfrom): received ${JSON.stringify(e.obs.data)}, which no operation sent or which was already received`);
      for (const l of e.lost ?? []) {
        chk.expect(
          false,
          () =>
            `operation ${e.i + 1} (recvfrom): ${l.server ? `the answer to the query of operation ${l.at + 1} to ${show(l.server)}` : `the datagram of operation ${l.at + 1}`} was lost or came out of order`,
        );
      }
      const r = e.received;
      // One record per socket names one server: the answer to a redirected query is judged only
      // while that query is still the socket's most recent redirected one, through the same proxy
      // (docs/interpretation.md, DNS items: an interleaved query to another server, or a proxy
      // change in flight, is outside the exchange rule; dns-reply-source still judges it).
      const inScope = (x: Queued): boolean => {
        const last = e.lastAt;
        if (last === 'unknown' || last === undefined) return false;
        if (last === null) return x.redirectedFrom === null;
        const fromLastProxy = x.from.port === DNS_PORT && x.from.addr === last.proxy;
        return fromLastProxy ? x.redirectedFrom === last.server : x.redirectedFrom === null;
      };
      if (r?.server && inScope(r)) {
        chk.exercise();
        chk.expect(
          sameSockAddr(e.obs.from, r.server),
          () => `operation ${e.i + 1} (recvfrom): the answer to the query of operation ${r.at + 1} to ${show(r.server)} is seen as from ${show(e.obs.from)}`,
        );
      }
    }
    return chk.verdict();
  },
};
