// Bounded-exhaustive enumeration of the acceleration domain (section 8), smallest cases first, so
// the first failing case is already small. The scope is the number of connections:
//  - scope 1: every filter class (empty; accept CIDRs that hold all, some or none of the four
//    addresses, overlapping, on /32 and /31 edges; return CIDRs; accept and return port ranges on
//    the exact ports, just beside them, overlapping, begin > end, an end past 16 bits; full lists
//    decided by their last slot, one with a count byte above 10) times every kind of connection
//    (IPv4 with either end inside or outside the cgroup, each client and server address; an
//    AF_INET6 client of an AF_INET server; AF_INET6 both ends), a message each way, either end
//    closing first; under the empty filter every kind of connection aborted by either end
//    (a reset); and a connection across a change of filter, from the empty one to each other
//    class and back, before either end closes.
//  - scope 2: a second connection with the first one's four-tuple in the other namespace (inside,
//    client outside the cgroup, or an AF_INET6 client), or another connection in the same
//    namespace, under the empty filter, with every interleaving of the two connections'
//    operations (connect, one message, the two closes), each direction of message and either
//    end closing first.
// Scopes above 2 enumerate the same cases as 2.

import type { AccelCase, AccelFilter, AccelOp, AccelPair, End } from '../model/accel/domain.js';
import { EMPTY_FILTER } from '../model/accel/domain.js';
import { CLIENT_ADDRS, CLIENT_PORT_BASE, OUTSIDE_SERVER_PORT, SERVER_ADDRS, SERVER_PORTS } from './accel.js';

export const ACCEL_MAX_SCOPE = 2;

const HOST = 0xffffffff;

/** Filter classes, each one a distinct reason for the filter's answer. */
export const FILTER_CLASSES: readonly AccelFilter[] = [
  EMPTY_FILTER,
  { ...EMPTY_FILTER, acceptCidrs: [{ ip: '127.0.0.0', mask: 0xff000000 }] },
  { ...EMPTY_FILTER, acceptCidrs: [{ ip: '127.0.0.1', mask: HOST }] },
  {
    ...EMPTY_FILTER,
    acceptCidrs: [
      { ip: '127.0.0.1', mask: HOST },
      { ip: '127.0.0.2', mask: 0xfffffffe },
    ],
  },
  { ...EMPTY_FILTER, acceptCidrs: [{ ip: '10.0.0.0', mask: 0xff000000 }] },
  { ...EMPTY_FILTER, returnCidrs: [{ ip: '127.0.0.3', mask: 0xfffffffe }] },
  { ...EMPTY_FILTER, acceptPorts: [{ begin: SERVER_PORTS[0], end: SERVER_PORTS[0] }] },
  { ...EMPTY_FILTER, acceptPorts: [{ begin: CLIENT_PORT_BASE + 1, end: 65535 }] },
  { ...EMPTY_FILTER, acceptPorts: [{ begin: 0, end: 65535 }], returnPorts: [{ begin: SERVER_PORTS[1], end: SERVER_PORTS[0] }] },
  { ...EMPTY_FILTER, acceptPorts: [{ begin: SERVER_PORTS[0], end: CLIENT_PORT_BASE }], returnPorts: [{ begin: CLIENT_PORT_BASE, end: CLIENT_PORT_BASE }] },
  // Full lists whose last slot is the only one that matches (the others TEST-NET-1, port 1).
  { ...EMPTY_FILTER, acceptCidrs: [...Array.from({ length: 9 }, () => ({ ip: '192.0.2.0', mask: 0xffffff00 })), { ip: '127.0.0.0', mask: 0xff000000 }] },
  { ...EMPTY_FILTER, returnPorts: [...Array.from({ length: 9 }, () => ({ begin: 1, end: 1 })), { begin: SERVER_PORTS[0], end: SERVER_PORTS[0] }] },
  // Range ends are u32s: one past 16 bits (kept in 16 bits, the range would be empty).
  { ...EMPTY_FILTER, acceptPorts: [{ begin: SERVER_PORTS[0], end: 70000 }] },
  // The full return list above, its count byte 255 (it reads as 10).
  {
    ...EMPTY_FILTER,
    returnPorts: [...Array.from({ length: 9 }, () => ({ begin: 1, end: 1 })), { begin: SERVER_PORTS[0], end: SERVER_PORTS[0] }],
    countBytes: { returnPorts: 255 },
  },
];

