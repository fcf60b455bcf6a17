// The reference model of same-node acceleration: for a case, the one observation a correct data
// path gives. A connection is accelerated exactly when both ends are IPv4 TCP sockets of the node
// (here: created inside the cgroup the programs are attached to) and the filter admits it; either
// way each end reads exactly what the other sent, nothing reaches another socket, and no key is
// left in either map once every end has closed.

import type { AccelCase, AccelObservation, AccelPair, End } from './domain.js';
import { messageBytes, toHexBytes } from './domain.js';
import { filterVerdict, type FilterReason } from './filter.js';

export type AccelReason = FilterReason | 'not-ipv4' | 'client-outside' | 'server-outside';

/** Whether a pair is accelerated, and why (or why not). */
export function accelerationOf(c: AccelCase, p: AccelPair): { accelerated: boolean; reason: AccelReason } {
  if (p.family !== 'inet') return { accelerated: false, reason: 'not-ipv4' };
  if (p.outside === 'client') return { accelerated: false, reason: 'client-outside' };
  if (p.outside === 'server') return { accelerated: false, reason: 'server-outside' };
  const reason = filterVerdict(c.filter, p);
  return { accelerated: reason === 'admitted', reason };
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
  };
}
