// The acceleration model and its invariants without a kernel: the filter's rules one by one
// (written from section 8), the model's observation satisfying every invariant on generated cases,
// and each invariant rejecting an observation that breaks its rule.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { accelCaseArb, interleave, pairsOf } from '../../generators/accel.js';
import { EMPTY_FILTER, type AccelCase, type AccelFilter, type AccelObservation, type AccelPair } from '../../model/accel/domain.js';
import { filterVerdict } from '../../model/accel/filter.js';
import { accelInvariants, judgeAccel } from '../../model/accel/invariants.js';
import { accelerationOf, expectedAccel } from '../../model/accel/model.js';
import { renderSpec } from '../../docs/gen/index.js';
import { ACCEL_EXAMPLE, ACCEL_SECTION } from '../../docs/gen/accel-docs.js';

const PAIR: AccelPair = { netns: 0, family: 'inet', clientAddr: '127.0.0.2', clientPort: 40000, serverAddr: '127.0.0.3', serverPort: 8080, outside: 'none' };
const f = (x: Partial<AccelFilter>): AccelFilter => ({ ...EMPTY_FILTER, ...x });
const host = (ip: string) => ({ ip, mask: 0xffffffff });

describe('acceleration filter', () => {
  it('empty lists constrain nothing', () => {
    expect(filterVerdict(EMPTY_FILTER, PAIR)).toBe('admitted');
  });
  it('a return CIDR matching either address rejects', () => {
    expect(filterVerdict(f({ returnCidrs: [host('127.0.0.2')] }), PAIR)).toBe('return-cidr');
    expect(filterVerdict(f({ returnCidrs: [host('127.0.0.3')] }), PAIR)).toBe('return-cidr');
    expect(filterVerdict(f({ returnCidrs: [host('127.0.0.4')] }), PAIR)).toBe('admitted');
  });
  it('a return range holding either port rejects, edges included; begin > end holds nothing', () => {
    expect(filterVerdict(f({ returnPorts: [{ begin: 40000, end: 40000 }] }), PAIR)).toBe('return-port');
    expect(filterVerdict(f({ returnPorts: [{ begin: 8000, end: 8080 }] }), PAIR)).toBe('return-port');
    expect(filterVerdict(f({ returnPorts: [{ begin: 8081, end: 39999 }] }), PAIR)).toBe('admitted');
    expect(filterVerdict(f({ returnPorts: [{ begin: 40000, end: 8080 }] }), PAIR)).toBe('admitted');
  });
  it('accept CIDRs: every address must lie in one of them (each may use its own)', () => {
    expect(filterVerdict(f({ acceptCidrs: [host('127.0.0.2')] }), PAIR)).toBe('accept-cidr');
    expect(filterVerdict(f({ acceptCidrs: [host('127.0.0.2'), host('127.0.0.3')] }), PAIR)).toBe('admitted');
    expect(filterVerdict(f({ acceptCidrs: [{ ip: '127.0.0.2', mask: 0xfffffffe }] }), PAIR)).toBe('admitted');
  });
  it('accept ranges: one port in one range suffices', () => {
    expect(filterVerdict(f({ acceptPorts: [{ begin: 8080, end: 8080 }] }), PAIR)).toBe('admitted');
    expect(filterVerdict(f({ acceptPorts: [{ begin: 1, end: 2 }] }), PAIR)).toBe('accept-port');
  });
  it('return wins over accept', () => {
    expect(filterVerdict(f({ acceptCidrs: [{ ip: '0.0.0.0', mask: 0 }], returnPorts: [{ begin: 8080, end: 8080 }] }), PAIR)).toBe('return-port');
  });
  it('IPv6 pairs and ends outside the cgroup are never accelerated', () => {
    const c: AccelCase = { filter: EMPTY_FILTER, pairs: [], ops: [] };
    expect(accelerationOf(c, { ...PAIR, family: 'inet6', clientAddr: '::1', serverAddr: '::1' }).accelerated).toBe(false);
    expect(accelerationOf(c, { ...PAIR, family: 'mapped' }).accelerated).toBe(false);
    expect(accelerationOf(c, { ...PAIR, outside: 'client' }).accelerated).toBe(false);
    expect(accelerationOf(c, { ...PAIR, outside: 'server' }).accelerated).toBe(false);
    expect(accelerationOf(c, PAIR).accelerated).toBe(true);
  });
  it('a pair is held to the filter in the map when it connects: a refilter changes later connects only', () => {
    const second: AccelPair = { ...PAIR, clientPort: PAIR.clientPort + 1 };
    const rejecting = f({ returnPorts: [{ begin: 8080, end: 8080 }] });
    const c: AccelCase = {
      filter: EMPTY_FILTER,
      pairs: [PAIR, second],
      ops: [
        { op: 'connect', pair: 0 },
        { op: 'refilter', filter: rejecting },
        { op: 'connect', pair: 1 },
        { op: 'send', pair: 0, from: 'client', size: 3 },
        { op: 'send', pair: 1, from: 'client', size: 3 },
        { op: 'close', pair: 0, end: 'client' },
        { op: 'close', pair: 0, end: 'server' },
        { op: 'close', pair: 1, end: 'client' },
        { op: 'close', pair: 1, end: 'server' },
      ],
    };
    expect(accelerationOf(c, PAIR)).toEqual({ accelerated: true, reason: 'admitted' });
    expect(accelerationOf(c, second)).toEqual({ accelerated: false, reason: 'return-port' });
    // Both maps empty after every close whatever the filter says then; while open, only pair 0's entries.
    const o = expectedAccel(c);
    expect(o.proxyEntries).toEqual([]);
    expect(o.whileOpen.proxyEntries).toHaveLength(2);
    expect(o.pairs.map((p) => p.toServer.viaTcp)).toEqual([0, 3]);
  });
});

