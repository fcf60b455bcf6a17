// Coverage classes of section 6 (DNS over UDP sends), from a case and the model's allowed traces:
// which of the paths that matter the case took, so that a run that rarely exercised one fails
// its coverage requirement instead of passing unexamined.

import { v4MappedInner } from '../model/address.js';
import { CONTROL_ADDR, deliveredFor, type Case, type Family } from '../model/domain.js';
import type { Trace } from '../model/impl/index.js';

/** The classes a run must see (properties/statistics.ts REQUIRED_CLASSES.dns). */
export const DNS_CLASSES = [
  'sendto-redirected',
  'sendto-direct',
  'sendto-v4mapped',
  'reply-restored',
  'reply-as-is',
  'connected-v4mapped-exchange',
  // A datagram from a native IPv6 source received after a redirected query: no v4-mapped reply to restore.
  'reply-native-after-redirect',
  // A reply restored to its socket's server while another socket's query went to another server since.
  'reply-restored-per-socket',
  // An AF_INET6 send to ::ffff:0.0.0.2 (no control address), then a query to port 53.
  'mapped-control-then-query',
] as const;

export function dnsTraits(c: Case, allowed: readonly Trace[]): Set<string> {
  const out = new Set<string>();
  // Every class needs a sendto or a recvfrom: most cases have neither, and need no tables below.
  if (!c.ops.some((op) => op.op === 'sendto' || op.op === 'recvfrom')) return out;
  const families = new Map<number, Family>();
  const mappedPeer = new Set<number>();
  const redirected = new Set<number>();
  let mappedControl = false;
  const t = allowed[0];
  c.ops.forEach((op, i) => {
    const o = t?.observations[i];
    if (op.op === 'socket') families.set(op.sock, op.family);
    if (op.op === 'sendto' && o) {
      const fam = families.get(op.sock);
      const inner = fam === 'inet6' ? v4MappedInner(op.dest.addr) : op.dest.addr;
      if (fam === 'inet6' && inner !== null) out.add('sendto-v4mapped');
      if (op.dest.port === 53 && mappedControl) out.add('mapped-control-then-query');
      if (fam === 'inet6' && inner === CONTROL_ADDR.inet) mappedControl = true;
      if (o.arrivedAt && op.dest.port === 53) {
        out.add(o.arrivedAt.addr === inner ? 'sendto-direct' : 'sendto-redirected');
        if (o.arrivedAt.addr !== inner) redirected.add(op.sock);
      }
    }
    if (op.op === 'connect' && families.get(op.sock) === 'inet6' && v4MappedInner(op.dest.addr) !== null && op.dest.port === 53 && o?.peer) mappedPeer.add(op.sock);
    if (op.op === 'recvfrom' && o?.from && o.data) {
      if (o.data === deliveredFor(op.sock)) {
        out.add('reply-as-is');
        if (redirected.has(op.sock) && o.from.addr.includes(':') && v4MappedInner(o.from.addr) === null) out.add('reply-native-after-redirect');
      } else if (mappedPeer.has(op.sock)) out.add('connected-v4mapped-exchange');
    }
  });
  // A restored reply: the same answer seen from another address than the stand-in that sent it.
  if (t) {
    const arrived = new Map<string, string>();
    // The server of the node's most recent redirected query, whichever socket sent it.
    let lastServer: string | null = null;
    c.ops.forEach((op, i) => {
      const o = t.observations[i];
      if (op.op === 'sendto' && o?.arrivedAt) {
        arrived.set(String(op.sock), o.arrivedAt.addr);
        const inner = v4MappedInner(op.dest.addr) ?? op.dest.addr;
        if (op.dest.port === 53 && o.arrivedAt.addr !== inner) lastServer = inner;
      }
      if (op.op === 'recvfrom' && o?.from && o.data?.startsWith('ans:')) {
        const from4 = v4MappedInner(o.from.addr) ?? o.from.addr;
        const at = arrived.get(String(op.sock));
        if (at !== undefined && at !== from4) {
          out.add('reply-restored');
          if (lastServer !== null && lastServer !== from4) out.add('reply-restored-per-socket');
        }
      }
    });
  }
  return out;
}
