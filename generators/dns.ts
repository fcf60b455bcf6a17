// DNS cases (kmesh-dataplane.md section 6): one or two UDP sockets that query servers with
// sendto, connect to port 53 and send, receive with recvfrom, and get datagrams from other
// sources (deliver); the DNS proxy km_backend[0] is IPv4, IPv6 or absent and may change midway;
// the namespace may start outside and enrol by a send to 0.0.0.2:929. Shrinks towards one socket,
// one query to server A and one receive.

import fc from 'fast-check';
import { backend } from '../model/builders.js';
import { withMaps } from '../model/records.js';
import { EMPTY_STATE, type Case, type Family, type MapState, type Operation, type StateKind } from '../model/domain.js';
import { enrolledArb, type KindChoice } from './cases.js';
import { rawState } from './raw-state.js';

/** The addresses DNS cases use: two servers, a proxy, a source that is neither, an unrouted server. */
export const DNS_ADDRS = {
  a: '10.1.0.1',
  b: '10.1.0.2',
  proxy: '10.9.0.53',
  proxy2: '10.9.0.54',
  other: '10.7.0.7',
  unrouted: '192.0.2.1',
  native: 'fd00::1:1',
  proxy6: 'fd00::53',
} as const;

type ProxyChoice = 'v4' | 'none' | 'v6' | 'v4-other';
type Server = 'a' | 'b' | 'proxy' | 'unrouted' | 'native' | 'control';

const proxyArb: fc.Arbitrary<ProxyChoice> = fc.oneof(
  { withCrossShrink: true },
  { arbitrary: fc.constant<ProxyChoice>('v4'), weight: 6 },
  { arbitrary: fc.constant<ProxyChoice>('none'), weight: 1 },
  { arbitrary: fc.constant<ProxyChoice>('v6'), weight: 1 },
  { arbitrary: fc.constant<ProxyChoice>('v4-other'), weight: 1 },
);

const serverArb: fc.Arbitrary<Server> = fc.oneof(
  { withCrossShrink: true },
  { arbitrary: fc.constant<Server>('a'), weight: 4 },
  { arbitrary: fc.constant<Server>('b'), weight: 3 },
  { arbitrary: fc.constant<Server>('proxy'), weight: 1 },
  { arbitrary: fc.constant<Server>('unrouted'), weight: 1 },
  { arbitrary: fc.constant<Server>('native'), weight: 1 },
  { arbitrary: fc.constant<Server>('control'), weight: 1 },
);

const sourceArb = fc.constantFrom<'proxy' | 'a' | 'other' | 'proxy2'>('proxy', 'a', 'other', 'proxy2');

type Step =
  | { readonly k: 'sendto'; readonly ref: number; readonly server: Server; readonly port53: boolean; readonly n: number }
  | { readonly k: 'recvfrom'; readonly ref: number }
  | { readonly k: 'connect'; readonly ref: number; readonly server: Server }
  | { readonly k: 'send'; readonly ref: number }
  | { readonly k: 'deliver'; readonly ref: number; readonly from: 'proxy' | 'a' | 'other' | 'proxy2' }
  | { readonly k: 'proxy'; readonly proxy: ProxyChoice };

const ref = fc.nat({ max: 1 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { withCrossShrink: true },
  {
    arbitrary: fc.record({ k: fc.constant('sendto' as const), ref, server: serverArb, port53: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(false)), n: fc.integer({ min: 1, max: 2 }) }),
    weight: 5,
  },
  { arbitrary: fc.record({ k: fc.constant('recvfrom' as const), ref }), weight: 5 },
  { arbitrary: fc.record({ k: fc.constant('connect' as const), ref, server: serverArb }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('send' as const), ref }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('deliver' as const), ref, from: sourceArb }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('proxy' as const), proxy: proxyArb }), weight: 1 },
);

/** km_backend[0] as chosen, on top of `base` (whose own uid 0 entry is replaced). */
function withProxy(base: MapState, p: ProxyChoice): MapState {
  const backends = base.backends.filter((b) => b.uid !== 0);
  const addr = p === 'v4' ? DNS_ADDRS.proxy : p === 'v4-other' ? DNS_ADDRS.proxy2 : p === 'v6' ? DNS_ADDRS.proxy6 : null;
  return withMaps(base, { backends: addr === null ? backends : [backend(0, addr), ...backends] });
}

/** A server as a socket of `family` writes it (v4-mapped for IPv4 on AF_INET6; native IPv6 only there). */
function serverAddr(family: Family, s: Server): { addr: string; port?: number } | null {
  if (s === 'native') return family === 'inet6' ? { addr: DNS_ADDRS.native } : null;
  if (s === 'control') return family === 'inet' ? { addr: '0.0.0.2', port: 929 } : null;
  const v4 = DNS_ADDRS[s];
  return { addr: family === 'inet' ? v4 : `::ffff:${v4}` };
}

function stepOps(step: Step, families: readonly Family[], base: MapState): Operation[] {
  if (step.k === 'proxy') return [{ op: 'apply', state: withProxy(base, step.proxy) }];
  const sock = step.ref % families.length;
  const family = families[sock]!;
  switch (step.k) {
    case 'sendto': {
      const s = serverAddr(family, step.server);
      if (!s) return [];
      return [{ op: 'sendto', sock, dest: { addr: s.addr, port: s.port ?? (step.port53 ? 53 : 5353) }, n: step.n }];
    }
    case 'connect': {
      const s = serverAddr(family, step.server);
      if (!s || s.port !== undefined) return [];
      return [{ op: 'connect', sock, dest: { addr: s.addr, port: 53 } }];
    }
    case 'send':
      return [{ op: 'send', sock, messages: 1 }];
    case 'recvfrom':
      return [{ op: 'recvfrom', sock }];
    case 'deliver':
      return [{ op: 'deliver', sock, from: { addr: DNS_ADDRS[step.from], port: 53 } }];
  }
}

function dnsCaseOf(kind: StateKind): fc.Arbitrary<Case> {
  const base: fc.Arbitrary<MapState> = kind === 'raw' ? rawState() : fc.constant(EMPTY_STATE);
  return fc
    .record({
      base,
      proxy: proxyArb,
      enrolled: enrolledArb,
      families: fc.array(fc.constantFrom<Family>('inet', 'inet6'), { minLength: 1, maxLength: 2 }),
      steps: fc.array(stepArb, { minLength: 1, maxLength: 8 }),
    })
    .map(({ base, proxy, enrolled, families, steps }): Case => {
      const ops: Operation[] = families.map((family, sock) => ({ op: 'socket', sock, family, protocol: 'udp' }));
      for (const s of steps) ops.push(...stepOps(s, families, base));
      return { state: withProxy(base, proxy), kind, enrolled, ops };
    });
}

/** DNS cases over states of the given kind (raw: the routing maps are raw, the proxy as chosen). */
export function dnsCase(opts: { kind: KindChoice }): fc.Arbitrary<Case> {
  if (opts.kind !== 'both') return dnsCaseOf(opts.kind);
  return fc.oneof({ withCrossShrink: true }, dnsCaseOf('consistent'), dnsCaseOf('raw'));
}
