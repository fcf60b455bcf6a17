// The data path in the kernel, through the kernel executor, against expectations written by hand
// from kmesh-dataplane.md (sections 3 and 4) and docs/interpretation.md. Every scenario runs for
// AF_INET sockets, AF_INET6 sockets with IPv6 addresses, and AF_INET6 sockets given v4-mapped
// destinations. All cases go to one worker in one batch; each `it` checks its own rows.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KernelExecutor } from '../bpf/kernel/executor.js';
import { canonicalIpAddr } from '../model/address.js';
import type { Case, Family, MapState, Observation, SockAddr, StorageView } from '../model/domain.js';
import { payloadFor } from '../model/domain.js';
import { be, connectCase, ep, fe, startKernel, state, svc } from './helpers/kernel.js';

interface Flavour {
  readonly name: string;
  readonly family: Family;
  /** A map address from a short tag 'a.b.c': 10.a.b.c, or fd00::a:b:c. */
  readonly a: (tag: string) => string;
  /** How a socket of this flavour writes a map address. */
  readonly sock: (addr: string) => string;
}

const V4: Flavour = { name: 'IPv4', family: 'inet', a: (t) => `10.${t}`, sock: (a) => a };
const V6: Flavour = { name: 'IPv6', family: 'inet6', a: (t) => canonicalIpAddr(`fd00::${t.replace(/\./g, ':')}`), sock: (a) => a };
const MAPPED: Flavour = { name: 'v4-mapped', family: 'inet6', a: V4.a, sock: (a) => `::ffff:${a}` };
const FLAVOURS = [V4, V6, MAPPED];

const WP_PORT = 15008;
const sa = (addr: string, port: number): SockAddr => ({ addr, port });
const NONE: StorageView = { viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null };
const recorded = (original: SockAddr, viaWaypoint = false): StorageView => ({ viaWaypoint, hasSetIp: true, hasEncoded: false, original });

interface Expect {
  peer: SockAddr | null;
  storage: StorageView | null;
  inSockhash: boolean;
}

interface Row {
  readonly name: string;
  readonly cases: Case[];
  readonly check: (obs: Observation[][]) => void;
}

/** A single connect whose observation must be exactly `e`. */
function single(name: string, c: Case, e: Expect): Row {
  return {
    name,
    cases: [c],
    check: ([o]) => {
      const conn = o!.find((x) => x.op === 'connect')!;
      expect({ peer: conn.peer, storage: conn.storage, inSockhash: conn.inSockhash }).toEqual(e);
      if (e.peer) expect(conn.error).toBeNull();
    },
  };
}

/** The common service: VIP 1.0.1, port 80 -> 8080, one prio-0 endpoint, backend 2.0.1. */
function basic(f: Flavour, extra: Partial<MapState> = {}): MapState {
  return state({
    frontends: [fe(f.a('1.0.1'), 1), ...(extra.frontends ?? [])],
    services: [svc(1), ...(extra.services ?? [])],
    endpoints: [ep(1, 0, 1, 21), ...(extra.endpoints ?? [])],
    backends: [be(21, f.a('2.0.1'), [1]), ...(extra.backends ?? [])],
  });
}

