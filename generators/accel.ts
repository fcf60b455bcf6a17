// fast-check arbitraries for same-node acceleration cases: filters (empty lists most often, CIDRs
// and port ranges that hit, miss, overlap and sit on the edges of the ports in use, begin > end,
// raw masks), connection pairs in one or two namespaces (twins with the same four-tuple in the
// other namespace, whose client may sit outside the cgroup), IPv6 pairs, ends outside the cgroup, and interleavings of connects, sends
// in both directions and closes in either order, the first closer now and then aborting (a reset),
// now and then a new filter among them. Everything shrinks towards one plain IPv4 pair.

import fc from 'fast-check';
import { FILTER_LISTS, type AccelCase, type AccelFilter, type AccelOp, type AccelPair, type Cidr, type End, type FilterList, type Netns, type PortRange } from '../model/accel/domain.js';

export const CLIENT_ADDRS = ['127.0.0.1', '127.0.0.2'] as const;
export const SERVER_ADDRS = ['127.0.0.1', '127.0.0.3'] as const;
export const SERVER_PORTS = [8080, 8081] as const;
/** Listeners outside the cgroup get a port of their own (one listener per address and port). */
export const OUTSIDE_SERVER_PORT = 8090;
export const CLIENT_PORT_BASE = 40000;

const cidrArb: fc.Arbitrary<Cidr> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<Cidr>(
      { ip: '127.0.0.1', mask: 0xffffffff },
      { ip: '127.0.0.2', mask: 0xffffffff },
      { ip: '127.0.0.3', mask: 0xffffffff },
      { ip: '127.0.0.2', mask: 0xfffffffe },
      { ip: '127.0.0.0', mask: 0xffffff00 },
      { ip: '127.0.0.0', mask: 0xff000000 },
      { ip: '0.0.0.0', mask: 0 },
      { ip: '10.0.0.0', mask: 0xff000000 },
    ),
  },
  { weight: 1, arbitrary: fc.record({ ip: fc.constantFrom('127.0.0.1', '127.255.0.3', '10.1.2.3'), mask: fc.nat({ max: 0xffffffff }) }) },
);

const rangeArb: fc.Arbitrary<PortRange> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<PortRange>(
      { begin: 8080, end: 8080 },
      { begin: 8081, end: 8081 },
      { begin: 8080, end: 8081 },
      { begin: 40000, end: 40000 },
      { begin: 40001, end: 40003 },
      { begin: 0, end: 65535 },
      { begin: 8082, end: 39999 },
      { begin: 65535, end: 65535 },
      { begin: 8081, end: 8080 },
      // Range ends are u32s: ends past 65535 (a program that keeps 16 bits makes 8080-70000
      // empty, and 65616-73761 into 80-8225) and the largest.
      { begin: 8080, end: 70000 },
      { begin: 65616, end: 73761 },
      { begin: 0, end: 0xffffffff },
    ),
  },
  { weight: 1, arbitrary: fc.record({ begin: fc.nat({ max: 65535 }), end: fc.nat({ max: 65535 }) }) },
);

/** Entries that match no address or port of the cases (TEST-NET-1, port 1). */
const INERT_CIDR: Cidr = { ip: '192.0.2.0', mask: 0xffffff00 };
const INERT_RANGE: PortRange = { begin: 1, end: 1 };
/** The lists' room in sock_param. */
const LIST_SLOTS = 10;

/**
 * A list that is empty most of the time, so that many generated connections are admitted; now
 * and then full, its last slot the only entry that can match (`inert` fills the others), so that
 * a program that reads one slot fewer shows.
 */
function list<T>(arb: fc.Arbitrary<T>, inert: T): fc.Arbitrary<T[]> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant([] as T[]) },
    { weight: 4, arbitrary: fc.array(arb, { minLength: 1, maxLength: 3 }) },
    { weight: 1, arbitrary: arb.map((last) => [...Array.from({ length: LIST_SLOTS - 1 }, () => inert), last]) },
  );
}

/** A full list's count byte: mostly 10, now and then above (it reads as 10: interpretation A2). */
const countByteArb: fc.Arbitrary<number> = fc.oneof({ weight: 2, arbitrary: fc.constant(LIST_SLOTS) }, { weight: 1, arbitrary: fc.constantFrom(11, 255) });

export const filterArb: fc.Arbitrary<AccelFilter> = fc
  .record({
    acceptCidrs: list(cidrArb, INERT_CIDR),
    returnCidrs: list(cidrArb, INERT_CIDR),
    acceptPorts: list(rangeArb, INERT_RANGE),
    returnPorts: list(rangeArb, INERT_RANGE),
    counts: fc.tuple(countByteArb, countByteArb, countByteArb, countByteArb),
  })
  .map(({ counts, ...f }) => {
    const countBytes: Partial<Record<FilterList, number>> = {};
    FILTER_LISTS.forEach((l, i) => {
      if (f[l].length === LIST_SLOTS && counts[i]! > LIST_SLOTS) countBytes[l] = counts[i]!;
    });
    return Object.keys(countBytes).length ? { ...f, countBytes } : f;
  });

