// Plain-text rendering of acceleration cases and observations, the way counterexamples and the
// generated docs print them: the filter, the connections, the operations, and per connection
// and direction what was read and how much of it TCP carried.

import type { AccelCase, AccelFilter, AccelObservation, AccelOp, FilterList } from './domain.js';
import { accelerationOf } from './model.js';

const hex8 = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;

export function formatFilter(f: AccelFilter): string[] {
  const cidrs = (l: AccelFilter['acceptCidrs']) => (l.length ? l.map((c) => `${c.ip}/${hex8(c.mask)}`).join(', ') : '(empty)');
  const ports = (l: AccelFilter['acceptPorts']) => (l.length ? l.map((r) => `${r.begin}-${r.end}`).join(', ') : '(empty)');
  const count = (l: FilterList) => (f.countBytes?.[l] !== undefined ? ` (count byte ${f.countBytes[l]})` : '');
  return [
    `accept CIDRs:  ${cidrs(f.acceptCidrs)}${count('acceptCidrs')}`,
    `return CIDRs:  ${cidrs(f.returnCidrs)}${count('returnCidrs')}`,
    `accept ports:  ${ports(f.acceptPorts)}${count('acceptPorts')}`,
    `return ports:  ${ports(f.returnPorts)}${count('returnPorts')}`,
  ];
}

function opText(o: AccelOp): string {
  switch (o.op) {
    case 'connect':
      return `pair ${o.pair}: connect`;
    case 'send':
      return `pair ${o.pair}: ${o.from} sends ${o.size} bytes`;
    case 'close':
      return `pair ${o.pair}: ${o.end} ${o.abort ? 'aborts (a reset)' : 'closes'}`;
    case 'refilter':
      return `user space writes a new filter: ${formatFilter(o.filter).join('; ')}`;
  }
}

export function formatAccelCase(c: AccelCase): string[] {
  const out = ['filter (sock_param_map[0]):', ...formatFilter(c.filter).map((l) => `  ${l}`), 'connections:'];
  c.pairs.forEach((p, i) => {
    const where = p.outside === 'none' ? '' : `, ${p.outside} outside the cgroup`;
    out.push(
      `  pair ${i}: netns ${p.netns}, ${p.family === 'inet' ? 'AF_INET' : p.family === 'inet6' ? 'AF_INET6' : 'AF_INET6 client (v4-mapped) to AF_INET server'} ${p.clientAddr}:${p.clientPort} -> ${p.serverAddr}:${p.serverPort}${where}`,
    );
  });
  out.push('operations:', ...c.ops.map((o, i) => `  ${i + 1}. ${opText(o)}`));
  return out;
}

export function formatAccelObservation(c: AccelCase, o: AccelObservation): string[] {
  const out: string[] = [];
  o.pairs.forEach((p, i) => {
    const pair = c.pairs[i];
    const why = pair ? accelerationOf(c, pair) : null;
    out.push(`pair ${i} (model: ${why ? (why.accelerated ? 'accelerated' : `not accelerated, ${why.reason}`) : '?'}):`);
    out.push(`  to server: ${p.toServer.received.length / 2} bytes read, ${p.toServer.viaTcp} through TCP`);
    out.push(`  to client: ${p.toClient.received.length / 2} bytes read, ${p.toClient.viaTcp} through TCP`);
  });
  for (const r of o.refused) out.push(`refused: pair ${r.pair}, the ${r.from}'s send of ${r.size} bytes failed (${r.error})`);
  for (const s of o.stray) out.push(`stray: the ${s.end} of pair ${s.pair} read ${s.bytes.length / 2} bytes of another connection`);
  out.push(`while open: sock_ops_map ${o.whileOpen.sockOpsKeys.length} keys, sock_proxy_map ${o.whileOpen.proxyEntries.length} entries`);
  out.push(`after every close: sock_ops_map ${o.sockOpsKeys.length} keys, sock_proxy_map ${o.proxyEntries.length} entries`);
  return out;
}
