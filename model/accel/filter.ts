// The acceleration filter of section 8 as a predicate over a connection's four addresses (each
// end's local and remote) and four ports, host order. Written from the document's rules, not
// from the C: empty lists constrain nothing; any return match rejects; accept CIDRs need every
// address in one of them; accept ranges need one port in one of them.

import type { AccelFilter, AccelPair, Cidr, PortRange } from './domain.js';

export function ipv4Number(text: string): number {
  const parts = text.split('.').map(Number);
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

export function cidrContains(c: Cidr, addr: string): boolean {
  return ((ipv4Number(addr) ^ ipv4Number(c.ip)) & c.mask) >>> 0 === 0;
}

export function rangeContains(r: PortRange, port: number): boolean {
  return r.begin <= port && port <= r.end;
}

/** The four addresses and four ports the filter looks at (the two ends' views of one connection). */
export function connectionFacts(p: AccelPair): { addrs: string[]; ports: number[] } {
  return { addrs: [p.serverAddr, p.clientAddr, p.clientAddr, p.serverAddr], ports: [p.serverPort, p.clientPort, p.clientPort, p.serverPort] };
}

export type FilterReason = 'admitted' | 'return-cidr' | 'return-port' | 'accept-cidr' | 'accept-port';

/** Why the filter admits or rejects an IPv4 connection. */
export function filterVerdict(f: AccelFilter, p: AccelPair): FilterReason {
  const { addrs, ports } = connectionFacts(p);
  if (f.returnCidrs.some((c) => addrs.some((a) => cidrContains(c, a)))) return 'return-cidr';
  if (f.returnPorts.some((r) => ports.some((q) => rangeContains(r, q)))) return 'return-port';
  if (f.acceptCidrs.length > 0 && !addrs.every((a) => f.acceptCidrs.some((c) => cidrContains(c, a)))) return 'accept-cidr';
  if (f.acceptPorts.length > 0 && !ports.some((q) => f.acceptPorts.some((r) => rangeContains(r, q)))) return 'accept-port';
  return 'admitted';
}
