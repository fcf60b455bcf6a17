// Coverage classes of section 6 (DNS over UDP sends), from a case and the model's allowed traces:
// which of the paths that matter the case took, so that a run that rarely exercised one fails
// its coverage requirement instead of passing unexamined.

import { v4MappedInner } from '../model/address.js';
import { CONTROL_ADDR, deliveredFor, dnsAnswerTo, dnsQueryFor, localsEnrolledAtStart, netnsEnrolledAtStart, type Case, type Family } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import type { Trace } from '../model/impl/index.js';
import { dnsProxyOf } from '../model/spec/invariants/dns.js';

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
  // A query to port 53 from a socket bound to a local IP that km_manage holds, in a namespace that
  // is not enrolled (km_manage written with the local IPs alone): the send hook goes by the
  // namespace, which a hook reading the socket's source in km_manage gets wrong.
  'query-bound-managed-unenrolled',
  // A reply restored to the server of its socket's redirected query after that socket's most recent
  // query to port 53 was not redirected (no proxy, another family's proxy, a native server, not
  // enrolled): the rule keeps the most recent *redirected* query, which such a send leaves as it was.
  'reply-restored-after-direct-query',
] as const;

/**
 * Whether a query to `inner` (IPv4) that arrived at `at` was redirected: it reached the proxy in
 * place of another server. A query the kernel sent elsewhere (the any-address: to loopback, or
 * to the socket's own source) was not.
 */
function redirectedTo(at: string, inner: string | null, proxy: string | null): boolean {
  return proxy !== null && at === proxy && inner !== proxy;
}

export function dnsTraits(c: Case, allowed: readonly Trace[], env: Environment): Set<string> {
  const out = new Set<string>();
  const t = allowed[0];
  // Every class needs a sendto or a recvfrom, and the model's trace: most cases have neither.
  if (!t || !c.ops.some((op) => op.op === 'sendto' || op.op === 'recvfrom')) return out;
  const families = new Map<number, Family>();
  const mappedPeer = new Set<number>();
  const redirected = new Set<number>();
  let mappedControl = false;
  // Sockets bound to an enrolled local IP while only the local IPs are written (and no control send since).
  const managedSource = new Set<number>();
  let lonelyLocals = localsEnrolledAtStart(c) && !netnsEnrolledAtStart(c);
  let proxy = dnsProxyOf(c.state);
  // Queries sent per socket (they number the answers), and the redirected ones by their answer's
  // text: a restored reply is the answer to one, seen as from the server it addressed; per socket
  // when the node's most recent redirected query since was another socket's, to another server
  // (one record for the node would name that one).
  const sent = new Map<number, number>();
  // Sockets whose most recent query to port 53 was not redirected.
  const directSince = new Set<number>();
  const redirectedQueries = new Map<string, { readonly sock: number; readonly server: string }>();
  let last: { readonly sock: number; readonly server: string } | null = null;
  c.ops.forEach((op, i) => {
    const o = t.observations[i];
    if (op.op === 'apply') proxy = dnsProxyOf(op.state);
    if (op.op === 'socket') {
      families.set(op.sock, op.family);
      if (op.bindTo !== undefined && env.enrolledLocals.includes(op.bindTo)) managedSource.add(op.sock);
    }
    if (op.op === 'sendto' && o) {
      const fam = families.get(op.sock);
      const inner = fam === 'inet6' ? v4MappedInner(op.dest.addr) : op.dest.addr;
      const seq = sent.get(op.sock) ?? 0;
      sent.set(op.sock, seq + op.n);
      if (fam === 'inet6' && inner !== null) out.add('sendto-v4mapped');
      if (inner === CONTROL_ADDR.inet) lonelyLocals = false;
      else if (lonelyLocals && managedSource.has(op.sock) && op.dest.port === 53 && inner !== null) out.add('query-bound-managed-unenrolled');
      if (op.dest.port === 53 && mappedControl) out.add('mapped-control-then-query');
      if (fam === 'inet6' && inner === CONTROL_ADDR.inet) mappedControl = true;
      if (op.dest.port === 53) directSince.add(op.sock);
      if (o.arrivedAt && op.dest.port === 53) {
        if (inner !== null && redirectedTo(o.arrivedAt.addr, inner, proxy)) {
          out.add('sendto-redirected');
          directSince.delete(op.sock);
          redirected.add(op.sock);
          last = { sock: op.sock, server: inner };
          for (let k = 0; k < op.n; k++) redirectedQueries.set(dnsAnswerTo(dnsQueryFor(op.sock, seq + k)), last);
        } else if (o.arrivedAt.addr === inner) out.add('sendto-direct');
      }
    }
    if (op.op === 'connect' && families.get(op.sock) === 'inet6' && v4MappedInner(op.dest.addr) !== null && op.dest.port === 53 && o?.peer) mappedPeer.add(op.sock);
    if (op.op === 'recvfrom' && o?.from && o.data) {
      if (o.data === deliveredFor(op.sock)) {
        out.add('reply-as-is');
        if (redirected.has(op.sock) && o.from.addr.includes(':') && v4MappedInner(o.from.addr) === null) out.add('reply-native-after-redirect');
      } else if (mappedPeer.has(op.sock)) out.add('connected-v4mapped-exchange');
      const q = redirectedQueries.get(o.data);
      if (q !== undefined && (v4MappedInner(o.from.addr) ?? o.from.addr) === q.server) {
        out.add('reply-restored');
        if (last !== null && last.sock !== op.sock && last.server !== q.server) out.add('reply-restored-per-socket');
        if (directSince.has(op.sock)) out.add('reply-restored-after-direct-query');
      }
    }
  });
  return out;
}