function rowsFor(f: Flavour): Row[] {
  const vip = sa(f.sock(f.a('1.0.1')), 80);
  const fam = f.family;
  const rows: Row[] = [];

  rows.push(single('not enrolled: no rewrite, no storage', connectCase(basic(f), fam, vip, { enrolled: false }), { peer: vip, storage: null, inSockhash: false }));
  rows.push(single('enrolled: VIP rewritten to the backend, original recorded', connectCase(basic(f), fam, vip), { peer: sa(f.sock(f.a('2.0.1')), 8080), storage: recorded(vip), inSockhash: false }));
  rows.push(single('UDP to a port other than 53: untouched, no storage', connectCase(basic(f), fam, vip, { protocol: 'udp' }), { peer: vip, storage: null, inSockhash: false }));
  rows.push(single('frontend miss: no rewrite, storage without original', connectCase(basic(f), fam, sa(f.sock(f.a('99.0.1')), 80)), { peer: sa(f.sock(f.a('99.0.1')), 80), storage: NONE, inSockhash: false }));

  // Direct pod access: the frontend's upstream id is a backend uid, not a service id.
  const pod = f.a('3.0.7');
  rows.push(
    single('direct backend without waypoint: kept, original recorded', connectCase(state({ frontends: [fe(pod, 7)], backends: [be(7, pod)] }), fam, sa(f.sock(pod), 9090)), {
      peer: sa(f.sock(pod), 9090),
      storage: recorded(sa(f.sock(pod), 9090)),
      inSockhash: false,
    }),
  );
  rows.push(
    single(
      'direct backend with waypoint: to the waypoint, in the sockhash',
      connectCase(state({ frontends: [fe(pod, 7)], backends: [be(7, pod, [], { addr: f.a('9.0.2'), port: WP_PORT })] }), fam, sa(f.sock(pod), 9090)),
      { peer: sa(f.sock(f.a('9.0.2')), WP_PORT), storage: recorded(sa(f.sock(pod), 9090), true), inSockhash: true },
    ),
  );
  rows.push(single('direct backend missing: no rewrite', connectCase(state({ frontends: [fe(pod, 7)] }), fam, sa(f.sock(pod), 9090)), { peer: sa(f.sock(pod), 9090), storage: NONE, inSockhash: false }));

  const wpState = state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1, { waypoint: { addr: f.a('9.0.1'), port: WP_PORT } })], endpoints: [ep(1, 0, 1, 21)], backends: [be(21, f.a('2.0.1'), [1])] });
  rows.push(single('service waypoint: to the waypoint, in the sockhash', connectCase(wpState, fam, vip), { peer: sa(f.sock(f.a('9.0.1')), WP_PORT), storage: recorded(vip, true), inSockhash: true }));

  // Load balancing.
  rows.push(
    single(
      'random with count[0] = 0: kept, original recorded (prio 1 is never used)',
      connectCase(state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1, { counts: [0, 1] })], endpoints: [ep(1, 1, 1, 21)], backends: [be(21, f.a('2.0.1'), [1])] }), fam, vip),
      { peer: vip, storage: recorded(vip), inSockhash: false },
    ),
  );
  const three = state({
    frontends: [fe(f.a('1.0.1'), 1)],
    services: [svc(1, { counts: [3] })],
    endpoints: [ep(1, 0, 1, 11), ep(1, 0, 2, 12), ep(1, 0, 3, 13)],
    backends: [be(11, f.a('2.0.11'), [1]), be(12, f.a('2.0.12'), [1]), be(13, f.a('2.0.13'), [1])],
  });
  rows.push({
    name: 'random with count[0] = 3: every connect reaches one of the three, more than one is used',
    cases: Array.from({ length: 12 }, () => connectCase(three, fam, vip)),
    check: (obs) => {
      const allowed = ['2.0.11', '2.0.12', '2.0.13'].map((t) => JSON.stringify(sa(f.sock(f.a(t)), 8080)));
      const seen = new Set<string>();
      for (const o of obs) {
        const c = o.find((x) => x.op === 'connect')!;
        expect(allowed).toContain(JSON.stringify(c.peer));
        expect(c.storage).toEqual(recorded(vip));
        seen.add(JSON.stringify(c.peer));
      }
      expect(seen.size).toBeGreaterThan(1);
    },
  });
  rows.push(
    single(
      'strict with a prio-0 endpoint: that endpoint',
      connectCase(state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1, { policy: 1, counts: [1, 1] })], endpoints: [ep(1, 0, 1, 21), ep(1, 1, 1, 22)], backends: [be(21, f.a('2.0.1'), [1]), be(22, f.a('2.0.2'), [1])] }), fam, vip),
      { peer: sa(f.sock(f.a('2.0.1')), 8080), storage: recorded(vip), inSockhash: false },
    ),
  );
  rows.push(
    single(
      'strict without prio-0 endpoints: no rewrite, nothing recorded (never prio 1)',
      connectCase(state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1, { policy: 1, counts: [0, 1] })], endpoints: [ep(1, 1, 1, 22)], backends: [be(22, f.a('2.0.2'), [1])] }), fam, vip),
      { peer: vip, storage: NONE, inSockhash: false },
    ),
  );
  rows.push(
    single(
      'failover: the first non-empty group (prio 2) is the only one chosen from',
      connectCase(
        state({
          frontends: [fe(f.a('1.0.1'), 1)],
          services: [svc(1, { policy: 2, counts: [0, 0, 1, 1] })],
          endpoints: [ep(1, 2, 1, 23), ep(1, 3, 1, 24)],
          backends: [be(23, f.a('2.0.3'), [1]), be(24, f.a('2.0.4'), [1])],
        }),
        fam,
        vip,
      ),
      { peer: sa(f.sock(f.a('2.0.3')), 8080), storage: recorded(vip), inSockhash: false },
    ),
  );
  rows.push(
    single('unknown lb_policy: no rewrite', connectCase(state({ ...basic(f), services: [svc(1, { policy: 7 })] }), fam, vip), { peer: vip, storage: NONE, inSockhash: false }),
  );
  rows.push(
    single(
      'missing endpoint index (count 1, only index 2 exists): no rewrite',
      connectCase(state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1)], endpoints: [ep(1, 0, 2, 21)], backends: [be(21, f.a('2.0.1'), [1])] }), fam, vip),
      { peer: vip, storage: NONE, inSockhash: false },
    ),
  );
  rows.push(
    single('missing backend: no rewrite', connectCase(state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1)], endpoints: [ep(1, 0, 1, 99)] }), fam, vip), { peer: vip, storage: NONE, inSockhash: false }),
  );
  rows.push(
    single('no port slot matches (81): no rewrite', connectCase(basic(f), fam, sa(vip.addr, 81)), { peer: sa(vip.addr, 81), storage: NONE, inSockhash: false }),
  );
  rows.push(
    single(
      'second matching port slot: its target port',
      connectCase(state({ ...basic(f), services: [svc(1, { ports: [[80, 8080], [443, 8443]] })] }), fam, sa(vip.addr, 443)),
      { peer: sa(f.sock(f.a('2.0.1')), 8443), storage: recorded(sa(vip.addr, 443)), inSockhash: false },
    ),
  );

  // Waypoint chains.
  rows.push(
    single(
      'waypoint that is itself a frontend: the chain re-enters and ends at the waypoint pod',
      connectCase(
        state({
          frontends: [fe(f.a('1.0.1'), 1), fe(f.a('9.0.1'), 9)],
          services: [svc(1, { waypoint: { addr: f.a('9.0.1'), port: WP_PORT } }), svc(9, { ports: [[WP_PORT, 15009]] })],
          endpoints: [ep(1, 0, 1, 21), ep(9, 0, 1, 90)],
          backends: [be(21, f.a('2.0.1'), [1]), be(90, f.a('9.1.90'), [9])],
        }),
        fam,
        vip,
      ),
      { peer: sa(f.sock(f.a('9.1.90')), 15009), storage: recorded(vip, true), inSockhash: true },
    ),
  );
  // S1 -> waypoint (V2, 15001), S2 -> waypoint (V1, 15002): odd passes end at V2:15001, even at
  // V1:15002. 33 tail calls make 34 passes, and the 34th pass's rewrite stays.
  rows.push(
    single(
      'waypoint cycle: ends after the tail-call limit, on the 34th pass (V1:15002)',
      connectCase(
        state({
          frontends: [fe(f.a('1.0.1'), 1), fe(f.a('1.0.2'), 2)],
          services: [svc(1, { waypoint: { addr: f.a('1.0.2'), port: 15001 } }), svc(2, { waypoint: { addr: f.a('1.0.1'), port: 15002 } })],
        }),
        fam,
        vip,
      ),
      { peer: sa(f.sock(f.a('1.0.1')), 15002), storage: recorded(vip, true), inSockhash: true },
    ),
  );

  // A second connect on a connected socket: the program runs, the kernel says EISCONN, and the
  // original destination stays the first one.
  const two = basic(f, { frontends: [fe(f.a('1.0.2'), 2)], services: [svc(2)], endpoints: [ep(2, 0, 1, 22)], backends: [be(22, f.a('2.0.2'), [2])] });
  const vip2 = sa(f.sock(f.a('1.0.2')), 80);
  rows.push({
    name: 'second connect of one socket: EISCONN, original destination not overwritten',
    cases: [connectCase(two, fam, vip, { extra: [{ op: 'connect', sock: 0, dest: vip2 }] })],
    check: ([o]) => {
      const [first, second] = o!.filter((x) => x.op === 'connect');
      expect(first!.peer).toEqual(sa(f.sock(f.a('2.0.1')), 8080));
      expect(second!.error).toBe('EISCONN');
      expect(second!.peer).toBeNull();
      expect(second!.storage).toEqual(recorded(vip));
    },
  });

  // The stream a waypoint receives: one prefix, at the start, on the first message only.
  const form: Family = f.family;
  rows.push({
    name: `TLV (${form === 'inet' ? '16' : '28'}-byte form) on the first of three sends only`,
    cases: [connectCase(wpState, fam, vip, { sends: 3 })],
    check: ([o]) => {
      const sends = o!.filter((x) => x.op === 'send');
      expect(sends).toHaveLength(3);
      const prefix = form === 'inet' ? 16 : 28;
      let payload = '';
      sends.forEach((s, i) => {
        payload += Buffer.from(payloadFor(0, i)).toString('hex');
        expect(s.stream).toEqual({ tlv: { form, original: vip }, payloadIntact: true, hex: s.stream!.hex });
        expect(s.stream!.hex.length / 2).toBe(prefix + payload.length / 2);
        expect(s.stream!.hex.slice(prefix * 2)).toBe(payload);
        expect(s.storage).toEqual({ ...recorded(vip, true), hasEncoded: true });
      });
      const tlvHex = sends[0]!.stream!.hex.slice(0, prefix * 2);
      if (f === V4) expect(tlvHex).toBe('01' + '00000006' + '0a010001' + '0050' + 'fe00000000');
      if (f === MAPPED) expect(tlvHex).toBe('01' + '00000012' + '00000000000000000000ffff0a010001' + '0050' + 'fe00000000');
      if (f === V6) expect(tlvHex).toBe('01' + '00000012' + 'fd00' + '0000000000000000' + '0001' + '0000' + '0001' + '0050' + 'fe00000000');
    },
  });
  rows.push({
    name: 'no TLV for a socket that is not waypoint-bound',
    cases: [connectCase(basic(f), fam, vip, { sends: 2 })],
    check: ([o]) => {
      const sends = o!.filter((x) => x.op === 'send');
      const payload = Buffer.concat([payloadFor(0, 0), payloadFor(0, 1)]).toString('hex');
      expect(sends[1]!.stream).toEqual({ tlv: null, payloadIntact: true, hex: payload });
      expect(sends[1]!.storage).toEqual(recorded(vip));
    },
  });
  rows.push({
    name: 'waypoint-bound but not enrolled: nothing happens at all',
    cases: [connectCase(wpState, fam, vip, { sends: 1, enrolled: false })],
    check: ([o]) => {
      const conn = o!.find((x) => x.op === 'connect')!;
      expect(conn.peer).toEqual(vip);
      expect(conn.inSockhash).toBe(false);
      expect(o!.find((x) => x.op === 'send')!.stream!.tlv).toBeNull();
    },
  });
  return rows;
}