interface PairShape {
  readonly family: 'inet' | 'inet6' | 'mapped';
  readonly client: number;
  readonly server: number;
  readonly port: number;
  readonly outside: AccelPair['outside'];
  /** A twin: the same four-tuple in the other namespace; its client maybe outside the cgroup. */
  readonly twin: 'none' | 'same' | 'client-outside';
  readonly netns: Netns;
}

const shapeArb: fc.Arbitrary<PairShape> = fc.record({
  family: fc.oneof({ weight: 5, arbitrary: fc.constant('inet' as const) }, { weight: 1, arbitrary: fc.constantFrom('inet6' as const, 'mapped' as const) }),
  client: fc.nat({ max: CLIENT_ADDRS.length - 1 }),
  server: fc.nat({ max: SERVER_ADDRS.length - 1 }),
  port: fc.nat({ max: SERVER_PORTS.length - 1 }),
  outside: fc.oneof({ weight: 6, arbitrary: fc.constant('none' as const) }, { weight: 1, arbitrary: fc.constantFrom('client' as const, 'server' as const) }),
  twin: fc.constantFrom('none' as const, 'same' as const, 'client-outside' as const),
  netns: fc.constantFrom<Netns>(0, 1),
});

/** Pairs from shapes: a twin is the same four-tuple in the other namespace; client ports are unique per namespace. */
export function pairsOf(shapes: readonly PairShape[]): AccelPair[] {
  const out: AccelPair[] = [];
  const used = [0, 0];
  const add = (s: PairShape, netns: Netns, clientPort: number, outside = s.outside) => {
    const v4 = s.family !== 'inet6';
    out.push({
      netns,
      family: s.family,
      clientAddr: v4 ? CLIENT_ADDRS[s.client]! : '::1',
      clientPort,
      serverAddr: v4 ? SERVER_ADDRS[s.server]! : '::1',
      serverPort: s.outside === 'server' ? OUTSIDE_SERVER_PORT : SERVER_PORTS[s.port]!,
      outside,
    });
  };
  for (const s of shapes) {
    const port = CLIENT_PORT_BASE + Math.max(used[0]!, used[1]!);
    add(s, s.netns, port);
    used[s.netns] = port - CLIENT_PORT_BASE + 1;
    if (s.twin !== 'none') {
      const other: Netns = s.netns === 0 ? 1 : 0;
      // A client outside the cgroup changes no listener, so the twin keeps the four-tuple; a
      // listener outside stays outside (one listener per address and port in a namespace).
      add(s, other, port, s.twin === 'client-outside' && s.outside !== 'server' ? 'client' : s.outside);
      used[other] = port - CLIENT_PORT_BASE + 1;
    }
  }
  return out;
}

interface PairScript {
  readonly sends: ReadonlyArray<{ from: End; size: number }>;
  readonly firstClose: End;
  readonly abort: boolean;
}

const scriptArb: fc.Arbitrary<PairScript> = fc.record({
  sends: fc.array(
    fc.record({ from: fc.constantFrom<End>('client', 'server'), size: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 64 }) }, { weight: 1, arbitrary: fc.constant(4096) }) }),
    { maxLength: 4 },
  ),
  firstClose: fc.constantFrom<End>('client', 'server'),
  /** The first closer aborts (a reset) now and then. */
  abort: fc.constantFrom(false, false, false, true),
});

/** Merges each pair's own sequence into one, the order chosen by `picks` (per-pair order kept). */
export function interleave<T>(queues: T[][], picks: readonly number[]): T[] {
  const qs = queues.map((q) => [...q]);
  const out: T[] = [];
  let step = 0;
  for (;;) {
    const live = qs.filter((q) => q.length > 0);
    if (!live.length) return out;
    const q = live[(picks[step++] ?? 0) % live.length]!;
    out.push(q.shift()!);
  }
}

export function accelCaseArb(opts: { maxPairs?: number } = {}): fc.Arbitrary<AccelCase> {
  return fc
    .record({
      filter: filterArb,
      shapes: fc.array(shapeArb, { minLength: 1, maxLength: opts.maxPairs ?? 3 }),
      scripts: fc.array(scriptArb, { minLength: 6, maxLength: 6 }),
      picks: fc.array(fc.nat({ max: 7 }), { maxLength: 40 }),
      // A case in four: user space writes another filter somewhere among the operations, so that
      // connections open across the change close under a filter that did not admit them, or the reverse.
      refilter: fc.oneof({ withCrossShrink: true }, { weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.record({ at: fc.nat({ max: 40 }), filter: filterArb }) }),
    })
    .map(({ filter, shapes, scripts, picks, refilter }) => {
      const pairs = pairsOf(shapes);
      const queues = pairs.map((_, i): AccelOp[] => {
        const s = scripts[i % scripts.length]!;
        const second: End = s.firstClose === 'client' ? 'server' : 'client';
        return [
          { op: 'connect', pair: i },
          ...s.sends.map((m): AccelOp => ({ op: 'send', pair: i, from: m.from, size: m.size })),
          s.abort ? { op: 'close', pair: i, end: s.firstClose, abort: true } : { op: 'close', pair: i, end: s.firstClose },
          { op: 'close', pair: i, end: second },
        ];
      });
      const ops = interleave(queues, picks);
      if (refilter) ops.splice(refilter.at % (ops.length + 1), 0, { op: 'refilter', filter: refilter.filter });
      return { filter, pairs, ops };
    });
}