describe('acceleration generators', () => {
  it('twins share a four-tuple in the other namespace; client ports are unique per namespace', () => {
    const shape = { family: 'inet' as const, client: 0, server: 0, port: 0, outside: 'none' as const, netns: 0 as const };
    const pairs = pairsOf([
      { ...shape, twin: 'same' },
      { ...shape, twin: 'none' },
      { ...shape, twin: 'client-outside' },
    ]);
    expect(pairs).toHaveLength(5);
    expect(pairs[4]).toEqual({ ...pairs[3], netns: 1, outside: 'client' });
    expect({ ...pairs[1], netns: 0 }).toEqual(pairs[0]);
    expect(pairs[1]!.netns).toBe(1);
    expect(pairs[2]!.clientPort).not.toBe(pairs[0]!.clientPort);
  });
  it("interleave keeps each pair's own order", () => {
    const ops = interleave(
      [
        [
          { op: 'connect', pair: 0 },
          { op: 'close', pair: 0, end: 'client' },
        ],
        [{ op: 'connect', pair: 1 }],
      ],
      [1, 0, 0],
    );
    expect(ops.map((o) => `${o.op}${o.pair}`)).toEqual(['connect1', 'connect0', 'close0']);
  });
  it('generated cases are well formed: connect first, sends with both ends open, each end closed once', () => {
    fc.assert(
      fc.property(accelCaseArb(), (c) => {
        c.pairs.forEach((_, i) => {
          const mine = c.ops.filter((o) => o.op !== 'refilter' && o.pair === i);
          expect(mine[0]?.op).toBe('connect');
          const closes = mine.filter((o) => o.op === 'close');
          expect(closes.map((o) => (o.op === 'close' ? o.end : '')).sort()).toEqual(['client', 'server']);
          expect(mine.slice(-2).every((o) => o.op === 'close')).toBe(true);
        });
        const tuples = c.pairs.map((p) => `${p.netns}/${p.family}/${p.clientAddr}/${p.clientPort}`);
        expect(new Set(tuples).size).toBe(tuples.length);
      }),
      { seed: 15, numRuns: 300 },
    );
  });
  it('generation reaches every reason and the isolation shape', () => {
    const reasons = new Set<string>();
    const families = new Set<string>();
    let twins = 0;
    fc.assert(
      fc.property(accelCaseArb(), (c) => {
        for (const p of c.pairs) reasons.add(accelerationOf(c, p).reason);
        for (const p of c.pairs) families.add(p.family);
        const v4 = c.pairs.filter((p) => p.family === 'inet');
        if (v4.some((a) => v4.some((b) => a.netns !== b.netns && a.clientAddr === b.clientAddr && a.clientPort === b.clientPort && a.serverAddr === b.serverAddr && a.serverPort === b.serverPort)))
          twins++;
      }),
      { seed: 15, numRuns: 500 },
    );
    expect([...reasons].sort()).toEqual(['accept-cidr', 'accept-port', 'admitted', 'client-outside', 'not-ipv4', 'return-cidr', 'return-port', 'server-outside']);
    expect(twins).toBeGreaterThan(50);
    expect([...families].sort()).toEqual(['inet', 'inet6', 'mapped']);
  });
});

