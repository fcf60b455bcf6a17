import { describe, expect, it } from 'vitest';
import { NO_WAYPOINT, payloadFor, type Case, type Observation } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { enrolledLocalIps, initialWorld, MAX_PASSES, ModelInputError, OutcomeLimitError, outcomes, step, tlvBytes, type Trace } from '../../model/impl/index.js';
import { BACKENDS, VIP, WP_POD, WP_VIP, backend, connect, endpoint, frontend, maps, mkCase, oneConnect, send, service, sock, threeBackends, viaWaypoint } from '../model-fixtures.js';

const env = DEFAULT_ENVIRONMENT;

function only(c: Case): Trace {
  const ts = outcomes(c, env);
  expect(ts).toHaveLength(1);
  return ts[0]!;
}

/** The observation and path labels of the last connect of a single-outcome case. */
function lastConnect(c: Case): { obs: Observation; paths: string[] } {
  const t = only(c);
  const i = c.ops.map((o) => o.op).lastIndexOf('connect');
  return { obs: t.observations[i]!, paths: t.passes[i]!.map((p) => p.path) };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('section 3 paths on AF_INET', () => {
  it('control connect enrols the namespace and the local IP, untouched', () => {
    const c = mkCase(threeBackends(), [sock(1, 'inet'), connect(1, '0.0.0.2', 929), sock(2, 'inet'), connect(2, VIP, 80)], false);
    const ts = outcomes(c, env);
    expect(ts[0]!.passes[1]!.map((p) => p.path)).toEqual(['control']);
    expect(ts[0]!.observations[1]).toMatchObject({ peer: null, error: 'ECONNREFUSED', storage: null, inSockhash: false });
    // Now enrolled: the service VIP is load balanced.
    expect(ts.map((t) => t.passes[3]![0]!.path)).toEqual(['random', 'random', 'random']);
    let w = initialWorld(c, env);
    for (const [i, op] of c.ops.slice(0, 2).entries()) w = step(w, op, env, i)[0]!.world;
    expect(w.netnsEnrolled).toBe(true);
    expect(w.enrolledIps).toEqual([env.podAddress.inet]);
  });

  it('withdraw (930) removes the namespace: later connects are untouched', () => {
    const c = mkCase(threeBackends(), [sock(1, 'inet', 'udp'), connect(1, '0.0.0.2', 930), sock(2, 'inet'), connect(2, VIP, 80)]);
    const { obs, paths } = lastConnect(c);
    expect(paths).toEqual(['not-enrolled']);
    expect(obs).toMatchObject({ peer: { addr: VIP, port: 80 }, error: null, storage: null });
  });

  it('not enrolled: untouched, no storage', () => {
    const { obs, paths } = lastConnect(oneConnect(threeBackends(), 'inet', VIP, 80, 'tcp', false));
    expect(paths).toEqual(['not-enrolled']);
    expect(obs).toEqual({ op: 'connect', sock: 1, peer: { addr: VIP, port: 80 }, error: null, storage: null, inSockhash: false });
  });

  it('DNS: UDP and TCP to port 53 go to the proxy, port kept, original recorded', () => {
    const s = maps({ backends: [backend(0, '10.0.0.53')] });
    for (const proto of ['udp', 'tcp'] as const) {
      const { obs, paths } = lastConnect(oneConnect(s, 'inet', '10.9.0.1', 53, proto));
      expect(paths).toEqual(['dns']);
      expect(obs.peer).toEqual({ addr: '10.0.0.53', port: 53 });
      expect(obs.storage).toEqual({ viaWaypoint: false, hasSetIp: true, hasEncoded: false, original: { addr: '10.9.0.1', port: 53 } });
    }
  });

  it('DNS without a proxy: UDP untouched, TCP routed like any port', () => {
    const s = maps({
      frontends: [frontend('10.9.0.1', 1)],
      services: [service(1, { counts: [1], ports: [[53, 5353]] })],
      endpoints: [endpoint(1, 0, 1, 7)],
      backends: [backend(7, '10.1.0.7')],
    });
    const udp = lastConnect(oneConnect(s, 'inet', '10.9.0.1', 53, 'udp'));
    expect(udp.paths).toEqual(['dns-no-proxy']);
    expect(udp.obs).toMatchObject({ peer: { addr: '10.9.0.1', port: 53 }, storage: null });
    const tcp = lastConnect(oneConnect(s, 'inet', '10.9.0.1', 53, 'tcp'));
    expect(tcp.paths).toEqual(['random']);
    expect(tcp.obs.peer).toEqual({ addr: '10.1.0.7', port: 5353 });
  });

  it('DNS with an IPv6 proxy fails the pass: untouched, nothing recorded, no UDP storage', () => {
    const s = maps({ backends: [backend(0, 'fd00::53')] });
    const udp = lastConnect(oneConnect(s, 'inet', '10.9.0.1', 53, 'udp'));
    expect(udp.paths).toEqual(['family-mismatch']);
    expect(udp.obs).toMatchObject({ peer: { addr: '10.9.0.1', port: 53 }, storage: null });
    const tcp = lastConnect(oneConnect(s, 'inet', '10.9.0.1', 53, 'tcp'));
    expect(tcp.obs.storage).toEqual({ viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null });
  });

  it('UDP outside DNS: untouched, no storage', () => {
    const { obs, paths } = lastConnect(oneConnect(threeBackends(), 'inet', VIP, 80, 'udp'));
    expect(paths).toEqual(['udp-skip']);
    expect(obs).toMatchObject({ peer: { addr: VIP, port: 80 }, storage: null, inSockhash: false });
  });

  it('frontend miss: untouched but storage created', () => {
    const { obs, paths } = lastConnect(oneConnect(threeBackends(), 'inet', '10.7.7.7', 80));
    expect(paths).toEqual(['frontend-miss']);
    expect(obs.storage).toEqual({ viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null });
  });

  it('direct backend: missing, kept (original recorded), via waypoint', () => {
    const pod = '10.1.0.9';
    const missing = lastConnect(oneConnect(maps({ frontends: [frontend(pod, 9)] }), 'inet', pod, 80));
    expect(missing.paths).toEqual(['direct-backend-missing']);
    expect(missing.obs.storage?.hasSetIp).toBe(false);
    const kept = lastConnect(oneConnect(maps({ frontends: [frontend(pod, 9)], backends: [backend(9, pod)] }), 'inet', pod, 80));
    expect(kept.paths).toEqual(['direct-backend']);
    expect(kept.obs).toMatchObject({ peer: { addr: pod, port: 80 }, storage: { hasSetIp: true, original: { addr: pod, port: 80 } } });
    const wp = lastConnect(oneConnect(maps({ frontends: [frontend(pod, 9)], backends: [backend(9, pod, { addr: WP_POD, port: 15008 })] }), 'inet', pod, 80));
    expect(wp.paths).toEqual(['direct-backend-waypoint', 'frontend-miss']);
    expect(wp.obs).toMatchObject({ peer: { addr: WP_POD, port: 15008 }, inSockhash: true, storage: { viaWaypoint: true, original: { addr: pod, port: 80 } } });
  });

  it('policies: empty groups and unknown policy', () => {
    const empty = (policy: number) => lastConnect(oneConnect(threeBackends(policy, [0, 2]), 'inet', VIP, 80));
    const random = empty(0);
    expect(random.paths).toEqual(['random-empty']);
    expect(random.obs).toMatchObject({ peer: { addr: VIP, port: 80 }, storage: { hasSetIp: true, original: { addr: VIP, port: 80 } } });
    expect(empty(1).paths).toEqual(['strict-empty']);
    expect(empty(1).obs.storage?.hasSetIp).toBe(false);
    const unknown = lastConnect(oneConnect(threeBackends(7), 'inet', VIP, 80));
    expect(unknown.paths).toEqual(['unknown-policy']);
    const failoverEmpty = lastConnect(oneConnect(threeBackends(2, [0]), 'inet', VIP, 80));
    expect(failoverEmpty.paths).toEqual(['failover-empty']);
  });

  it('endpoint missing, backend missing, backend waypoint, no port match, family mismatch', () => {
    const base = {
      frontends: [frontend(VIP, 1)],
      services: [service(1, { counts: [1], ports: [[80, 8080]] })],
    };
    expect(lastConnect(oneConnect(maps(base), 'inet', VIP, 80)).paths).toEqual(['endpoint-missing']);
    expect(lastConnect(oneConnect(maps({ ...base, endpoints: [endpoint(1, 0, 1, 5)] }), 'inet', VIP, 80)).paths).toEqual(['backend-missing']);
    const bwp = lastConnect(oneConnect(maps({ ...base, endpoints: [endpoint(1, 0, 1, 5)], backends: [backend(5, '10.1.0.5', { addr: WP_POD, port: 15008 })] }), 'inet', VIP, 81));
    // Port mapping is skipped for a waypoint: port 81 has no slot but the pass still goes via the waypoint.
    expect(bwp.paths).toEqual(['backend-waypoint', 'frontend-miss']);
    expect(bwp.obs.peer).toEqual({ addr: WP_POD, port: 15008 });
    const full = maps({ ...base, endpoints: [endpoint(1, 0, 1, 5)], backends: [backend(5, '10.1.0.5')] });
    expect(lastConnect(oneConnect(full, 'inet', VIP, 81)).paths).toEqual(['no-port-match']);
    const v6 = maps({ ...base, endpoints: [endpoint(1, 0, 1, 5)], backends: [backend(5, 'fd00::5')] });
    const mismatch = lastConnect(oneConnect(v6, 'inet', VIP, 80));
    expect(mismatch.paths).toEqual(['family-mismatch']);
    expect(mismatch.obs).toMatchObject({ peer: { addr: VIP, port: 80 }, storage: { hasSetIp: false } });
  });

  it('port mapping takes the first matching slot', () => {
    const s = maps({
      frontends: [frontend(VIP, 1)],
      services: [
        service(1, {
          counts: [1],
          ports: [
            [81, 1],
            [80, 8080],
            [80, 9090],
          ],
        }),
      ],
      endpoints: [endpoint(1, 0, 1, 5)],
      backends: [backend(5, '10.1.0.5')],
    });
    const t = only(oneConnect(s, 'inet', VIP, 80));
    expect(t.passes[1]![0]).toMatchObject({ path: 'random', portSlot: 1, destOut: { addr: '10.1.0.5', port: 8080 } });
  });
});

describe('load balancing', () => {
  it('random with count 3 yields exactly 3 outcomes, one per backend', () => {
    const ts = outcomes(oneConnect(threeBackends(0), 'inet', VIP, 80), env);
    expect(ts).toHaveLength(3);
    expect(ts.map((t) => t.observations[1]!.peer).sort((a, b) => a!.addr.localeCompare(b!.addr))).toEqual(BACKENDS.map((addr) => ({ addr, port: 8080 })));
    expect(ts.map((t) => t.choices.map((ch) => ch.index))).toEqual([[1], [2], [3]]);
  });

  it('strict draws from prio 0 only; failover from the first non-empty group', () => {
    const s = (policy: number, counts: number[]) =>
      maps({
        frontends: [frontend(VIP, 1)],
        services: [service(1, { counts, policy, ports: [[80, 80]] })],
        endpoints: [endpoint(1, 0, 1, 1), endpoint(1, 1, 1, 2), endpoint(1, 1, 2, 3), endpoint(1, 2, 1, 4)],
        backends: [backend(1, '10.1.0.1'), backend(2, '10.1.0.2'), backend(3, '10.1.0.3'), backend(4, '10.1.0.4')],
      });
    const strict = outcomes(oneConnect(s(1, [1, 2, 1]), 'inet', VIP, 80), env);
    expect(strict.map((t) => t.observations[1]!.peer?.addr)).toEqual(['10.1.0.1']);
    const failover = outcomes(oneConnect(s(2, [0, 2, 1]), 'inet', VIP, 80), env);
    expect(failover.map((t) => t.observations[1]!.peer?.addr)).toEqual(['10.1.0.2', '10.1.0.3']);
    expect(failover[0]!.passes[1]![0]).toMatchObject({ prio: 1, count: 2, index: 1 });
  });

  it('indices without an endpoint are one branch standing for all of them', () => {
    const s = maps({
      frontends: [frontend(VIP, 1)],
      services: [service(1, { counts: [1000], ports: [[80, 80]] })],
      endpoints: [endpoint(1, 0, 2, 1)],
      backends: [backend(1, '10.1.0.1')],
    });
    const ts = outcomes(oneConnect(s, 'inet', VIP, 80), env);
    expect(ts).toHaveLength(2);
    const alike = ts.flatMap((t) => t.choices).map((ch) => [ch.index, ch.alike]);
    expect(alike).toEqual([
      [1, 999],
      [2, 1],
    ]);
  });

  it('random draws multiply over connects and are capped with a clear error', () => {
    const ops = [sock(1, 'inet'), connect(1, VIP, 80), sock(2, 'inet'), connect(2, VIP, 80)];
    expect(outcomes(mkCase(threeBackends(), ops), env)).toHaveLength(9);
    expect(() => outcomes(mkCase(threeBackends(), ops), env, 5)).toThrow(OutcomeLimitError);
  });
});

describe('AF_INET6', () => {
  const v6 = maps({
    frontends: [frontend('fd00:1::1', 1), frontend(VIP, 2)],
    services: [service(1, { counts: [1], ports: [[80, 8080]] }), service(2, { counts: [1], ports: [[80, 8081]] })],
    endpoints: [endpoint(1, 0, 1, 5), endpoint(2, 0, 1, 6)],
    backends: [backend(5, 'fd00:2::5'), backend(6, '10.1.0.6')],
  });

  it('an IPv6 VIP goes to an IPv6 backend as it is', () => {
    const { obs } = lastConnect(oneConnect(v6, 'inet6', 'fd00:1::1', 80));
    expect(obs.peer).toEqual({ addr: 'fd00:2::5', port: 8080 });
  });

  it('a v4-mapped VIP is looked up by its IPv4 key; IPv4 targets are written mapped', () => {
    const { obs, paths } = lastConnect(oneConnect(v6, 'inet6', '::ffff:10.0.0.1', 80));
    expect(paths).toEqual(['random']);
    expect(obs.peer).toEqual({ addr: '::ffff:10.1.0.6', port: 8081 });
    expect(obs.storage?.original).toEqual({ addr: '::ffff:10.0.0.1', port: 80 });
  });

  it('control is ::2 only; ::ffff:0.0.0.2 is an ordinary destination; no DNS on connect6', () => {
    const c = mkCase(maps({ backends: [backend(0, '10.0.0.53')] }), [sock(1, 'inet6'), connect(1, '::2', 929), connect(1, '::ffff:0.0.0.2', 929), connect(1, '::ffff:10.9.0.1', 53)], false);
    const t = only(c);
    expect(t.passes[1]!.map((p) => p.path)).toEqual(['control']);
    expect(t.passes[2]!.map((p) => p.path)).toEqual(['frontend-miss']);
    expect(t.passes[3]!.map((p) => p.path)).toEqual(['frontend-miss']);
  });
});

describe('waypoint chain', () => {
  it('service waypoint, re-resolved through the frontends, original frozen, in km_socket', () => {
    const t = only(oneConnect(viaWaypoint(), 'inet', VIP, 80));
    expect(t.passes[1]!.map((p) => p.path)).toEqual(['service-waypoint', 'random']);
    expect(t.passes[1]![1]!.destIn).toEqual({ addr: WP_VIP, port: 15008 });
    expect(t.observations[1]).toEqual({
      op: 'connect',
      sock: 1,
      peer: { addr: WP_POD, port: 15008 },
      error: null,
      storage: { viaWaypoint: true, hasSetIp: true, hasEncoded: false, original: { addr: VIP, port: 80 } },
      inSockhash: true,
    });
  });

  it('a waypoint cycle ends after 34 passes with the last rewrite in place', () => {
    const s = maps({
      frontends: [frontend(WP_VIP, 2)],
      services: [service(2, { waypoint: { addr: WP_VIP, port: 15008 } })],
    });
    const t = only(oneConnect(s, 'inet', WP_VIP, 80));
    expect(t.passes[1]).toHaveLength(MAX_PASSES);
    expect(MAX_PASSES).toBe(34);
    expect(t.passes[1]!.every((p) => p.path === 'service-waypoint')).toBe(true);
    expect(t.passes[1]!.filter((p) => p.recordedOriginal)).toHaveLength(1);
    expect(t.observations[1]).toMatchObject({ peer: { addr: WP_VIP, port: 15008 }, storage: { original: { addr: WP_VIP, port: 80 } } });
  });

  it('a chain of random draws stays linear: states are merged per pass', () => {
    // Two waypoint VIPs that each pick at random between two waypoint VIPs: 2^33 choice sequences.
    const s = maps({
      frontends: [frontend('10.0.0.10', 1), frontend('10.0.0.11', 1)],
      services: [service(1, { counts: [2], ports: [[80, 80]] })],
      endpoints: [endpoint(1, 0, 1, 1), endpoint(1, 0, 2, 2)],
      backends: [backend(1, '10.2.0.1', { addr: '10.0.0.10', port: 80 }), backend(2, '10.2.0.2', { addr: '10.0.0.11', port: 80 })],
    });
    // Exponential enumeration would never finish: the test's timeout is the bound.
    const ts = outcomes(oneConnect(s, 'inet', '10.0.0.10', 80), env);
    expect(ts.map((t) => t.observations[1]!.peer?.addr).sort()).toEqual(['10.0.0.10', '10.0.0.11']);
    expect(ts.every((t) => t.passes[1]!.length === 34)).toBe(true);
  });
});

describe('connects on the same socket', () => {
  it('a second connect on a connected TCP socket fails with EISCONN and runs no pass', () => {
    const t = only(mkCase(viaWaypoint(), [sock(1, 'inet'), connect(1, '10.7.7.7', 80), connect(1, VIP, 80)]));
    expect(t.passes[2]).toEqual([]);
    expect(t.observations[2]).toEqual({
      op: 'connect',
      sock: 1,
      peer: null,
      error: 'EISCONN',
      storage: t.observations[1]!.storage,
      inSockhash: false,
    });
  });

  it('a refused TCP connect can be retried; the original from the first recording stays', () => {
    const s = maps({ frontends: [frontend('10.1.0.9', 9)], backends: [backend(9, '10.1.0.9')] });
    const t = only(mkCase(s, [sock(1, 'inet'), connect(1, '10.1.0.9', 929), connect(1, '10.1.0.9', 80)]));
    expect(t.observations[1]).toMatchObject({ peer: null, error: 'ECONNREFUSED', storage: { original: { addr: '10.1.0.9', port: 929 } } });
    expect(t.observations[2]).toMatchObject({ peer: { addr: '10.1.0.9', port: 80 }, storage: { original: { addr: '10.1.0.9', port: 929 } } });
  });

  it('UDP sockets connect again and get a new peer; unroutable gives ENETUNREACH', () => {
    const s = maps({ backends: [backend(0, '10.0.0.53')] });
    const t = only(mkCase(s, [sock(1, 'inet', 'udp'), connect(1, '10.9.0.1', 53), connect(1, '10.0.0.7', 9000), connect(1, '192.168.0.1', 9000)]));
    expect(t.observations[1]!.peer).toEqual({ addr: '10.0.0.53', port: 53 });
    expect(t.observations[2]!.peer).toEqual({ addr: '10.0.0.7', port: 9000 });
    expect(t.observations[3]).toMatchObject({ peer: null, error: 'ENETUNREACH', storage: { original: { addr: '10.9.0.1', port: 53 } } });
  });
});

describe('the stream a waypoint receives', () => {
  it('AF_INET: one 16-byte prefix with the exact bytes of the table, then the payload', () => {
    const t = only(mkCase(viaWaypoint(), [sock(1, 'inet'), connect(1, VIP, 80), send(1, 2), send(1, 1)]));
    const tlv = '01' + '00000006' + '0a000001' + '0050' + 'fe00000000';
    expect(hex(tlvBytes('inet', { addr: VIP, port: 80 }))).toBe(tlv);
    const payload = (n: number) => Array.from({ length: n }, (_, i) => hex(payloadFor(1, i))).join('');
    expect(t.observations[2]).toEqual({
      op: 'send',
      sock: 1,
      storage: { viaWaypoint: true, hasSetIp: true, hasEncoded: true, original: { addr: VIP, port: 80 } },
      stream: { tlv: { form: 'inet', original: { addr: VIP, port: 80 } }, payloadIntact: true, hex: tlv + payload(2) },
    });
    expect(t.observations[3]!.stream!.hex).toBe(tlv + payload(3));
  });

  it('AF_INET6 with a v4-mapped original: the 28-byte prefix keeps it mapped', () => {
    const t = only(mkCase(viaWaypoint(), [sock(1, 'inet6'), connect(1, '::ffff:10.0.0.1', 80), send(1, 1)]));
    const tlv = '01' + '00000012' + '00000000000000000000ffff0a000001' + '0050' + 'fe00000000';
    expect(t.observations[1]!.peer).toEqual({ addr: `::ffff:${WP_POD}`, port: 15008 });
    expect(t.observations[2]!.stream).toEqual({
      tlv: { form: 'inet6', original: { addr: '::ffff:10.0.0.1', port: 80 } },
      payloadIntact: true,
      hex: tlv + hex(payloadFor(1, 0)),
    });
  });

  it('no prefix when not via a waypoint, or when the local IP is not enrolled', () => {
    const plain = only(mkCase(threeBackends(0, [1]), [sock(1, 'inet'), connect(1, VIP, 80), send(1, 1)]));
    expect(plain.observations[2]!.stream).toEqual({ tlv: null, payloadIntact: true, hex: hex(payloadFor(1, 0)) });
    // Enrolled through a TCP control connect from AF_INET only: the IPv6 local IP is not enrolled.
    const ops = [sock(9, 'inet'), connect(9, '0.0.0.2', 929), sock(1, 'inet6'), connect(1, '::ffff:10.0.0.1', 80), send(1, 1), sock(2, 'inet6'), connect(2, 'fd00::9', 80)];
    const t = only(mkCase(viaWaypoint(), ops, false));
    expect(t.observations[3]).toMatchObject({ inSockhash: true }); // v4-mapped local folds to the enrolled IPv4
    const v6only = maps({ ...viaWaypoint(), frontends: [frontend('fd00::9', 1), frontend(WP_VIP, 2)] });
    const t2 = only(mkCase(v6only, ops, false));
    expect(t2.observations[6]).toMatchObject({ peer: { addr: `::ffff:${WP_POD}`, port: 15008 }, storage: { viaWaypoint: true } });
    // fd00::9 -> waypoint written mapped: reached over IPv4, so again the enrolled IPv4 local IP.
    expect(t2.observations[6]!.inSockhash).toBe(true);
    const v6wp = maps({
      frontends: [frontend('fd00::9', 1)],
      services: [service(1, { counts: [1], waypoint: { addr: 'fd00::200', port: 15008 } })],
    });
    const t3 = only(mkCase(v6wp, ops, false));
    expect(t3.observations[6]).toMatchObject({ peer: { addr: 'fd00::200', port: 15008 }, inSockhash: false });
  });

  it('send on an unconnected or UDP socket has no stream', () => {
    const t = only(mkCase(threeBackends(), [sock(1, 'inet'), send(1, 1), sock(2, 'inet', 'udp'), connect(2, VIP, 80), send(2, 1)]));
    expect(t.observations[1]!.stream).toBeNull();
    expect(t.observations[4]!.stream).toBeNull();
  });
});

describe('operations and input errors', () => {
  it('close drops the socket; apply replaces the maps', () => {
    const c = mkCase(maps({}), [sock(1, 'inet'), { op: 'apply', state: threeBackends(0, [1]) }, connect(1, VIP, 80), { op: 'close', sock: 1 }, sock(1, 'inet'), connect(1, '10.7.7.7', 80)]);
    const t = only(c);
    expect(t.observations[2]!.peer).toEqual({ addr: BACKENDS[0], port: 8080 });
    expect(t.observations[3]).toEqual({ op: 'close', sock: 1 });
    expect(t.observations[5]!.storage?.hasSetIp).toBe(false);
  });

  it('bad operations get a one-line error saying what to do', () => {
    expect(() => outcomes(mkCase(maps({}), [connect(1, VIP, 80)]), env)).toThrow(/not open: create it/);
    expect(() => outcomes(mkCase(maps({}), [sock(1, 'inet6'), connect(1, VIP, 80)]), env)).toThrow(ModelInputError);
    expect(() => outcomes(mkCase(maps({}), [sock(1, 'inet'), sock(1, 'inet')]), env)).toThrow(/already open/);
  });

  it('waypoint needs port and a non-zero address (all 16 bytes count)', () => {
    const s = (addr: string, port: number) => maps({ frontends: [frontend(VIP, 1)], services: [service(1, { counts: [0], waypoint: { addr, port } })] });
    expect(lastConnect(oneConnect(s('0.0.0.0', 15008), 'inet', VIP, 80)).paths).toEqual(['random-empty']);
    expect(lastConnect(oneConnect(s(WP_POD, 0), 'inet', VIP, 80)).paths).toEqual(['random-empty']);
    expect(lastConnect(oneConnect(s('::1:0:0:0', 15008), 'inet6', '::ffff:10.0.0.1', 80)).paths[0]).toBe('service-waypoint');
    expect(NO_WAYPOINT.port).toBe(0);
  });
});

// The Linux socket layer around the programs (model/environment.ts, kernelConnect; the facts are
// measured in test/unit/environment.test.ts): what the model predicts through it, step by step.
describe('the socket layer around the programs', () => {
  const empty = maps({});
  const POD4 = env.podAddress.inet;
  const peers = (t: Trace) => t.observations.filter((o) => o.op === 'connect').map((o) => (o.peer ? o.peer.addr : o.error));

  it('fact 1: UDP AF_INET to 0.0.0.0 is loopback when fresh, the own local address afterwards', () => {
    expect(peers(only(mkCase(empty, [sock(1, 'inet', 'udp'), connect(1, '0.0.0.0', 80)])))).toEqual(['127.0.0.1']);
    const t = only(mkCase(empty, [sock(1, 'inet', 'udp'), connect(1, '10.0.0.1', 80), connect(1, '0.0.0.0', 80), connect(1, '192.168.0.1', 80), connect(1, '0.0.0.0', 80)]));
    expect(peers(t)).toEqual(['10.0.0.1', POD4, 'ENETUNREACH', POD4]);
    expect(t.observations[2]!.peer).toEqual({ addr: POD4, port: 80 });
    // 127.0.0.1 as the local address stays too.
    expect(peers(only(mkCase(empty, [sock(1, 'inet', 'udp'), connect(1, '0.0.0.0', 80), connect(1, '10.0.0.1', 80), connect(1, '0.0.0.0', 80)])))).toEqual(['127.0.0.1', '10.0.0.1', '127.0.0.1']);
  });

  it('fact 1: UDP to port 0 reports neither peer nor error, and sets the local address', () => {
    const t = only(mkCase(empty, [sock(1, 'inet', 'udp'), connect(1, '10.0.0.1', 0), connect(1, '0.0.0.0', 80)]));
    expect(t.observations[1]).toMatchObject({ peer: null, error: null });
    expect(t.observations[2]!.peer).toEqual({ addr: POD4, port: 80 });
  });

  it('fact 2: UDP AF_INET6 any-addresses and v4-mapped locals', () => {
    const run = (...dests: string[]) => peers(only(mkCase(empty, [sock(1, 'inet6', 'udp'), ...dests.map((d) => connect(1, d, 80))])));
    expect(run('::', '::ffff:0.0.0.0')).toEqual(['::1', '::ffff:127.0.0.1']);
    expect(run('::ffff:0.0.0.0', '::', 'fd00::7')).toEqual(['::ffff:127.0.0.1', '::ffff:127.0.0.1', 'EAFNOSUPPORT']);
    expect(run('::ffff:10.0.0.1', '::ffff:0.0.0.0', '::', '::1')).toEqual(['::ffff:10.0.0.1', `::ffff:${POD4}`, '::ffff:127.0.0.1', 'EAFNOSUPPORT']);
    expect(run('fd00::5', '::ffff:0.0.0.0', '::ffff:10.0.0.7', '::')).toEqual(['fd00::5', '::ffff:127.0.0.1', '::ffff:10.0.0.7', '::1']);
    expect(run('fd00::5', '::ffff:10.0.0.7', '::ffff:0.0.0.0')).toEqual(['fd00::5', '::ffff:10.0.0.7', `::ffff:${POD4}`]);
  });

  it('fact 3: a failed TCP connect resets the local address: the next one behaves like a fresh socket', () => {
    const t4 = only(mkCase(empty, [sock(1, 'inet'), connect(1, '10.0.0.1', 929), connect(1, '0.0.0.0', 80)]));
    expect(peers(t4)).toEqual(['ECONNREFUSED', '127.0.0.1']);
    const t6 = only(mkCase(empty, [sock(1, 'inet6'), connect(1, 'fd00::5', 929), connect(1, '::ffff:0.0.0.0', 80)]));
    expect(peers(t6)).toEqual(['ECONNREFUSED', '::ffff:127.0.0.1']);
  });

  it('fact 4: after a refused v4-mapped connect a native IPv6 connect stays in progress; then EALREADY, no pass, no stream', () => {
    const s = maps({ frontends: [frontend('fd00::9', 1)], services: [service(1, { counts: [1], waypoint: { addr: 'fd00::200', port: 15008 } })] });
    const t = only(mkCase(s, [sock(1, 'inet6'), connect(1, '::ffff:10.0.0.1', 929), connect(1, 'fd00::9', 80), connect(1, '::ffff:10.0.0.7', 80), send(1, 1)]));
    expect(peers(t)).toEqual(['ECONNREFUSED', 'EINPROGRESS', 'EALREADY']);
    // The program ran for the connect that hangs: rewritten to the waypoint, original recorded.
    expect(t.passes[2]!.map((p) => p.path)).toEqual(['service-waypoint', 'frontend-miss']);
    const hung = t.observations[2]!;
    expect(hung).toMatchObject({ storage: { viaWaypoint: true, original: { addr: 'fd00::9', port: 80 } }, inSockhash: false });
    expect(t.passes[3]).toEqual([]);
    expect(t.observations[3]!.storage).toEqual(hung.storage);
    expect(t.observations[4]).toMatchObject({ op: 'send', stream: null });
    // A v4-mapped retry after the refusal connects; so does anything after a native refusal.
    expect(peers(only(mkCase(empty, [sock(1, 'inet6'), connect(1, '::ffff:10.0.0.1', 929), connect(1, '::ffff:10.0.0.7', 80)])))).toEqual(['ECONNREFUSED', '::ffff:10.0.0.7']);
    expect(peers(only(mkCase(empty, [sock(1, 'inet6'), connect(1, 'fd00::5', 929), connect(1, '::', 80)])))).toEqual(['ECONNREFUSED', '::1']);
  });

  it('fact 4: the SYN of a connect that hangs still reaches sockops: a control connect there enrols the local IP', () => {
    const s = maps({ frontends: [frontend('fd00::9', 1)], services: [service(1, { counts: [1], waypoint: { addr: 'fd00::200', port: 15008 } })] });
    const base = [sock(9, 'inet'), connect(9, '0.0.0.2', 929), sock(1, 'inet6'), connect(1, '::ffff:10.0.0.1', 929)];
    const probe = [sock(2, 'inet6'), connect(2, 'fd00::9', 80)];
    const withHang = only(mkCase(s, [...base, connect(1, '::2', 929), ...probe], false));
    expect(withHang.observations[4]).toMatchObject({ peer: null, error: 'EINPROGRESS' });
    expect(withHang.observations[6]).toMatchObject({ peer: { addr: 'fd00::200', port: 15008 }, inSockhash: true });
    const without = only(mkCase(s, [...base, ...probe], false));
    expect(without.observations[5]).toMatchObject({ peer: { addr: 'fd00::200', port: 15008 }, inSockhash: false });
  });

  it("fact 5: an enrolled case starts with the environment's enrolled locals, 127.0.0.1 included", () => {
    expect(initialWorld(mkCase(empty, []), env).enrolledIps).toEqual(['10.255.0.1', '127.0.0.1', 'fd00:ffff::1']);
    expect(enrolledLocalIps(env)).toEqual(['10.255.0.1', '127.0.0.1', 'fd00:ffff::1']);
    expect(initialWorld(mkCase(empty, [], false), env).enrolledIps).toEqual([]);
  });

  it('fact 5: a waypoint chain ending at 0.0.0.0 connects from 127.0.0.1, whose enrolment decides km_socket', () => {
    const s = maps({
      frontends: [frontend(VIP, 1), frontend(WP_VIP, 2)],
      services: [service(1, { counts: [1], ports: [[80, 8080]], waypoint: { addr: WP_VIP, port: 15008 } }), service(2, { counts: [1], ports: [[15008, 15008]] })],
      endpoints: [endpoint(1, 0, 1, 100), endpoint(2, 0, 1, 200)],
      backends: [backend(100, '10.1.0.1'), backend(200, '0.0.0.0')],
    });
    const enrolled = only(mkCase(s, [sock(1, 'inet'), connect(1, VIP, 80)]));
    expect(enrolled.observations[1]).toMatchObject({ peer: { addr: '127.0.0.1', port: 15008 }, storage: { viaWaypoint: true }, inSockhash: true });
    // Enrolled by an AF_INET control connect only: the pod address, not 127.0.0.1.
    const podOnly = only(mkCase(s, [sock(9, 'inet'), connect(9, '0.0.0.2', 929), sock(1, 'inet'), connect(1, VIP, 80)], false));
    expect(podOnly.observations[3]).toMatchObject({ peer: { addr: '127.0.0.1', port: 15008 }, storage: { viaWaypoint: true }, inSockhash: false });
  });
});
