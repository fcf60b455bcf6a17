// The coverage classes of section 6 (properties/dns-traits.ts) name what a case did, from the
// model's trace: a reply is "restored" only when it answers a query redirected to the proxy and
// is seen as from the server that query addressed; "per socket" only when, by then, the node's
// most recent redirected query was another socket's, to another server.

import { describe, expect, it } from 'vitest';
import { backend, connect, maps, recvfrom, send, sendto, socket } from '../../model/builders.js';
import { EMPTY_STATE, type Case, type Operation } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { dnsTraits } from '../../properties/dns-traits.js';

const PROXY = '10.9.0.53';
const A = '10.1.0.1';
const B = '10.1.0.2';
const traits = (ops: Case['ops'], enrolled = true, start: Partial<Case> = {}) => {
  const c: Case = { state: maps({ backends: [backend(0, PROXY)] }), kind: 'consistent', enrolled, ...start, ops };
  return dnsTraits(c, outcomes(c, DEFAULT_ENVIRONMENT), DEFAULT_ENVIRONMENT);
};

describe('DNS coverage classes', () => {
  it('a reply restored per socket: two sockets, the other one queried another server since', () => {
    const t = traits([socket(1, 'inet', 'udp'), socket(2, 'inet', 'udp'), sendto(1, A, 53), sendto(2, B, 53), recvfrom(1)]);
    expect(t).toContain('sendto-redirected');
    expect(t).toContain('reply-restored');
    expect(t).toContain('reply-restored-per-socket');
  });

  it('not per socket when the most recent redirected query is the same socket, or names the same server', () => {
    expect(traits([socket(1, 'inet', 'udp'), socket(2, 'inet', 'udp'), sendto(2, B, 53), sendto(1, A, 53), recvfrom(1)])).not.toContain('reply-restored-per-socket');
    const same = traits([socket(1, 'inet', 'udp'), socket(2, 'inet', 'udp'), sendto(1, A, 53), sendto(2, A, 53), recvfrom(1)]);
    expect(same).toContain('reply-restored');
    expect(same).not.toContain('reply-restored-per-socket');
  });

  it("a connected socket's answer is no restored reply, nor is a query the kernel sent to loopback a redirected one", () => {
    expect(traits([socket(1, 'inet6', 'udp'), connect(1, `::ffff:${B}`, 53), send(1, 1), recvfrom(1)])).not.toContain('reply-restored');
    // One socket: a redirected query answered, then its connected exchange with another server.
    const oneSocket = traits([socket(1, 'inet', 'udp'), sendto(1, A, 53), recvfrom(1), connect(1, B, 53), send(1, 1), recvfrom(1)]);
    expect(oneSocket).toContain('reply-restored');
    expect(oneSocket).not.toContain('reply-restored-per-socket');
    const loopback = traits([socket(1, 'inet', 'udp'), sendto(1, '0.0.0.0', 53), recvfrom(1)], false);
    expect(loopback).not.toContain('sendto-redirected');
    expect(loopback).not.toContain('reply-restored');
  });

  it('a query from a socket bound to a managed local IP in a namespace not enrolled: only with the local IPs written alone, before any control send', () => {
    const locals: Partial<Case> = { enrolmentWrite: 0, enrolmentKeys: 'locals' };
    const cls = 'query-bound-managed-unenrolled';
    expect(traits([socket(1, 'inet', 'udp', '10.255.0.1'), sendto(1, A, 53)], true, locals)).toContain(cls);
    // Another bound address, no bind, the cookie written, or an enrolment by a send first: not it.
    expect(traits([socket(1, 'inet', 'udp', '10.6.0.6'), sendto(1, A, 53)], true, locals)).not.toContain(cls);
    expect(traits([socket(1, 'inet', 'udp'), sendto(1, A, 53)], true, locals)).not.toContain(cls);
    expect(traits([socket(1, 'inet', 'udp', '10.255.0.1'), sendto(1, A, 53)], true)).not.toContain(cls);
    expect(traits([socket(1, 'inet', 'udp', '10.255.0.1'), sendto(1, '0.0.0.2', 929), sendto(1, A, 53)], true, locals)).not.toContain(cls);
  });

  it('a reply restored after its socket last queried port 53 without a redirect: the proxy gone, or a native server', () => {
    const cls = 'reply-restored-after-direct-query';
    const noProxy: Operation = { op: 'apply', state: EMPTY_STATE };
    // Query A redirected, the proxy removed, query B sent as it is: A's answer from the proxy still reads as A's.
    expect(traits([socket(1, 'inet', 'udp'), sendto(1, A, 53), noProxy, sendto(1, B, 53), recvfrom(1)])).toContain(cls);
    expect(traits([socket(1, 'inet6', 'udp'), sendto(1, `::ffff:${A}`, 53), sendto(1, 'fd00::1:1', 53), recvfrom(1)])).toContain(cls);
    // Not it: no query since the redirected one, a query to another port, or a redirected one last.
    expect(traits([socket(1, 'inet', 'udp'), sendto(1, A, 53), noProxy, recvfrom(1)])).not.toContain(cls);
    expect(traits([socket(1, 'inet', 'udp'), sendto(1, A, 53), noProxy, sendto(1, B, 5353), recvfrom(1)])).not.toContain(cls);
    expect(traits([socket(1, 'inet', 'udp'), sendto(1, A, 53), sendto(1, B, 53), recvfrom(1)])).not.toContain(cls);
    // Another socket's query without a redirect leaves this one's class alone.
    expect(traits([socket(1, 'inet', 'udp'), socket(2, 'inet', 'udp'), sendto(1, A, 53), noProxy, sendto(2, B, 53), recvfrom(1)])).not.toContain(cls);
  });
});
