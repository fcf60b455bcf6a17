// The reference model of same-node acceleration: for a case, the one observation a correct data
// path gives. A connection is accelerated exactly when both ends are IPv4 TCP sockets of the node
// (here: created inside the cgroup the programs are attached to) and the filter in place at its
// connect admits it (a later filter changes nothing for it); either
// way each end reads exactly what the other sent, nothing reaches another socket, and no key is
// left in either map once every end has closed.

import type { AccelCase, AccelFilter, AccelKey, AccelObservation, AccelPair, End, ProxyEntry } from './domain.js';
import { compareKeys, messageBytes, toHexBytes } from './domain.js';
import { filterVerdict, type FilterReason } from './filter.js';

export type AccelReason = FilterReason | 'not-ipv4' | 'client-outside' | 'server-outside';

/** Whether a pair is accelerated, and why (or why not): the filter decides at its connect. */
export function accelerationOf(c: AccelCase, p: AccelPair): { accelerated: boolean; reason: AccelReason } {
  if (p.family !== 'inet') return { accelerated: false, reason: 'not-ipv4' };
  if (p.outside === 'client') return { accelerated: false, reason: 'client-outside' };
  if (p.outside === 'server') return { accelerated: false, reason: 'server-outside' };
  const reason = filterVerdict(filterAtConnect(c, p), p);
  return { accelerated: reason === 'admitted', reason };
}

/** The filter in sock_param_map when pair `p` (one of the case's) connects: the case's, or the last refilter's before. */
export function filterAtConnect(c: AccelCase, p: AccelPair): AccelFilter {
  const i = c.pairs.indexOf(p);
  if (i < 0) return c.filter;
  let f = c.filter;
  for (const op of c.ops) {
    if (op.op === 'refilter') f = op.filter;
    else if (op.op === 'connect' && op.pair === i) break;
  }
  return f;
}

/** The bytes `from` sends over the whole case, in order. */
export function sentStream(c: AccelCase, pair: number, from: End): string {
  let seq = 0;
  let hex = '';
  for (const op of c.ops) if (op.op === 'send' && op.pair === pair && op.from === from) hex += toHexBytes(messageBytes(pair, from, seq++, op.size));
  return hex;
}

export function expectedAccel(c: AccelCase): AccelObservation {
  return {
    pairs: c.pairs.map((p, i) => {
      const fast = accelerationOf(c, p).accelerated;
      const toServer = sentStream(c, i, 'client');
      const toClient = sentStream(c, i, 'server');
      return {
        toServer: { received: toServer, viaTcp: fast ? 0 : toServer.length / 2 },
        toClient: { received: toClient, viaTcp: fast ? 0 : toClient.length / 2 },
      };
    }),
    stray: [],
    refused: [],
    sockOpsKeys: [],
    proxyEntries: [],
    whileOpen: mapsWhileOpen(c),
  };
}

/**
 * The maps while open as section 8's bullets describe them (this data path's reading; the
 * Normative rules name no entry, so redirect-keys holds an executor only to their layout): each
 * AF_INET client of the cgroup under its own key; each AF_INET server end (the listener's family:
 * a v4-mapped client's too) of the cgroup that the filter admits under its own key, with both
 * directions in sock_proxy_map. Of the pairs connected before the case's first close.
 */
export function mapsWhileOpen(c: AccelCase): AccelObservation['whileOpen'] {
  const firstClose = c.ops.findIndex((op) => op.op === 'close');
  const connected = c.ops.slice(0, firstClose < 0 ? c.ops.length : firstClose).flatMap((op) => (op.op === 'connect' && c.pairs[op.pair] ? [c.pairs[op.pair]!] : []));
  const sockOpsKeys: AccelKey[] = [];
  const proxyEntries: ProxyEntry[] = [];
  for (const p of connected) {
    const client = sockKey(p.netns, p.clientAddr, p.clientPort, p.serverAddr, p.serverPort);
    const server = sockKey(p.netns, p.serverAddr, p.serverPort, p.clientAddr, p.clientPort);
    if (p.family === 'inet' && p.outside !== 'client') sockOpsKeys.push(client);
    if (p.family !== 'inet6' && p.outside !== 'server' && filterVerdict(filterAtConnect(c, p), p) === 'admitted') {
      sockOpsKeys.push(server);
      proxyEntries.push({ key: server, peer: client }, { key: client, peer: server });
    }
  }
  return { sockOpsKeys: sockOpsKeys.sort(compareKeys), proxyEntries: proxyEntries.sort((a, b) => compareKeys(a.key, b.key)) };
}

/** The key a socket of namespace `netns` has, local then remote, as an observation lists it. */
export function sockKey(netns: AccelPair['netns'], local: string, localPort: number, remote: string, remotePort: number): AccelKey {
  return { local, localPort, remote, remotePort, netns, cookie: '' };
}
