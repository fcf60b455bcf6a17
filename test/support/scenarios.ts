// The one table of hand-written scenarios: the data path's routing against expectations written
// by hand from docs/spec.md and docs/interpretation.md, run against the reference model
// (test/unit/model-scenarios.test.ts), the VM (test/vm/scenarios.test.ts) and the kernel
// (test/kernel/scenarios.test.ts).
// Every scenario runs for AF_INET sockets, AF_INET6 sockets with IPv6 addresses, and AF_INET6
// sockets given v4-mapped destinations. All cases go to the executor in one batch; each `it`
// checks its own rows.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalIpAddr } from '../../model/address.js';
import type { Case, Family, MapState, Observation, Service, SockAddr, StorageView } from '../../model/domain.js';
import { payloadFor } from '../../model/domain.js';
import { be, connectCase, ep, fe, state, svc } from '../helpers/kernel.js';

interface Flavour {
  readonly name: string;
  readonly family: Family;
  /** A map address from a short tag 'a.b.c': 10.a.b.c, or fd00::a:b:c. */
  readonly a: (tag: string) => string;
  /** How a socket of this flavour writes a map address. */
  readonly sock: (addr: string) => string;
}

export const V4: Flavour = { name: 'IPv4', family: 'inet', a: (t) => `10.${t}`, sock: (a) => a };
const V6: Flavour = { name: 'IPv6', family: 'inet6', a: (t) => canonicalIpAddr(`fd00::${t.replace(/\./g, ':')}`), sock: (a) => a };
const MAPPED: Flavour = { name: 'v4-mapped', family: 'inet6', a: V4.a, sock: (a) => `::ffff:${a}` };
const FLAVOURS = [V4, V6, MAPPED];