/** Rows that depend on the address family (DNS is connect4 only; cross-family targets). */
function familyRows(): Array<{ flavour: Flavour; row: Row }> {
  const out: Array<{ flavour: Flavour; row: Row }> = [];
  const proxy = be(0, '10.53.0.53');
  const dnsDest4 = sa('10.77.0.1', 53);
  for (const protocol of ['tcp', 'udp'] as const) {
    out.push({
      flavour: V4,
      row: single(`DNS over ${protocol} with a proxy: only the IP is replaced, original recorded`, connectCase(state({ backends: [proxy] }), 'inet', dnsDest4, { protocol }), {
        peer: sa('10.53.0.53', 53),
        storage: recorded(dnsDest4),
        inSockhash: false,
      }),
    });
  }
  out.push({ flavour: V4, row: single('DNS over tcp without a proxy: goes on (frontend miss)', connectCase(state({}), 'inet', dnsDest4), { peer: dnsDest4, storage: NONE, inSockhash: false }) });
  out.push({ flavour: V4, row: single('DNS over udp without a proxy: untouched', connectCase(state({}), 'inet', dnsDest4, { protocol: 'udp' }), { peer: dnsDest4, storage: null, inSockhash: false }) });
  const mappedDns = sa('::ffff:10.77.0.1', 53);
  out.push({ flavour: MAPPED, row: single('DNS is connect4 only: a v4-mapped TCP connect to :53 is not proxied', connectCase(state({ backends: [proxy] }), 'inet6', mappedDns), { peer: mappedDns, storage: NONE, inSockhash: false }) });
  const v6Dns = sa('fd00::77:0:1', 53);
  out.push({ flavour: V6, row: single('DNS is connect4 only: an IPv6 UDP connect to :53 is untouched', connectCase(state({ backends: [proxy] }), 'inet6', v6Dns, { protocol: 'udp' }), { peer: v6Dns, storage: null, inSockhash: false }) });

  // IPv6 waypoint address.
  const v6wp = (f: Flavour) => state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1, { waypoint: { addr: 'fd00::9:0:6', port: WP_PORT } })] });
  out.push({ flavour: V4, row: single('IPv6 waypoint for an AF_INET socket: not writable, no rewrite, nothing recorded', connectCase(v6wp(V4), 'inet', sa('10.1.0.1', 80)), { peer: sa('10.1.0.1', 80), storage: NONE, inSockhash: false }) });
  out.push({ flavour: V6, row: single('IPv6 waypoint for an AF_INET6 socket', connectCase(v6wp(V6), 'inet6', sa('fd00::1:0:1', 80)), { peer: sa('fd00::9:0:6', WP_PORT), storage: recorded(sa('fd00::1:0:1', 80), true), inSockhash: true }) });
  out.push({ flavour: MAPPED, row: single('IPv6 waypoint for a v4-mapped destination: taken as it is', connectCase(v6wp(MAPPED), 'inet6', sa('::ffff:10.1.0.1', 80)), { peer: sa('fd00::9:0:6', WP_PORT), storage: recorded(sa('::ffff:10.1.0.1', 80), true), inSockhash: true }) });

  // Backends of the other family.
  const v6Backend = state({ frontends: [fe('10.1.0.1', 1)], services: [svc(1)], endpoints: [ep(1, 0, 1, 21)], backends: [be(21, 'fd00::2:0:9', [1])] });
  out.push({ flavour: V4, row: single('IPv6 backend for an AF_INET socket: no rewrite, nothing recorded', connectCase(v6Backend, 'inet', sa('10.1.0.1', 80)), { peer: sa('10.1.0.1', 80), storage: NONE, inSockhash: false }) });
  out.push({ flavour: MAPPED, row: single('IPv6 backend for a v4-mapped destination: taken as it is', connectCase(v6Backend, 'inet6', sa('::ffff:10.1.0.1', 80)), { peer: sa('fd00::2:0:9', 8080), storage: recorded(sa('::ffff:10.1.0.1', 80)), inSockhash: false }) });
  const v4Backend = state({ frontends: [fe('fd00::1:0:1', 1)], services: [svc(1)], endpoints: [ep(1, 0, 1, 21)], backends: [be(21, '10.2.0.9', [1])] });
  out.push({ flavour: V6, row: single('IPv4 backend for an AF_INET6 socket: written as ::ffff:a.b.c.d', connectCase(v4Backend, 'inet6', sa('fd00::1:0:1', 80)), { peer: sa('::ffff:10.2.0.9', 8080), storage: recorded(sa('fd00::1:0:1', 80)), inSockhash: false }) });
  return out;
}

