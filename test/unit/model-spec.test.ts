import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Case, Observation } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes, type Trace } from '../../model/impl/index.js';
import { allowedPeers, invariants, invariantNamed, tlvHex, type PassRecord, type SpecContext } from '../../model/spec/index.js';
import { deliver, recvfrom, sendto } from '../../model/builders.js';
import { VIP, WP_POD, WP_VIP, backend, connect, endpoint, frontend, maps, mkCase, oneConnect, send, service, sock, threeBackends, viaWaypoint } from '../model-fixtures.js';

const env = DEFAULT_ENVIRONMENT;

const plainService = (ports: [number, number][], backends: { uid: number; addr: string }[]) =>
  maps({
    frontends: [frontend(VIP, 1)],
    services: [service(1, { counts: [backends.length], ports })],
    endpoints: backends.map((b, i) => endpoint(1, 0, i + 1, b.uid)),
    backends: backends.map((b) => backend(b.uid, b.addr)),
  });
const pod = '10.1.0.9';
const dnsProxy = maps({ backends: [backend(0, '10.0.0.53')] });
const failoverState = maps({
  frontends: [frontend(VIP, 1)],
  services: [service(1, { counts: [0, 2], policy: 2, ports: [[80, 80]] })],
  endpoints: [endpoint(1, 1, 1, 1), endpoint(1, 1, 2, 2)],
  backends: [backend(1, '10.1.0.1'), backend(2, '10.1.0.2')],
});
const strictState = maps({ ...failoverState, services: [service(1, { counts: [1, 2], policy: 1, ports: [[80, 80]] })], endpoints: [...failoverState.endpoints, endpoint(1, 0, 1, 2)] });
const cycle = maps({ frontends: [frontend(WP_VIP, 2)], services: [service(2, { waypoint: { addr: WP_VIP, port: 15008 } })] });
const v6 = maps({
  frontends: [frontend('fd00:1::1', 1), frontend(VIP, 2)],
  services: [service(1, { counts: [1], ports: [[80, 8080]] }), service(2, { counts: [1], ports: [[80, 8081]] })],
  endpoints: [endpoint(1, 0, 1, 5), endpoint(2, 0, 1, 6)],
  backends: [backend(5, 'fd00:2::5'), backend(6, '10.1.0.6')],
});