export const WP_PORT = 15008;
export const sa = (addr: string, port: number): SockAddr => ({ addr, port });
export const NONE: StorageView = { viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null };
export const recorded = (original: SockAddr, viaWaypoint = false): StorageView => ({ viaWaypoint, hasSetIp: true, hasEncoded: false, original });

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
export function basic(f: Flavour, extra: Partial<MapState> = {}): MapState {
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
  // A control plane's km_manage entries enrol as control connects do, whatever their value.
  for (const [kind, value] of [
    ['consistent', 0],
    ['raw', 0xffffffff],
  ] as const) {
    rows.push(
      single(
        `enrolled by km_manage writes (value ${value}): VIP rewritten the same`,
        { ...connectCase(basic(f), fam, vip), kind, enrolmentWrite: value },
        { peer: sa(f.sock(f.a('2.0.1')), 8080), storage: recorded(vip), inSockhash: false },
      ),
    );
  }
  // One kind of key alone: connect4/6 read the netns cookie (section 3, step 2); sockops reads the
  // local IP (section 4), so a waypoint-bound socket of a namespace whose local IPs are not
  // written stays out of km_socket.
  const waypointed = state({ frontends: [fe(f.a('3.0.7'), 7)], backends: [be(7, f.a('3.0.7'), [], { addr: f.a('9.0.2'), port: WP_PORT })] });
  const wpPod = sa(f.sock(f.a('3.0.7')), 9090);
  rows.push(
    single(
      'netns cookie written alone: routed to the waypoint, not in the sockhash (no local IP enrolled)',
      { ...connectCase(waypointed, fam, wpPod), enrolmentWrite: 0, enrolmentKeys: 'cookie' },
      {
        peer: sa(f.sock(f.a('9.0.2')), WP_PORT),
        storage: recorded(wpPod, true),
        inSockhash: false,
      },
    ),
  );
  rows.push(
    single(
      'local IPs written alone: not enrolled, no rewrite, no storage',
      { ...connectCase(waypointed, fam, wpPod), enrolmentWrite: 0, enrolmentKeys: 'locals' },
      { peer: wpPod, storage: null, inSockhash: false },
    ),
  );
  rows.push(single('UDP to a port other than 53: untouched, no storage', connectCase(basic(f), fam, vip, { protocol: 'udp' }), { peer: vip, storage: null, inSockhash: false }));
  rows.push(
    single('frontend miss: no rewrite, storage without original', connectCase(basic(f), fam, sa(f.sock(f.a('99.0.1')), 80)), { peer: sa(f.sock(f.a('99.0.1')), 80), storage: NONE, inSockhash: false }),
  );

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
  rows.push(
    single('direct backend missing: no rewrite', connectCase(state({ frontends: [fe(pod, 7)] }), fam, sa(f.sock(pod), 9090)), { peer: sa(f.sock(pod), 9090), storage: NONE, inSockhash: false }),
  );

  const wpState = state({
    frontends: [fe(f.a('1.0.1'), 1)],
    services: [svc(1, { waypoint: { addr: f.a('9.0.1'), port: WP_PORT } })],
    endpoints: [ep(1, 0, 1, 21)],
    backends: [be(21, f.a('2.0.1'), [1])],
  });
  rows.push(single('service waypoint: to the waypoint, in the sockhash', connectCase(wpState, fam, vip), { peer: sa(f.sock(f.a('9.0.1')), WP_PORT), storage: recorded(vip, true), inSockhash: true }));

  // Map ports are whole u32 values (interpretation.md, item 22): raw states with an upper half.
  const upper = 0x10000;
  const raw = (service: Service): Case => ({
    ...connectCase(state({ frontends: [fe(f.a('1.0.1'), 1)], services: [service], endpoints: [ep(1, 0, 1, 21)], backends: [be(21, f.a('2.0.1'), [1])] }), fam, vip),
    kind: 'raw',
  });
  rows.push(
    single('a service port with an upper half matches nothing: no rewrite, nothing recorded', raw(svc(1, { ports: [[80 + upper, 8080]] })), {
      peer: vip,
      storage: NONE,
      inSockhash: false,
    }),
  );
  rows.push(
    single('a target port with an upper half: its low half is written', raw(svc(1, { ports: [[80, 8080 + upper]] })), {
      peer: sa(f.sock(f.a('2.0.1')), 8080),
      storage: recorded(vip),
      inSockhash: false,
    }),
  );
  rows.push(
    single('a waypoint port with only an upper half is a waypoint at port 0: refused, marked', raw(svc(1, { waypoint: { addr: f.a('9.0.1'), port: upper } })), {
      peer: null,
      storage: recorded(vip, true),
      inSockhash: false,
    }),
  );

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
      connectCase(
        state({
          frontends: [fe(f.a('1.0.1'), 1)],
          services: [svc(1, { policy: 1, counts: [1, 1] })],
          endpoints: [ep(1, 0, 1, 21), ep(1, 1, 1, 22)],
          backends: [be(21, f.a('2.0.1'), [1]), be(22, f.a('2.0.2'), [1])],
        }),
        fam,
        vip,
      ),
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
  rows.push(single('unknown lb_policy: no rewrite', connectCase(state({ ...basic(f), services: [svc(1, { policy: 7 })] }), fam, vip), { peer: vip, storage: NONE, inSockhash: false }));
  rows.push(
    single(
      'missing endpoint index (count 1, only index 2 exists): no rewrite',
      connectCase(state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1)], endpoints: [ep(1, 0, 2, 21)], backends: [be(21, f.a('2.0.1'), [1])] }), fam, vip),
      { peer: vip, storage: NONE, inSockhash: false },
    ),
  );
  rows.push(
    single('missing backend: no rewrite', connectCase(state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1)], endpoints: [ep(1, 0, 1, 99)] }), fam, vip), {
      peer: vip,
      storage: NONE,
      inSockhash: false,
    }),
  );
  rows.push(single('no port slot matches (81): no rewrite', connectCase(basic(f), fam, sa(vip.addr, 81)), { peer: sa(vip.addr, 81), storage: NONE, inSockhash: false }));
  rows.push(
    single(
      'second matching port slot: its target port',
      connectCase(
        state({
          ...basic(f),
          services: [
            svc(1, {
              ports: [
                [80, 8080],
                [443, 8443],
              ],
            }),
          ],
        }),
        fam,
        sa(vip.addr, 443),
      ),
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
  out.push({
    flavour: V4,
    row: single('DNS over udp without a proxy: untouched', connectCase(state({}), 'inet', dnsDest4, { protocol: 'udp' }), { peer: dnsDest4, storage: null, inSockhash: false }),
  });
  const mappedDns = sa('::ffff:10.77.0.1', 53);
  out.push({
    flavour: MAPPED,
    row: single('DNS is connect4 only: a v4-mapped TCP connect to :53 is not proxied', connectCase(state({ backends: [proxy] }), 'inet6', mappedDns), {
      peer: mappedDns,
      storage: NONE,
      inSockhash: false,
    }),
  });
  const v6Dns = sa('fd00::77:0:1', 53);
  out.push({
    flavour: V6,
    row: single('DNS is connect4 only: an IPv6 UDP connect to :53 is untouched', connectCase(state({ backends: [proxy] }), 'inet6', v6Dns, { protocol: 'udp' }), {
      peer: v6Dns,
      storage: null,
      inSockhash: false,
    }),
  });

  // IPv6 waypoint address.
  const v6wp = (f: Flavour) => state({ frontends: [fe(f.a('1.0.1'), 1)], services: [svc(1, { waypoint: { addr: 'fd00::9:0:6', port: WP_PORT } })] });
  out.push({
    flavour: V4,
    row: single('IPv6 waypoint for an AF_INET socket: not writable, no rewrite, nothing recorded', connectCase(v6wp(V4), 'inet', sa('10.1.0.1', 80)), {
      peer: sa('10.1.0.1', 80),
      storage: NONE,
      inSockhash: false,
    }),
  });
  out.push({
    flavour: V6,
    row: single('IPv6 waypoint for an AF_INET6 socket', connectCase(v6wp(V6), 'inet6', sa('fd00::1:0:1', 80)), {
      peer: sa('fd00::9:0:6', WP_PORT),
      storage: recorded(sa('fd00::1:0:1', 80), true),
      inSockhash: true,
    }),
  });
  out.push({
    flavour: MAPPED,
    row: single('IPv6 waypoint for a v4-mapped destination: taken as it is', connectCase(v6wp(MAPPED), 'inet6', sa('::ffff:10.1.0.1', 80)), {
      peer: sa('fd00::9:0:6', WP_PORT),
      storage: recorded(sa('::ffff:10.1.0.1', 80), true),
      inSockhash: true,
    }),
  });

  // Backends of the other family.
  const v6Backend = state({ frontends: [fe('10.1.0.1', 1)], services: [svc(1)], endpoints: [ep(1, 0, 1, 21)], backends: [be(21, 'fd00::2:0:9', [1])] });
  out.push({
    flavour: V4,
    row: single('IPv6 backend for an AF_INET socket: no rewrite, nothing recorded', connectCase(v6Backend, 'inet', sa('10.1.0.1', 80)), { peer: sa('10.1.0.1', 80), storage: NONE, inSockhash: false }),
  });
  out.push({
    flavour: MAPPED,
    row: single('IPv6 backend for a v4-mapped destination: taken as it is', connectCase(v6Backend, 'inet6', sa('::ffff:10.1.0.1', 80)), {
      peer: sa('fd00::2:0:9', 8080),
      storage: recorded(sa('::ffff:10.1.0.1', 80)),
      inSockhash: false,
    }),
  });
  const v4Backend = state({ frontends: [fe('fd00::1:0:1', 1)], services: [svc(1)], endpoints: [ep(1, 0, 1, 21)], backends: [be(21, '10.2.0.9', [1])] });
  out.push({
    flavour: V6,
    row: single('IPv4 backend for an AF_INET6 socket: written as ::ffff:a.b.c.d', connectCase(v4Backend, 'inet6', sa('fd00::1:0:1', 80)), {
      peer: sa('::ffff:10.2.0.9', 8080),
      storage: recorded(sa('fd00::1:0:1', 80)),
      inSockhash: false,
    }),
  });
  return out;
}

export const table: Array<{ flavour: Flavour; row: Row }> = [...FLAVOURS.flatMap((f) => rowsFor(f).map((row) => ({ flavour: f, row }))), ...familyRows()];

/** What the scenarios need of an executor. */
export interface ScenarioExecutor {
  run(cases: readonly Case[]): Promise<Observation[][]>;
  close(): Promise<void>;
}

/** Runs the whole table on one executor (opened by `open`); returns a getter for it. */
export function scenarioSuite<E extends ScenarioExecutor>(label: string, open: () => Promise<E>): () => E {
  let ex: E | undefined;
  const results = new Map<Row, Observation[][]>();
  beforeAll(async () => {
    ex = await open();
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
    describe(`${label} data path, ${f.name} sockets`, () => {
      for (const t of table.filter((x) => x.flavour === f)) {
        it(t.row.name, () => {
          const obs = results.get(t.row);
          expect(obs, 'the batch did not run').toBeDefined();
          t.row.check(obs!);
        });
      }
    });
  }
  return () => {
    if (!ex) throw new Error(`the ${label} executor did not start`);
    return ex;
  };
}

/**
 * A scenario executor over a side that knows every outcome of a case (the model, the VM's
 * exploration): repeated cases take the outcomes in turn, so a row that runs one case many
 * times sees every allowed outcome, as the kernel's real randomness would show them.
 */
export function outcomeSetExecutor(outcomesOf: (c: Case) => ReadonlyArray<readonly Observation[]>): ScenarioExecutor {
  return {
    async run(cases: readonly Case[]): Promise<Observation[][]> {
      const seen = new Map<string, number>();
      return cases.map((c) => {
        const all = outcomesOf(c);
        if (all.length === 0) throw new Error(`no outcome for ${JSON.stringify(c)}`);
        const key = JSON.stringify(c);
        const n = seen.get(key) ?? 0;
        seen.set(key, n + 1);
        return [...all[n % all.length]!];
      });
    },
    async close(): Promise<void> {},
  };
}
