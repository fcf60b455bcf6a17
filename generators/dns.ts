// DNS cases (kmesh-dataplane.md section 6): one or two UDP sockets (an AF_INET one may be bound
// to an address of the namespace, which its programs then see as its source) that query servers
// with sendto, connect to port 53 and send, receive with recvfrom, and get datagrams from other
// sources (deliver, IPv4 or native IPv6, port 53 or not); the DNS proxy km_backend[0] is IPv4,
// IPv6 or absent and may change midway; the namespace may start outside and enrol by a send to
// 0.0.0.2:929. Shrinks towards one unbound socket, one query to server A and one receive.

import fc from 'fast-check';
import { v4Mapped } from '../model/address.js';
import { backend } from '../model/builders.js';
import { withMaps } from '../model/records.js';
import { CONTROL_ADDR, ControlPort, EMPTY_STATE, netnsEnrolledAtStart, type Case, type Family, type MapState, type Operation, type StateKind } from '../model/domain.js';
import { drawStart, type KindChoice } from './cases.js';
import { rawStateGen } from './raw-state.js';
import { arb, lengths, Table, uniform, type Draw, type Gen } from './choices.js';

/** The addresses DNS cases use: two servers, a proxy, a source that is neither, an unrouted server. */
export const DNS_ADDRS = {
  a: '10.1.0.1',
  b: '10.1.0.2',
  proxy: '10.9.0.53',
  proxy2: '10.9.0.54',
  other: '10.7.0.7',
  unrouted: '192.0.2.1',
  /** The any-address (old resolvers' default server): the kernel sends it to loopback, a redirect to the proxy. */
  any: '0.0.0.0',
  native: 'fd00::1:1',
  proxy6: 'fd00::53',
  /** Native IPv6 whose last 32 bits are the proxy's IPv4 address: a reply from it is no proxy's (section 6). */
  proxyTail6: 'fd00::a09:35',
  /** Native IPv6 whose last 64 bits are the v4-mapped proxy's (::ffff:10.9.0.53): only its first 64 bits say it is no mapped address. */
  proxyLow64: 'fd00::ffff:a09:35',
  /** Where an AF_INET socket may be bound: the pod's address (a managed local of enrolled starts), and another address of the namespace. */
  boundPod: '10.255.0.1',
  boundOther: '10.6.0.6',
} as const;

type ProxyChoice = 'v4' | 'none' | 'v6' | 'v4-other';
type Server = 'a' | 'b' | 'proxy' | 'unrouted' | 'native' | 'control' | 'any';

const PROXIES = new Table<ProxyChoice>(['v4', 'none', 'v6', 'v4-other'], [6, 1, 1, 1]);
const SERVERS = new Table<Server>(['a', 'b', 'proxy', 'unrouted', 'native', 'control', 'any'], [4, 3, 1, 1, 1, 1, 1]);
type Source = 'proxy' | 'a' | 'other' | 'proxy2' | 'proxyTail6';
const SOURCES = uniform<Source>(['proxy', 'a', 'other', 'proxy2', 'proxyTail6']);

/**
 * The address of a source on a socket of `family`. The two that are neither server nor proxy:
 * on an AF_INET6 socket native ones (its IPv4 sources are v4-mapped already) that end like the
 * proxy, in the last 64 bits of its v4-mapped form ('other') or in its last 32 bits; on an AF_INET
 * socket, which gets no IPv6 datagram, both the IPv4 one.
 */
function sourceAddr(family: Family, s: Source): string {
  if (s === 'other' || s === 'proxyTail6') return family === 'inet' ? DNS_ADDRS.other : s === 'other' ? DNS_ADDRS.proxyLow64 : DNS_ADDRS.proxyTail6;
  return DNS_ADDRS[s];
}
const PORT53 = new Table([true, false], [2, 1]);
const STEP_KINDS = new Table<Step['k']>(['sendto', 'recvfrom', 'connect', 'send', 'deliver', 'proxy'], [5, 5, 2, 2, 2, 1]);
const FAMILY_LIST = uniform<Family>(['inet', 'inet6']);
/** An AF_INET socket's bind at creation: mostly none (the kernel autobinds it to the wildcard). */
type Bind = 'none' | 'boundPod' | 'boundOther';
const BINDS = new Table<Bind>(['none', 'boundPod', 'boundOther'], [4, 1, 1]);
interface SocketChoice {
  readonly family: Family;
  readonly bind: Bind;
}

type Step =
  | { readonly k: 'sendto'; readonly ref: number; readonly server: Server; readonly port53: boolean; readonly n: number }
  | { readonly k: 'recvfrom'; readonly ref: number; readonly n: number }
  | { readonly k: 'connect'; readonly ref: number; readonly server: Server }
  | { readonly k: 'send'; readonly ref: number }
  | { readonly k: 'deliver'; readonly ref: number; readonly from: Source; readonly port53: boolean }
  | { readonly k: 'proxy'; readonly proxy: ProxyChoice };