const table: Array<{ flavour: Flavour; row: Row }> = [...FLAVOURS.flatMap((f) => rowsFor(f).map((row) => ({ flavour: f, row }))), ...familyRows()];

let ex: KernelExecutor;
const results = new Map<Row, Observation[][]>();

beforeAll(async () => {
  ex = await startKernel();
  const all = table.flatMap((t) => t.row.cases);
  const obs = await ex.run(all);
  let i = 0;
  for (const t of table) {
    results.set(t.row, obs.slice(i, i + t.row.cases.length));
    i += t.row.cases.length;
  }
});

afterAll(async () => {
  await ex?.close();
});

for (const f of FLAVOURS) {
  describe(`kernel data path, ${f.name} sockets`, () => {
    for (const t of table.filter((x) => x.flavour === f)) {
      it(t.row.name, () => {
        const obs = results.get(t.row);
        expect(obs, 'the batch did not run').toBeDefined();
        t.row.check(obs!);
      });
    }
  });
}

describe('kernel executor plumbing', () => {
  it('publishes the environment it built', () => {
    expect(ex.environment.podAddress).toEqual({ inet: '10.255.0.1', inet6: 'fd00:ffff::1' });
  });

  it('enrols the real way: km_manage holds the netns cookie, both pod IPs and 127.0.0.1', async () => {
    await ex.run([connectCase(state({}), 'inet', sa('10.1.0.1', 80), { enrolled: true })]);
    const info = await ex.info();
    expect(info.enrolment).toBe(true);
    expect(info.manage).toContain('0aff0001' + '00'.repeat(12));
    expect(info.manage).toContain('fd00ffff' + '00'.repeat(11) + '01');
    expect(info.manage).toContain('7f000001' + '00'.repeat(12));
    expect(info.manage).toHaveLength(4);
    await ex.run([connectCase(state({}), 'inet', sa('10.1.0.1', 80), { enrolled: false })]);
    const after = await ex.info();
    expect(after.enrolment).toBe(false);
    expect(after.manage).toEqual([]);
  });

  it('a case that makes its own control connect is an ordinary connect, and enrolment is redone next case', async () => {
    const c: Case = {
      state: state({}),
      kind: 'consistent',
      enrolled: false,
      ops: [
        { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
        { op: 'connect', sock: 0, dest: sa('0.0.0.2', 929) },
        { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
        { op: 'connect', sock: 1, dest: sa('10.99.0.1', 80) },
      ],
    };
    const [o] = await ex.run([c]);
    expect(o![1]!.error).toBe('ECONNREFUSED');
    expect(o![1]!.storage).toBeNull();
    // Enrolled by the case's own control connect: the next TCP connect gets storage.
    expect(o![3]!.storage).toEqual(NONE);
    expect((await ex.info()).enrolment).toBe('unknown');
    const [n] = await ex.run([connectCase(state({}), 'inet', sa('10.99.0.1', 80), { enrolled: false })]);
    expect(n![1]!.storage).toBeNull();
  });

  it('test-run: ENOTSUPP from the syscall, then a real connect reports the peer', async () => {
    await ex.run([connectCase(basic(V4), 'inet', sa('10.1.0.1', 80), { enrolled: true })]);
    const r = await ex.testRun('cgroup_connect4_prog', { family: 'inet', protocol: 'tcp', dest: sa('10.1.0.1', 80) });
    expect(r).toEqual({ retval: 1, via: 'socket', ctxOut: { peer: sa('10.2.0.1', 8080), error: null } });
    const r6 = await ex.testRun('cgroup_connect6_prog', { family: 'inet6', protocol: 'tcp', dest: sa('::ffff:10.1.0.1', 80) });
    expect(r6.ctxOut.peer).toEqual(sa('::ffff:10.2.0.1', 8080));
    await expect(ex.testRun('sockops_prog', { family: 'inet', protocol: 'tcp', dest: sa('10.1.0.1', 80) })).rejects.toThrow(/cannot run standalone/);
  });

  it('connects to closed ports and unrouted addresses fail with the errno name', async () => {
    const [o] = await ex.run([
      {
        state: state({}),
        kind: 'raw',
        enrolled: false,
        ops: [
          { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
          { op: 'connect', sock: 0, dest: sa('10.1.0.1', 930) },
          { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
          { op: 'connect', sock: 1, dest: sa('11.0.0.1', 80) },
        ],
      },
    ]);
    expect(o![1]).toMatchObject({ peer: null, error: 'ECONNREFUSED' });
    expect(o![3]).toMatchObject({ peer: null, error: 'ENETUNREACH' });
  });

  it('apply inside a case changes the maps for the next connect', async () => {
    const before = basic(V4);
    const after = basic(V4, {});
    const moved: MapState = { ...after, backends: [be(21, '10.2.0.77', [1])] };
    const [o] = await ex.run([
      {
        state: before,
        kind: 'consistent',
        enrolled: true,
        ops: [
          { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
          { op: 'connect', sock: 0, dest: sa('10.1.0.1', 80) },
          { op: 'apply', state: moved },
          { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
          { op: 'connect', sock: 1, dest: sa('10.1.0.1', 80) },
        ],
      },
    ]);
    expect(o![1]!.peer).toEqual(sa('10.2.0.1', 8080));
    expect(o![2]).toEqual({ op: 'apply', sock: null });
    expect(o![4]!.peer).toEqual(sa('10.2.0.77', 8080));
  });

  it('a waypoint chain ending at backend 0.0.0.0 (kernel: 127.0.0.1 -> 127.0.0.1) is still enrolled for sockops', async () => {
    const st = state({
      frontends: [fe('10.1.0.1', 1), fe('10.9.0.1', 9)],
      services: [svc(1, { waypoint: { addr: '10.9.0.1', port: WP_PORT } }), svc(9, { ports: [[WP_PORT, 15009]] })],
      endpoints: [ep(9, 0, 1, 90)],
      backends: [be(90, '0.0.0.0', [9])],
    });
    const [o] = await ex.run([connectCase(st, 'inet', sa('10.1.0.1', 80), { sends: 1 })]);
    expect(o![1]).toMatchObject({ peer: sa('127.0.0.1', 15009), storage: recorded(sa('10.1.0.1', 80), true), inSockhash: true });
    expect(o![2]!.stream!.tlv).toEqual({ form: 'inet', original: sa('10.1.0.1', 80) });
  });

  it('a malformed case is a one-line codec error naming the case, and the executor stays usable', async () => {
    const good = connectCase(basic(V4), 'inet', sa('10.1.0.1', 80));
    const orphan: Case = { state: state({}), kind: 'raw', enrolled: true, ops: [{ op: 'connect', sock: 3, dest: sa('10.1.0.1', 80) }] };
    await expect(ex.run([good, orphan])).rejects.toThrow(/^case 1: connect on socket 3, which no earlier 'socket' operation created$/);
    const badPort = { ...basic(V4), services: [svc(1, { ports: [[80, 70000]] })] };
    await expect(ex.run([connectCase(badPort, 'inet', sa('10.1.0.1', 80))])).rejects.toMatchObject({ code: 'codec', message: 'case 0: service 1 target_port[0] must be a port 0..65535, got 70000' });
    const [o] = await ex.run([good]);
    expect(o![1]!.peer).toEqual(sa('10.2.0.1', 8080));
  });
});