describe('acceleration invariants', () => {
  const base: AccelCase = {
    filter: EMPTY_FILTER,
    pairs: [PAIR, { ...PAIR, netns: 1 }],
    ops: [
      { op: 'connect', pair: 0 },
      { op: 'connect', pair: 1 },
      { op: 'send', pair: 0, from: 'client', size: 5 },
      { op: 'send', pair: 1, from: 'server', size: 3 },
      { op: 'close', pair: 0, end: 'server' },
      { op: 'close', pair: 0, end: 'client' },
      { op: 'close', pair: 1, end: 'client' },
      { op: 'close', pair: 1, end: 'server' },
    ],
  };
  const status = (o: AccelObservation, c = base) => Object.fromEntries(judgeAccel(c, o).map((j) => [j.name, j.verdict.status]));

  it('the model observation satisfies every invariant on generated cases', () => {
    fc.assert(
      fc.property(accelCaseArb(), (c) => {
        for (const j of judgeAccel(c, expectedAccel(c))) expect(j.verdict.status, `${j.name}`).not.toBe('violated');
      }),
      { seed: 15, numRuns: 300 },
    );
    expect(status(expectedAccel(base))).toEqual({ 'redirect-transparent': 'holds', 'redirect-isolation': 'holds', 'redirect-filter': 'holds', 'redirect-keys': 'holds', 'redirect-cleanup': 'holds' });
    // Both pairs open before the first close: each end under its own key in its namespace, both directions proxied.
    const open = expectedAccel(base).whileOpen;
    expect(open.sockOpsKeys).toHaveLength(4);
    expect(open.proxyEntries).toHaveLength(4);
    expect(new Set(open.sockOpsKeys.map((k) => k.netns))).toEqual(new Set([0, 1]));
  });

  it('each invariant rejects an observation that breaks its rule', () => {
    const ok = expectedAccel(base);
    const p0 = ok.pairs[0]!;
    const swapped: AccelObservation = { ...ok, pairs: [{ ...p0, toServer: { ...p0.toServer, received: p0.toServer.received.slice(2) } }, ok.pairs[1]!] };
    expect(status(swapped)['redirect-transparent']).toBe('violated');
    // A refused send fails it even where the receiver's bytes look right (read later, say), and says which send.
    const refused = judgeAccel(base, { ...ok, refused: [{ pair: 0, from: 'server', size: 50, error: 'EACCES' }] }).find((j) => j.name === 'redirect-transparent')!.verdict;
    expect(refused).toMatchObject({ status: 'violated', detail: expect.stringContaining("pair 0: the server's send of 50 bytes failed (EACCES)") });
    expect(status({ ...ok, stray: [{ pair: 1, end: 'server', bytes: '00' }] })['redirect-isolation']).toBe('violated');
    const viaTcp: AccelObservation = { ...ok, pairs: [{ ...p0, toServer: { ...p0.toServer, viaTcp: 5 } }, ok.pairs[1]!] };
    expect(status(viaTcp)['redirect-filter']).toBe('violated');
    const rejected: AccelCase = { ...base, filter: f({ returnPorts: [{ begin: 8080, end: 8080 }] }) };
    expect(status(expectedAccel(base), rejected)['redirect-filter']).toBe('violated');
    const key = { local: '127.0.0.3', localPort: 8080, remote: '127.0.0.2', remotePort: 40000, netns: 0 as const, cookie: '1' };
    expect(status({ ...ok, proxyEntries: [{ key, peer: key }] })['redirect-cleanup']).toBe('violated');
    expect(status({ ...ok, sockOpsKeys: [key] })['redirect-cleanup']).toBe('violated');
    // While open: a key in another layout (ports in host order), a cookie of no namespace of the
    // case, or a proxy entry naming its own end instead of the other.
    const [own] = ok.whileOpen.sockOpsKeys;
    const swap = (p: number) => ((p & 0xff) << 8) | (p >> 8);
    const keys = (k: typeof own) => status({ ...ok, whileOpen: { ...ok.whileOpen, sockOpsKeys: [k!] } })['redirect-keys'];
    expect(keys(own)).toBe('holds');
    expect(keys({ ...own!, localPort: swap(own!.localPort), remotePort: swap(own!.remotePort) })).toBe('violated');
    expect(keys({ ...own!, netns: null, cookie: '0' })).toBe('violated');
    // Said so: a cookie no namespace of the case has is not read as the case's namespace 0.
    const foreign = judgeAccel(base, { ...ok, whileOpen: { ...ok.whileOpen, sockOpsKeys: [{ ...own!, netns: null, cookie: '0' }] } }).find((j) => j.name === 'redirect-keys')!.verdict;
    expect(foreign).toMatchObject({ detail: expect.stringContaining('with netns cookie 0 (no namespace of the case has it)') });
    const [entry] = ok.whileOpen.proxyEntries;
    const wrongPeer = judgeAccel(base, { ...ok, whileOpen: { ...ok.whileOpen, proxyEntries: [{ key: entry!.key, peer: entry!.key }] } }).find((j) => j.name === 'redirect-keys')!.verdict;
    expect(wrongPeer).toMatchObject({ status: 'violated', detail: expect.stringContaining('not to the other end') });
    // Which sockets are there is not judged: a listener's key, and the key of an AF_INET6 end
    // (whose IPv4 fields hold whatever they hold) by its ports and namespace, are keys of the case.
    expect(keys({ ...own!, local: PAIR.serverAddr, localPort: PAIR.serverPort, remote: '0.0.0.0', remotePort: 0 })).toBe('holds');
    const v6: AccelCase = { ...base, pairs: [...base.pairs, { ...PAIR, family: 'inet6', clientPort: 40005 }] };
    const v6Key = { local: '127.0.0.6', localPort: 40005, remote: '127.0.0.6', remotePort: PAIR.serverPort, netns: 0 as const, cookie: '' };
    expect(status({ ...ok, whileOpen: { ...ok.whileOpen, sockOpsKeys: [v6Key] } }, v6)['redirect-keys']).toBe('holds');
    expect(status({ ...ok, whileOpen: { ...ok.whileOpen, sockOpsKeys: [{ ...v6Key, localPort: 40006 }] } }, v6)['redirect-keys']).toBe('violated');
    // Nothing in the maps while open checks nothing.
    expect(status({ ...ok, whileOpen: { sockOpsKeys: [], proxyEntries: [] } })['redirect-keys']).toBe('vacuous');
  });

  it("a violation's shape names the rule it broke, not the case's numbers nor its pair's other traits", () => {
    const ok = expectedAccel(base);
    const shape = (o: AccelObservation, name: string, c = base) => {
      const v = judgeAccel(c, o).find((j) => j.name === name)!.verdict;
      return v.status === 'violated' ? v.shape : undefined;
    };
    // Two bugs of the filter's invariant differ in their shape: a connection the return ports
    // reject, and a v4-mapped one, each redirected.
    const rejected: AccelCase = { ...base, filter: f({ returnPorts: [{ begin: 8080, end: 8080 }] }) };
    expect(shape(expectedAccel(base), 'redirect-filter', rejected)).toBe('rejected by the filter: redirected');
    const mapped: AccelCase = { ...base, pairs: [{ ...PAIR, family: 'mapped' }, base.pairs[1]!] };
    const mappedSent = expectedAccel(mapped);
    const bypassed = { ...mappedSent, pairs: [{ toServer: { ...mappedSent.pairs[0]!.toServer, viaTcp: 0 }, toClient: mappedSent.pairs[0]!.toClient }, mappedSent.pairs[1]!] };
    expect(shape(bypassed, 'redirect-filter', mapped)).toBe('v4-mapped pair: redirected');
    // A key names whose it is nearest to and the fields that differ: two layouts, two shapes.
    const [own] = ok.whileOpen.sockOpsKeys;
    const swap = (p: number) => ((p & 0xff) << 8) | (p >> 8);
    const withKey = (k: NonNullable<typeof own>, o = ok) => ({ ...o, whileOpen: { ...o.whileOpen, sockOpsKeys: [k] } });
    expect(shape(withKey({ ...own!, netns: null, cookie: '0' }), 'redirect-keys')).toBe("sock_ops_map holds a client's key but for its namespace");
    const swapped = { ...own!, localPort: swap(own!.localPort), remotePort: swap(own!.remotePort) };
    expect(shape(withKey(swapped), 'redirect-keys')).toBe("sock_ops_map holds a client's key but for its local port and remote port");
    // The same key has the same shape whatever other pairs the case has, in whatever order.
    const v6: AccelPair = { ...PAIR, family: 'inet6', clientPort: 40005 };
    const v6First: AccelCase = { ...base, pairs: [v6, PAIR], ops: base.ops.map((op) => (op.op === 'refilter' ? op : { ...op, pair: 1 - op.pair })) };
    const v6Last: AccelCase = { ...base, pairs: [PAIR, v6] };
    for (const c of [v6First, v6Last]) expect(shape(withKey(swapped, expectedAccel(c)), 'redirect-keys', c)).toBe("sock_ops_map holds a client's key but for its local port and remote port");
    // A key left after the closes: how its connection closed.
    const aborted: AccelCase = { ...base, ops: base.ops.map((op, i) => (i === 4 ? { op: 'close', pair: 0, end: 'server', abort: true } : op)) };
    const key = { local: '127.0.0.3', localPort: 8080, remote: '127.0.0.2', remotePort: 40000, netns: 0 as const, cookie: '' };
    expect(shape({ ...ok, proxyEntries: [{ key, peer: key }] }, 'redirect-cleanup', aborted)).toBe('sock_proxy_map keeps a key after a reset');
    expect(shape({ ...ok, sockOpsKeys: [key] }, 'redirect-cleanup')).toBe('sock_ops_map keeps a key after FINs');
  });

  it('every invariant has a name and a one-sentence statement', () => {
    expect(accelInvariants.map((i) => i.name)).toEqual(['redirect-transparent', 'redirect-isolation', 'redirect-filter', 'redirect-keys', 'redirect-cleanup']);
    for (const i of accelInvariants) expect(i.statement).toMatch(/^[A-Z].*\.$/);
  });
});