/** One step on one of (at most) two sockets; one entry of the tape. */
const stepGen: Gen<Step> = (d) =>
  d.group((g): Step => {
    const k = g.pick(STEP_KINDS);
    switch (k) {
      case 'sendto':
        return { k, ref: g.int(2), server: g.pick(SERVERS), port53: g.pick(PORT53), n: 1 + g.int(2) };
      case 'recvfrom':
        return { k, ref: g.int(2), n: 1 + g.int(2) };
      case 'send':
        return { k, ref: g.int(2) };
      case 'connect':
        return { k, ref: g.int(2), server: g.pick(SERVERS) };
      case 'deliver':
        return { k, ref: g.int(2), from: g.pick(SOURCES), port53: g.pick(PORT53) };
      case 'proxy':
        return { k, proxy: g.pick(PROXIES) };
    }
  });

/** km_backend[0] as chosen, on top of `base` (whose own uid 0 entry is replaced). */
function withProxy(base: MapState, p: ProxyChoice): MapState {
  const backends = base.backends.filter((b) => b.uid !== 0);
  const addr = p === 'v4' ? DNS_ADDRS.proxy : p === 'v4-other' ? DNS_ADDRS.proxy2 : p === 'v6' ? DNS_ADDRS.proxy6 : null;
  return withMaps(base, { backends: addr === null ? backends : [backend(0, addr), ...backends] });
}

/**
 * A server as a socket of `family` writes it (v4-mapped for IPv4 on AF_INET6; native IPv6 only
 * there). The control address is IPv4's, at the port that would change the enrolment the case
 * starts with; on an AF_INET6 socket its v4-mapped form, which changes nothing (section 6, step
 * 1, as a connect's near-miss).
 */
function serverAddr(family: Family, s: Server, enrolled: boolean): { addr: string; port?: number } | null {
  if (s === 'native') return family === 'inet6' ? { addr: DNS_ADDRS.native } : null;
  if (s === 'control') return { addr: family === 'inet' ? CONTROL_ADDR.inet : v4Mapped(CONTROL_ADDR.inet), port: enrolled ? ControlPort.withdraw : ControlPort.enrol };
  const v4 = DNS_ADDRS[s];
  return { addr: family === 'inet' ? v4 : v4Mapped(v4) };
}

/**
 * The operations of a step. The any-address is named by sendto only: a connect to it would make
 * the socket's peer its own address, which the DNS exchange rule does not follow.
 */
function stepOps(step: Step, families: readonly Family[], base: MapState, enrolled: boolean): Operation[] {
  if (step.k === 'proxy') return [{ op: 'apply', state: withProxy(base, step.proxy) }];
  const sock = step.ref % families.length;
  const family = families[sock]!;
  switch (step.k) {
    case 'sendto': {
      const s = serverAddr(family, step.server, enrolled);
      if (!s) return [];
      return [{ op: 'sendto', sock, dest: { addr: s.addr, port: s.port ?? (step.port53 ? 53 : 5353) }, n: step.n }];
    }
    case 'connect': {
      const s = serverAddr(family, step.server, enrolled);
      if (!s || s.port !== undefined || step.server === 'any') return [];
      return [{ op: 'connect', sock, dest: { addr: s.addr, port: 53 } }];
    }
    case 'send':
      return [{ op: 'send', sock, messages: 1 }];
    case 'recvfrom':
      // Up to two receives: a datagram queued behind a query's answer is read too.
      return step.n === 1
        ? [{ op: 'recvfrom', sock }]
        : [
            { op: 'recvfrom', sock },
            { op: 'recvfrom', sock },
          ];
    case 'deliver':
      // From port 53, or another: section 6 restores a reply from the proxy's address and port 53 only.
      return [{ op: 'deliver', sock, from: { addr: sourceAddr(family, step.from), port: step.port53 ? 53 : 5353 } }];
  }
}

const FAMILY_COUNTS = lengths(1, 2);
const STEP_COUNTS = lengths(1, 8);
const KINDS = uniform<StateKind>(['consistent', 'raw']);

function dnsCaseOf(kind: StateKind, d: Draw): Case {
  const base = kind === 'raw' ? rawStateGen(d) : EMPTY_STATE;
  const proxy = d.pick(PROXIES);
  const start = drawStart(d, kind);
  const enrolled = netnsEnrolledAtStart(start);
  const sockets = d.list((g): SocketChoice => ({ family: g.pick(FAMILY_LIST), bind: g.pick(BINDS) }), FAMILY_COUNTS, 1);
  const families = sockets.map((s) => s.family);
  const steps = d.list(stepGen, STEP_COUNTS, 1);
  // A loop, not map: an optimised map fills a holey array (another hidden class for every reader of ops).
  const ops: Operation[] = [];
  sockets.forEach(({ family, bind }, sock) =>
    ops.push(family === 'inet' && bind !== 'none' ? { op: 'socket', sock, family, protocol: 'udp', bindTo: DNS_ADDRS[bind] } : { op: 'socket', sock, family, protocol: 'udp' }),
  );
  for (const s of steps) ops.push(...stepOps(s, families, base, enrolled));
  // At its exact size: the list grew by pushes.
  return { state: withProxy(base, proxy), kind, ...start, ops: ops.slice() };
}

/** DNS cases over states of the given kind (raw: the routing maps are raw, the proxy as chosen). */
export function dnsCaseGen(opts: { kind: KindChoice }): Gen<Case> {
  return (d) => d.group((g) => dnsCaseOf(opts.kind === 'both' ? g.pick(KINDS) : opts.kind, g));
}

export function dnsCase(opts: { kind: KindChoice }): fc.Arbitrary<Case> {
  return arb(dnsCaseGen(opts));
}