/** Hand-written cases covering every path of section 3 and the socket life cycle. */
const corpus: Record<string, Case> = {
  control: mkCase(threeBackends(), [sock(1, 'inet'), connect(1, '0.0.0.2', 929), sock(2, 'inet'), connect(2, VIP, 80)], false),
  withdraw: mkCase(threeBackends(), [sock(1, 'inet', 'udp'), connect(1, '0.0.0.2', 930), sock(2, 'inet'), connect(2, VIP, 80)]),
  control6: mkCase(dnsProxy, [sock(1, 'inet6'), connect(1, '::2', 929), connect(1, '::ffff:0.0.0.2', 929), connect(1, '::ffff:10.9.0.1', 53)], false),
  notEnrolled: oneConnect(threeBackends(), 'inet', VIP, 80, 'tcp', false),
  dnsUdp: oneConnect(dnsProxy, 'inet', '10.9.0.1', 53, 'udp'),
  dnsTcp: oneConnect(dnsProxy, 'inet', '10.9.0.1', 53, 'tcp'),
  dnsNoProxyUdp: oneConnect(plainService([[53, 5353]], [{ uid: 7, addr: '10.1.0.7' }]), 'inet', VIP, 53, 'udp'),
  dnsNoProxyTcp: oneConnect(plainService([[53, 5353]], [{ uid: 7, addr: '10.1.0.7' }]), 'inet', VIP, 53, 'tcp'),
  dnsV6Proxy: mkCase(maps({ backends: [backend(0, 'fd00::53')] }), [sock(1, 'inet', 'udp'), connect(1, '10.9.0.1', 53), sock(2, 'inet'), connect(2, '10.9.0.1', 53)]),
  udpSkip: oneConnect(threeBackends(), 'inet', VIP, 80, 'udp'),
  frontendMiss: oneConnect(threeBackends(), 'inet', '10.7.7.7', 80),
  directMissing: oneConnect(maps({ frontends: [frontend(pod, 9)] }), 'inet', pod, 80),
  directKept: oneConnect(maps({ frontends: [frontend(pod, 9)], backends: [backend(9, pod)] }), 'inet', pod, 80),
  directWaypoint: mkCase(maps({ frontends: [frontend(pod, 9)], backends: [backend(9, pod, { addr: WP_POD, port: 15008 })] }), [sock(1, 'inet'), connect(1, pod, 80), send(1, 1)]),
  randomEmpty: oneConnect(threeBackends(0, [0, 2]), 'inet', VIP, 80),
  waypointPortZero: oneConnect(maps({ ...threeBackends(0, [0]), services: [service(1, { waypoint: { addr: WP_POD, port: 0 } })] }), 'inet', VIP, 80),
  waypointZeroAddr: oneConnect(maps({ ...threeBackends(0, [0]), services: [service(1, { waypoint: { addr: '::', port: 15008 } })] }), 'inet', VIP, 80),
  strictEmpty: oneConnect(threeBackends(1, [0, 2]), 'inet', VIP, 80),
  failoverEmpty: oneConnect(threeBackends(2, [0]), 'inet', VIP, 80),
  unknownPolicy: oneConnect(threeBackends(7), 'inet', VIP, 80),
  endpointMissing: oneConnect(
    maps({ frontends: [frontend(VIP, 1)], services: [service(1, { counts: [2], ports: [[80, 80]] })], endpoints: [endpoint(1, 0, 2, 5)], backends: [backend(5, '10.1.0.5')] }),
    'inet',
    VIP,
    80,
  ),
  backendMissing: oneConnect(plainService([[80, 80]], []), 'inet', VIP, 80),
  backendWaypoint: mkCase(
    maps({ frontends: [frontend(VIP, 1)], services: [service(1, { counts: [1] })], endpoints: [endpoint(1, 0, 1, 5)], backends: [backend(5, '10.1.0.5', { addr: WP_POD, port: 15008 })] }),
    [sock(1, 'inet6'), connect(1, '::ffff:10.0.0.1', 81), send(1, 2)],
  ),
  noPortMatch: oneConnect(
    plainService(
      [
        [81, 1],
        [80, 8080],
      ],
      [{ uid: 5, addr: '10.1.0.5' }],
    ),
    'inet',
    VIP,
    82,
  ),
  familyMismatch: oneConnect(plainService([[80, 8080]], [{ uid: 5, addr: 'fd00::5' }]), 'inet', VIP, 80),
  random3: mkCase(threeBackends(), [sock(1, 'inet'), connect(1, VIP, 80), send(1, 1)]),
  portSlots: oneConnect(
    plainService(
      [
        [81, 1],
        [80, 8080],
        [80, 9090],
      ],
      [{ uid: 5, addr: '10.1.0.5' }],
    ),
    'inet',
    VIP,
    80,
  ),
  strict: oneConnect(strictState, 'inet', VIP, 80),
  failover: oneConnect(failoverState, 'inet', VIP, 80),
  v6: oneConnect(v6, 'inet6', 'fd00:1::1', 80),
  v4mapped: oneConnect(v6, 'inet6', '::ffff:10.0.0.1', 80),
  waypoint: mkCase(viaWaypoint(), [sock(1, 'inet'), connect(1, VIP, 80), send(1, 2), send(1, 1)]),
  waypoint6: mkCase(viaWaypoint(), [sock(1, 'inet6'), connect(1, '::ffff:10.0.0.1', 80), send(1, 1)]),
  localIpNotEnrolled: mkCase(
    maps({ frontends: [frontend('fd00::9', 1)], services: [service(1, { counts: [1], waypoint: { addr: 'fd00::200', port: 15008 } })] }),
    [sock(9, 'inet'), connect(9, '0.0.0.2', 929), sock(1, 'inet6'), connect(1, 'fd00::9', 80), send(1, 1)],
    false,
  ),
  cycle: oneConnect(cycle, 'inet', WP_VIP, 80),
  eisconn: mkCase(viaWaypoint(), [sock(1, 'inet'), connect(1, VIP, 80), connect(1, '10.7.7.7', 80), send(1, 1)]),
  retry: mkCase(maps({ frontends: [frontend(pod, 9)], backends: [backend(9, pod)] }), [sock(1, 'inet'), connect(1, pod, 929), connect(1, pod, 80)]),
  udpReconnect: mkCase(dnsProxy, [sock(1, 'inet', 'udp'), connect(1, '10.9.0.1', 53), connect(1, '10.0.0.7', 9000), connect(1, '192.168.0.1', 9000), send(1, 1)]),
  applyClose: mkCase(maps({}), [sock(1, 'inet'), { op: 'apply', state: viaWaypoint() }, connect(1, VIP, 80), { op: 'close', sock: 1 }, sock(1, 'inet'), connect(1, '10.7.7.7', 80), send(1, 1)]),
  // The socket layer (model/environment.ts): own local addresses, v4-mapped locals, the TCP quirk.
  udpOwnLocal: mkCase(maps({}), [sock(1, 'inet', 'udp'), connect(1, '10.0.0.7', 80), connect(1, '0.0.0.0', 80), connect(1, '10.0.0.8', 0), send(1, 1)]),
  udp6Locals: mkCase(maps({}), [
    sock(1, 'inet6', 'udp'),
    connect(1, '::ffff:10.0.0.7', 80),
    connect(1, '::', 80),
    connect(1, 'fd00::7', 80),
    sock(2, 'inet6', 'udp'),
    connect(2, 'fd00::5', 80),
    connect(2, '::ffff:0.0.0.0', 80),
    connect(2, 'fd00::7', 80),
  ]),
  tcpQuirk: mkCase(maps({}), [sock(1, 'inet6'), connect(1, '::ffff:10.0.0.7', 929), connect(1, 'fd00::7', 80), connect(1, '::ffff:10.0.0.7', 80), send(1, 1)], false),
  // Section 6: DNS over UDP sends.
  dnsSendto: mkCase(dnsProxy, [sock(1, 'inet', 'udp'), sendto(1, '10.9.0.1', 53), recvfrom(1), sendto(1, '10.9.0.2', 53), recvfrom(1), deliver(1, '10.7.0.7'), recvfrom(1)]),
  dnsSendto6: mkCase(dnsProxy, [sock(1, 'inet6', 'udp'), sendto(1, '::ffff:10.9.0.1', 53), recvfrom(1), sock(2, 'inet6', 'udp'), connect(2, '::ffff:10.9.0.1', 53), send(2, 1), recvfrom(2)]),
  dnsControlSend: mkCase(dnsProxy, [sock(1, 'inet', 'udp'), sendto(1, '0.0.0.2', 929), sendto(1, '10.9.0.1', 53), recvfrom(1), connect(1, '10.9.0.3', 53)], false),
  loopbackWaypoint: mkCase(
    maps({
      frontends: [frontend(VIP, 1), frontend(WP_VIP, 2)],
      services: [service(1, { counts: [1], ports: [[80, 8080]], waypoint: { addr: WP_VIP, port: 15008 } }), service(2, { counts: [1], ports: [[15008, 15008]] })],
      endpoints: [endpoint(1, 0, 1, 100), endpoint(2, 0, 1, 200)],
      backends: [backend(100, '10.1.0.1'), backend(200, '0.0.0.0')],
    }),
    [sock(1, 'inet'), connect(1, VIP, 80), send(1, 1)],
  ),
};