describe('acceleration generators: listeners', () => {
  it('in one namespace, one address and port is either inside or outside the cgroup, never both', () => {
    fc.assert(
      fc.property(accelCaseArb(), (c) => {
        const seen = new Map<string, boolean>();
        for (const p of c.pairs) {
          const k = `${p.netns}/${p.family}/${p.serverAddr}/${p.serverPort}`;
          const out = p.outside === 'server';
          expect(seen.get(k) ?? out).toBe(out);
          seen.set(k, out);
        }
      }),
      { seed: 16, numRuns: 1000 },
    );
  });
});

describe('acceleration docs', () => {
  it('the generated spec has the section, every invariant with its statement, and the readings', () => {
    const spec = renderSpec();
    const section = spec.slice(spec.indexOf(`## ${ACCEL_SECTION}`));
    expect(section.length).toBeGreaterThan(100);
    for (const inv of accelInvariants) expect(section).toContain(`### ${inv.name}\n\n> ${inv.statement}`);
    for (const id of ['A1', 'A2', 'A3', 'A4', 'A5']) expect(section).toContain(`- ${id}. `);
  });
  it('the docs example exercises every invariant on the model', () => {
    for (const j of judgeAccel(ACCEL_EXAMPLE, expectedAccel(ACCEL_EXAMPLE))) expect(j.verdict.status, j.name).toBe('holds');
  });
});