function v4Pair(client: number, server: number, outside: AccelPair['outside']): AccelPair {
  return {
    netns: 0,
    family: 'inet',
    clientAddr: CLIENT_ADDRS[client]!,
    clientPort: CLIENT_PORT_BASE,
    serverAddr: SERVER_ADDRS[server]!,
    serverPort: outside === 'server' ? OUTSIDE_SERVER_PORT : SERVER_PORTS[0],
    outside,
  };
}

/** Every kind of single connection. */
export function singlePairs(): AccelPair[] {
  const out: AccelPair[] = [];
  for (const outside of ['none', 'client', 'server'] as const) {
    for (let client = 0; client < CLIENT_ADDRS.length; client++) for (let server = 0; server < SERVER_ADDRS.length; server++) out.push(v4Pair(client, server, outside));
  }
  out.push({ ...v4Pair(0, 0, 'none'), family: 'mapped' }, { ...v4Pair(0, 0, 'none'), family: 'inet6', clientAddr: '::1', serverAddr: '::1' });
  return out;
}

/** The second connection of scope 2, beside FIRST. */
const FIRST = v4Pair(0, 0, 'none');
export const SECOND_PAIRS: readonly AccelPair[] = [
  { ...FIRST, netns: 1 },
  { ...FIRST, netns: 1, outside: 'client' },
  { ...FIRST, netns: 1, family: 'mapped' },
  { ...v4Pair(1, 1, 'none'), clientPort: CLIENT_PORT_BASE + 1, serverPort: SERVER_PORTS[1] },
];

const other = (e: End): End => (e === 'client' ? 'server' : 'client');

function script(pair: number, from: End | 'both', firstClose: End, abort = false): AccelOp[] {
  const sends: AccelOp[] = (from === 'both' ? (['client', 'server'] as const) : [from]).map((f) => ({ op: 'send', pair, from: f, size: 5 }));
  const first: AccelOp = abort ? { op: 'close', pair, end: firstClose, abort: true } : { op: 'close', pair, end: firstClose };
  return [{ op: 'connect', pair }, ...sends, first, { op: 'close', pair, end: other(firstClose) }];
}

/** Every merge of two sequences that keeps each one's order. */
export function* interleavings<T>(a: readonly T[], b: readonly T[]): Generator<T[]> {
  if (!a.length || !b.length) {
    yield [...a, ...b];
    return;
  }
  for (const rest of interleavings(a.slice(1), b)) yield [a[0]!, ...rest];
  for (const rest of interleavings(a, b.slice(1))) yield [b[0]!, ...rest];
}

/** The cases of `scope` (1 or more), smallest first. */
export function* accelExhaustiveCases(scope: number): Generator<AccelCase> {
  for (const filter of FILTER_CLASSES) {
    for (const pair of singlePairs()) for (const first of ['client', 'server'] as const) yield { filter, pairs: [pair], ops: script(0, 'both', first) };
  }
  // Each kind of connection aborted by either end (a reset: both ends straight to CLOSE).
  for (const pair of singlePairs()) for (const first of ['client', 'server'] as const) yield { filter: EMPTY_FILTER, pairs: [pair], ops: script(0, 'both', first, true) };
  // A new filter while the connection is open, from the empty one to each other class and back:
  // its close cleans up whatever the filter says now.
  for (const filter of FILTER_CLASSES.slice(1)) {
    for (const [from, to] of [
      [EMPTY_FILTER, filter],
      [filter, EMPTY_FILTER],
    ] as const) {
      for (const first of ['client', 'server'] as const) {
        const ops = script(0, 'both', first);
        ops.splice(ops.length - 2, 0, { op: 'refilter', filter: to });
        yield { filter: from, pairs: [FIRST], ops };
      }
    }
  }
  if (scope < 2) return;
  for (const second of SECOND_PAIRS) {
    for (const from of ['client', 'server'] as const) {
      for (const first of ['client', 'server'] as const) {
        for (const ops of interleavings(script(0, from, first), script(1, other(from), other(first)))) yield { filter: EMPTY_FILTER, pairs: [FIRST, second], ops };
      }
    }
  }
}

/** How many cases accelExhaustiveCases(scope) yields. */
export function accelExhaustiveCount(scope: number): number {
  const single = (FILTER_CLASSES.length + 1) * singlePairs().length * 2 + (FILTER_CLASSES.length - 1) * 2 * 2;
  // Two sequences of four operations: 8 choose 4 merges.
  return scope < 2 ? single : single + SECOND_PAIRS.length * 2 * 2 * 70;
}