function ctxOf(c: Case, t: Trace, withPasses = true): SpecContext {
  return {
    case: c,
    env,
    steps: c.ops.map((op, i) => ({ op, observation: t.observations[i]!, ...(withPasses ? { passes: t.passes[i]! } : {}) })),
  };
}

function firstTrace(name: string): { c: Case; t: Trace } {
  const c = corpus[name]!;
  return { c, t: outcomes(c, env)[0]! };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A copy of the context with step `i`'s observation patched. */
function withObservation(ctx: SpecContext, i: number, patch: Partial<Observation>): SpecContext {
  return { ...ctx, steps: ctx.steps.map((s, j) => (j === i ? { ...s, observation: { ...s.observation, ...patch } } : s)) };
}

/** A copy of the context with step `i`'s passes replaced by `f(passes)`. */
function withPasses(ctx: SpecContext, i: number, f: (ps: Mutable<PassRecord>[]) => PassRecord[]): SpecContext {
  return { ...ctx, steps: ctx.steps.map((s, j) => (j === i ? { ...s, passes: f((s.passes ?? []).map((p) => ({ ...p }))) } : s)) };
}

describe('the reference model refines the spec', () => {
  const entries = Object.entries(corpus);

  it.each(entries)('%s: every invariant holds on every outcome, with and without pass records', (_, c) => {
    for (const t of outcomes(c, env)) {
      for (const withP of [true, false]) {
        const ctx = ctxOf(c, t, withP);
        for (const inv of invariants) {
          if (inv.needs === 'passes' && !withP) continue;
          const v = inv.check(ctx);
          expect(v.status === 'violated' ? `${inv.name}: ${v.detail}` : 'ok').toBe('ok');
        }
      }
    }
  });

  it('the corpus exercises every invariant', () => {
    const exercised = new Set<string>();
    for (const c of Object.values(corpus)) {
      for (const t of outcomes(c, env)) for (const inv of invariants) if (inv.check(ctxOf(c, t)).status === 'holds') exercised.add(inv.name);
    }
    expect(invariants.map((i) => i.name).filter((n) => !exercised.has(n))).toEqual([]);
  });

  it('an invariant the case does not touch is vacuous', () => {
    const { c, t } = firstTrace('notEnrolled');
    expect(invariantNamed('tlv-prefix').check(ctxOf(c, t)).status).toBe('vacuous');
    expect(invariantNamed('lb-choice').check(ctxOf(c, t)).status).toBe('vacuous');
    expect(invariantNamed('not-enrolled-untouched').check(ctxOf(c, t)).status).toBe('holds');
  });

  it('invariants have unique names and one-sentence statements', () => {
    const names = invariants.map((i) => i.name);
    expect(new Set(names).size).toBe(names.length);
    for (const i of invariants) expect(i.statement).toMatch(/^[A-Z].*\.$/);
  });
});

describe('each invariant can fail', () => {
  const mutations: Record<string, () => SpecContext> = {
    'original-written-once': () => {
      const { c, t } = firstTrace('waypoint');
      const st = t.observations[2]!.storage!;
      return withObservation(ctxOf(c, t, false), 2, { storage: { ...st, original: { addr: '10.0.0.9', port: 80 } } });
    },
    'via-waypoint-sticky': () => {
      const { c, t } = firstTrace('waypoint');
      return withObservation(ctxOf(c, t, false), 3, { storage: { ...t.observations[3]!.storage!, viaWaypoint: false } });
    },
    'tlv-prefix': () => {
      const { c, t } = firstTrace('waypoint');
      const s = t.observations[2]!.stream!;
      return withObservation(ctxOf(c, t, false), 2, { stream: { tlv: null, payloadIntact: true, hex: s.hex.slice(32) } });
    },
    'sockhash-membership': () => {
      const { c, t } = firstTrace('waypoint');
      return withObservation(ctxOf(c, t, false), 1, { inSockhash: false });
    },
    'no-fabricated-peer': () => {
      const { c, t } = firstTrace('random3');
      return withObservation(ctxOf(c, t, false), 1, { peer: { addr: '10.9.9.9', port: 8080 } });
    },
    'not-enrolled-untouched': () => {
      const { c, t } = firstTrace('notEnrolled');
      return withObservation(ctxOf(c, t, false), 1, { peer: { addr: '10.1.0.1', port: 8080 } });
    },
    'control-connect-untouched': () => {
      const { c, t } = firstTrace('control');
      return withObservation(ctxOf(c, t, false), 1, { storage: { viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null } });
    },
    'udp-outside-dns-untouched': () => {
      const { c, t } = firstTrace('udpSkip');
      return withObservation(ctxOf(c, t, false), 1, { peer: { addr: '10.1.0.1', port: 8080 } });
    },
    'dns-proxy': () => {
      const { c, t } = firstTrace('dnsUdp');
      return withObservation(ctxOf(c, t, false), 1, { peer: { addr: '10.9.0.1', port: 53 } });
    },
    'enrolled-tcp-storage': () => {
      const { c, t } = firstTrace('frontendMiss');
      return withObservation(ctxOf(c, t, false), 1, { storage: null });
    },
    'connect-on-connected-socket': () => {
      const { c, t } = firstTrace('eisconn');
      return withObservation(ctxOf(c, t, false), 2, { peer: { addr: '10.7.7.7', port: 80 }, error: null });
    },
    'pass-chain': () => {
      const { c, t } = firstTrace('waypoint');
      return withPasses(ctxOf(c, t), 1, (ps) => ps.slice(0, 1));
    },
    'waypoint-chain': () => {
      const { c, t } = firstTrace('waypoint');
      const elsewhere = { addr: '10.0.0.201', port: 15008 };
      return withPasses(ctxOf(c, t), 1, (ps) => {
        ps[0]!.destOut = elsewhere;
        ps[1]!.destIn = elsewhere;
        return ps;
      });
    },
    'path-justified': () => {
      const { c, t } = firstTrace('frontendMiss');
      return withPasses(ctxOf(c, t), 1, (ps) => {
        ps[0]!.path = 'udp-skip';
        return ps;
      });
    },
    'lb-choice': () => {
      const { c, t } = firstTrace('strict');
      return withPasses(ctxOf(c, t), 1, (ps) => {
        ps[0]!.prio = 1;
        return ps;
      });
    },
    'port-mapping': () => {
      const { c, t } = firstTrace('portSlots');
      return withPasses(ctxOf(c, t), 1, (ps) => {
        ps[0]!.portSlot = 2;
        return ps;
      });
    },
    'address-family': () => {
      const { c, t } = firstTrace('random3');
      return withPasses(ctxOf(c, t), 1, (ps) => {
        ps[0]!.destOut = { addr: '::ffff:10.1.0.1', port: 8080 };
        return ps;
      });
    },
    // The query to 10.9.0.2 is not redirected.
    'dns-query-destination': () => {
      const { c, t } = firstTrace('dnsSendto');
      return withObservation(ctxOf(c, t, false), 3, { arrivedAt: { addr: '10.9.0.2', port: 53 } });
    },
    // The second reply keeps the first server.
    'dns-reply-source': () => {
      const { c, t } = firstTrace('dnsSendto');
      return withObservation(ctxOf(c, t, false), 4, { from: { addr: '10.9.0.1', port: 53 } });
    },
    // The connected socket's answer never comes.
    'dns-exchange': () => {
      const { c, t } = firstTrace('dnsSendto6');
      return withObservation(ctxOf(c, t, false), 6, { from: null, data: null, error: 'EAGAIN' });
    },
  };

  it('there is a mutation for every invariant', () => {
    expect(Object.keys(mutations).sort()).toEqual(invariants.map((i) => i.name).sort());
  });

  it.each(Object.entries(mutations))('%s is violated by a hand-altered trace', (name, mutate) => {
    const v = invariantNamed(name).check(mutate());
    expect(v.status).toBe('violated');
  });

  it('dns-proxy names the connect by the address the application asked for, and the proxy as expected', () => {
    const { c, t } = firstTrace('dnsUdp');
    const asked = (c.ops.find((o) => o.op === 'connect') as { dest: { addr: string; port: number } }).dest;
    const v = invariantNamed('dns-proxy').check(withObservation(ctxOf(c, t, false), 1, { peer: { addr: '10.9.0.1', port: 53 } }));
    expect(v.status).toBe('violated');
    const detail = v.status === 'violated' ? v.detail : '';
    expect(detail).toContain(`a connect to ${asked.addr}:${asked.port} ended in 10.9.0.1:53, expected `);
    expect(detail).not.toMatch(/expected 10\.9\.0\.1:53/);
  });

  it('original-written-once catches an original that is not what the application asked for', () => {
    const { c, t } = firstTrace('directKept');
    const st = t.observations[1]!.storage!;
    const v = invariantNamed('original-written-once').check(withObservation(ctxOf(c, t, false), 1, { storage: { ...st, original: { addr: pod, port: 81 } } }));
    expect(v).toMatchObject({ status: 'violated', detail: expect.stringMatching(/asked for 10\.1\.0\.9:80/) });
  });

  it('tlv-prefix catches a second prefix and a prefix where none belongs', () => {
    const { c, t } = firstTrace('waypoint');
    const s = t.observations[3]!.stream!;
    const tlv = tlvHex('inet', { addr: VIP, port: 80 });
    expect(s.hex.startsWith(tlv)).toBe(true);
    const twice = withObservation(ctxOf(c, t, false), 3, { stream: { ...s, hex: tlv + s.hex } });
    expect(invariantNamed('tlv-prefix').check(twice).status).toBe('violated');
    const plain = firstTrace('random3');
    const p = plain.t.observations[2]!.stream!;
    const extra = withObservation(ctxOf(plain.c, plain.t, false), 2, { stream: { ...p, hex: tlv + p.hex } });
    expect(invariantNamed('tlv-prefix').check(extra).status).toBe('violated');
  });

  it('lb-choice catches an index outside 1..count', () => {
    const { c, t } = firstTrace('random3');
    const ctx = withPasses(ctxOf(c, t), 1, (ps) => {
      ps[0]!.index = 4;
      return ps;
    });
    expect(invariantNamed('lb-choice').check(ctx).status).toBe('violated');
  });
});

describe('relations', () => {
  it('allowedPeers: the destination, backends at target ports, waypoints, in the family', () => {
    const peers = allowedPeers(viaWaypoint(), 'inet6', { addr: '::ffff:10.0.0.1', port: 80 });
    const text = peers.map((p) => `${p.addr}:${p.port}`).sort();
    expect(text).toEqual(['::ffff:10.0.0.1:80', '::ffff:10.1.0.1:8080', '::ffff:10.1.0.1:15008', `::ffff:${WP_POD}:8080`, `::ffff:${WP_POD}:15008`, `::ffff:${WP_VIP}:15008`].sort());
    // An IPv6 backend cannot be an AF_INET peer.
    expect(allowedPeers(maps({ backends: [backend(1, 'fd00::1')] }), 'inet', { addr: VIP, port: 80 })).toEqual([{ addr: VIP, port: 80 }]);
  });

  it('allowedPeers with the environment: an any-address may end at an own local address', () => {
    const any = { addr: '0.0.0.0', port: 80 };
    expect(allowedPeers(maps({}), 'inet', any)).toEqual([{ addr: '127.0.0.1', port: 80 }]);
    const udp = allowedPeers(maps({}), 'inet', any, { env, protocol: 'udp' })
      .map((p) => p.addr)
      .sort();
    expect(udp).toEqual([env.podAddress.inet, '127.0.0.1'].sort());
    expect(allowedPeers(maps({}), 'inet', any, { env, protocol: 'tcp' })).toEqual([{ addr: '127.0.0.1', port: 80 }]);
  });

  it('the spec works on executor-shaped traces (no pass records, send without storage)', () => {
    const { c, t } = firstTrace('waypoint');
    const ctx = ctxOf(c, t, false);
    const stripped = { ...ctx, steps: ctx.steps.map((s) => (s.op.op === 'send' ? { ...s, observation: { op: s.observation.op, sock: s.observation.sock, stream: s.observation.stream } } : s)) };
    for (const inv of invariants.filter((i) => i.needs !== 'passes')) expect(inv.check(stripped).status).not.toBe('violated');
  });
});

describe('the socket layer in the spec', () => {
  const check = (name: string, ctx: SpecContext) => invariantNamed(name).check(ctx);

  it('a UDP any-address connect ends at the own local address, and only one it can have', () => {
    const { c, t } = firstTrace('udpOwnLocal');
    expect(t.observations[2]!.peer).toEqual({ addr: env.podAddress.inet, port: 80 });
    const ctx = ctxOf(c, t, false);
    expect(check('udp-outside-dns-untouched', ctx).status).toBe('holds');
    // Its first connect went to 10.0.0.7, so its local is the pod address, not 127.0.0.1.
    for (const addr of ['127.0.0.1', '10.255.0.2']) {
      expect(check('udp-outside-dns-untouched', withObservation(ctx, 2, { peer: { addr, port: 80 } })).status).toBe('violated');
    }
    // Port 0: connected with nothing to show; an error there is wrong.
    expect(check('udp-outside-dns-untouched', withObservation(ctx, 3, { error: 'ECONNREFUSED' })).status).toBe('violated');
  });

  it('EAFNOSUPPORT exactly for a native IPv6 connect of a UDP socket with a v4-mapped local', () => {
    const { c, t } = firstTrace('udp6Locals');
    expect(t.observations[3]).toMatchObject({ peer: null, error: 'EAFNOSUPPORT' });
    expect(t.observations[7]!.peer).toEqual({ addr: 'fd00::7', port: 80 });
    const ctx = ctxOf(c, t, false);
    expect(check('udp-outside-dns-untouched', withObservation(ctx, 3, { peer: { addr: 'fd00::7', port: 80 }, error: null })).status).toBe('violated');
    expect(check('udp-outside-dns-untouched', withObservation(ctx, 7, { peer: null, error: 'EAFNOSUPPORT' })).status).toBe('violated');
    // :: on the v4-mapped local is mapped loopback, not ::1.
    expect(check('udp-outside-dns-untouched', withObservation(ctx, 2, { peer: { addr: '::1', port: 80 } })).status).toBe('violated');
  });

  it('a TCP connect may stay in progress only after a refusal on the same AF_INET6 socket; then no program runs', () => {
    const { c, t } = firstTrace('tcpQuirk');
    expect(t.observations.map((o) => o.error ?? null)).toEqual([null, 'ECONNREFUSED', 'EINPROGRESS', 'EALREADY', null]);
    const ctx = ctxOf(c, t, false);
    expect(check('not-enrolled-untouched', ctx).status).toBe('holds');
    expect(check('connect-on-connected-socket', ctx).status).toBe('holds');
    // In progress on a fresh socket: wrong.
    const fresh = mkCase(maps({}), [sock(1, 'inet6'), connect(1, 'fd00::7', 80)], false);
    const ft = outcomes(fresh, env)[0]!;
    expect(check('not-enrolled-untouched', withObservation(ctxOf(fresh, ft, false), 1, { peer: null, error: 'EINPROGRESS' })).status).toBe('violated');
    // A connect on the connecting socket that succeeds: wrong.
    expect(check('connect-on-connected-socket', withObservation(ctx, 3, { peer: { addr: '::ffff:10.0.0.7', port: 80 }, error: null })).status).toBe('violated');
    // An EINPROGRESS where the kernel must refuse: wrong.
    expect(check('not-enrolled-untouched', withObservation(ctx, 1, { error: 'EINPROGRESS' })).status).toBe('violated');
  });

  it('km_socket membership of a connection from 127.0.0.1 follows the enrolment of 127.0.0.1', () => {
    const { c, t } = firstTrace('loopbackWaypoint');
    expect(t.observations[1]).toMatchObject({ peer: { addr: '127.0.0.1', port: 15008 }, inSockhash: true });
    const ctx = ctxOf(c, t, false);
    expect(check('sockhash-membership', ctx).status).toBe('holds');
    expect(check('sockhash-membership', withObservation(ctx, 1, { inSockhash: false })).status).toBe('violated');
  });
});

describe('random small cases', () => {
  // Small pools so that frontends, waypoints, DNS and control addresses collide often; the mix
  // leans towards enrolled TCP connects to frontends, where the routing happens.
  const vips = ['10.0.0.1', '10.0.0.200', 'fd00::1', 'fd00::200'];
  const others = ['10.1.0.1', '10.2.0.1', '0.0.0.2', '0.0.0.0', '192.168.0.1', '::2', '::ffff:10.0.0.1', '::1:0:0:0'];
  const addr = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...vips) }, { weight: 2, arbitrary: fc.constantFrom(...others) });
  const port = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(80, 15008) }, { weight: 1, arbitrary: fc.constantFrom(53, 929, 930, 0) });
  const id = fc.integer({ min: 0, max: 3 });
  const waypoint = fc.oneof({ weight: 2, arbitrary: fc.constant({ addr: '0.0.0.0', port: 0 }) }, { weight: 1, arbitrary: fc.record({ addr, port }) });
  const state = fc.record({
    frontends: fc.array(fc.record({ addr: fc.constantFrom(...vips, '10.1.0.1'), upstreamId: id }), { maxLength: 4 }),
    services: fc.array(
      fc.record({
        id: fc.integer({ min: 1, max: 3 }),
        endpointCounts: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 7, maxLength: 7 }),
        lbPolicy: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 2 }) }, { weight: 1, arbitrary: fc.constant(9) }),
        servicePorts: fc.array(port, { minLength: 10, maxLength: 10 }),
        targetPorts: fc.array(port, { minLength: 10, maxLength: 10 }),
        waypoint,
      }),
      { maxLength: 3 },
    ),
    endpoints: fc.array(fc.record({ serviceId: fc.integer({ min: 1, max: 3 }), prio: fc.integer({ min: 0, max: 2 }), index: fc.integer({ min: 1, max: 3 }), backendUid: id }), { maxLength: 8 }),
    backends: fc.array(fc.record({ uid: id, addr, services: fc.constant([]), waypoint }), { maxLength: 4 }),
  });
  const socketOps = (sockId: number) =>
    fc
      .tuple(fc.constantFrom<'inet' | 'inet6'>('inet', 'inet6'), fc.constantFrom<'tcp' | 'udp'>('tcp', 'tcp', 'tcp', 'udp'), fc.array(fc.tuple(addr, port), { minLength: 1, maxLength: 3 }), fc.nat(2))
      .map(([family, protocol, dests, messages]) => {
        const ops: Case['ops'][number][] = [sock(sockId, family, protocol)];
        for (const [a, p] of dests) {
          const isV6 = a.includes(':');
          const text = family === 'inet' ? (isV6 ? '10.0.0.1' : a) : isV6 ? a : `::ffff:${a}`;
          ops.push(connect(sockId, text, p));
        }
        ops.push(send(sockId, messages));
        return ops;
      });
  const arbCase = fc.record({ state, enrolled: fc.constantFrom(true, true, true, false), a: socketOps(1), b: socketOps(2) }).map(({ state, enrolled, a, b }) => mkCase(state, [...a, ...b], enrolled));

  it('every invariant holds on every outcome of the model', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        for (const t of outcomes(c, env)) {
          for (const inv of invariants) {
            const v = inv.check(ctxOf(c, t));
            if (v.status === 'violated') throw new Error(`${inv.name}: ${v.detail}`);
          }
        }
      }),
      { numRuns: Number(process.env.MODEL_RUNS ?? 400), seed: Number(process.env.MODEL_SEED ?? 20251121) },
    );
  });
});
