// The reference model on the hand-written DNS scenarios of section 6 (test/support/dns-scenarios.ts).

import { describe, expect, it } from 'vitest';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { DNS_SCENARIOS, pick } from '../support/dns-scenarios.js';

describe('model: DNS over UDP (section 6)', () => {
  for (const s of DNS_SCENARIOS) {
    it(s.name, () => {
      const traces = outcomes(s.case, DEFAULT_ENVIRONMENT);
      expect(traces).toHaveLength(1);
      const obs = traces[0]!.observations;
      s.expect.forEach((e, i) => expect(pick(obs[i], e), `operation ${i + 1}`).toEqual(e));
    });
  }
});

import type { Observation } from '../../model/domain.js';
import { invariantNamed, invariants, type SpecContext } from '../../model/spec/index.js';
import type { DnsScenario } from '../support/dns-scenarios.js';

function contextOf(s: DnsScenario, observations: readonly Observation[]): SpecContext {
  return { case: s.case, env: DEFAULT_ENVIRONMENT, steps: s.case.ops.map((op, i) => ({ op, observation: observations[i]! })) };
}

const modelObs = (s: DnsScenario) => outcomes(s.case, DEFAULT_ENVIRONMENT)[0]!.observations;
const scenario = (prefix: string) => DNS_SCENARIOS.find((s) => s.name.startsWith(prefix))!;
const DNS_INVARIANTS = ['dns-query-destination', 'dns-reply-source', 'dns-exchange'];

describe('spec: the DNS invariants', () => {
  it('hold on every scenario (all invariants), and each DNS invariant is exercised', () => {
    const exercised = new Set<string>();
    for (const s of DNS_SCENARIOS) {
      const ctx = contextOf(s, modelObs(s));
      for (const inv of invariants) {
        if (inv.needs === 'passes') continue;
        const v = inv.check(ctx);
        expect(v, `${s.name}: ${inv.name}`).not.toMatchObject({ status: 'violated' });
        if (v.status === 'holds') exercised.add(inv.name);
      }
    }
    for (const n of DNS_INVARIANTS) expect(exercised, n).toContain(n);
  });

  const mutate = (s: DnsScenario, i: number, patch: Partial<Observation>): Observation[] => modelObs(s).map((o, k) => (k === i ? { ...o, ...patch } : o));

  it('dns-reply-source and dns-exchange catch the first server kept for every reply', () => {
    const s = scenario('sendto A then B');
    const ctx = contextOf(s, mutate(s, 4, { from: { addr: '10.1.0.1', port: 53 } }));
    expect(invariantNamed('dns-reply-source').check(ctx).status).toBe('violated');
    expect(invariantNamed('dns-exchange').check(ctx).status).toBe('violated');
  });

  it('dns-reply-source catches a native IPv6 source whose last 32 bits were rewritten to the server', () => {
    const s = scenario('AF_INET6, after a redirected query');
    expect(invariantNamed('dns-reply-source').check(contextOf(s, modelObs(s))).status).toBe('holds');
    expect(invariantNamed('dns-reply-source').check(contextOf(s, mutate(s, 4, { from: { addr: 'fd00::a01:1', port: 53 } }))).status).toBe('violated');
  });

  it('dns-reply-source catches a rewritten non-proxy source, and storage created by receiving', () => {
    const s = scenario('a datagram from a non-proxy source');
    expect(invariantNamed('dns-reply-source').check(contextOf(s, mutate(s, 4, { from: { addr: '10.1.0.1', port: 53 } }))).status).toBe('violated');
    const n = scenario('a socket that never sent');
    const created = { viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null };
    expect(invariantNamed('dns-reply-source').check(contextOf(n, mutate(n, 3, { storage: created }))).status).toBe('violated');
  });

  it('dns-reply-source catches a v4-mapped reply left with the proxy as its source', () => {
    const s = scenario('AF_INET6 sendto');
    expect(invariantNamed('dns-reply-source').check(contextOf(s, mutate(s, 2, { from: { addr: '::ffff:10.9.0.53', port: 53 } }))).status).toBe('violated');
  });

  it('dns-query-destination catches a query that is not redirected, and one that is when it must not be', () => {
    const s = scenario('sendto A then B');
    expect(invariantNamed('dns-query-destination').check(contextOf(s, mutate(s, 1, { arrivedAt: { addr: '10.1.0.1', port: 53 } }))).status).toBe('violated');
    const n = scenario('not enrolled');
    expect(invariantNamed('dns-query-destination').check(contextOf(n, mutate(n, 1, { arrivedAt: { addr: '10.9.0.53', port: 53 } }))).status).toBe('violated');
  });

  it('dns-exchange catches a connected socket whose answer never comes (its query redirected by the send hook)', () => {
    const s = scenario('AF_INET6 connect');
    expect(invariantNamed('dns-exchange').check(contextOf(s, mutate(s, 3, { from: null, data: null, error: 'EAGAIN' }))).status).toBe('violated');
  });
});

import { ModelInputError } from '../../model/impl/index.js';
import { deliver, socket } from '../../model/builders.js';

describe('model: what a deliver may name', () => {
  const run =
    (family: 'inet' | 'inet6', from: string, port = 53) =>
    () =>
      outcomes({ state: DNS_SCENARIOS[0]!.case.state, kind: 'consistent', enrolled: true, ops: [socket(1, family, 'udp'), deliver(1, from, port)] }, DEFAULT_ENVIRONMENT);
  it('a native IPv6 source only on an AF_INET6 socket, written as the kernel reports it', () => {
    expect(run('inet6', 'fd00::a09:35')).not.toThrow();
    expect(run('inet', 'fd00::a09:35')).toThrow(ModelInputError);
    expect(run('inet', 'fd00::a09:35')).toThrow(/AF_INET socket gets no datagram from the IPv6 address/);
    expect(run('inet6', '::ffff:10.9.0.53')).toThrow(/as its IPv4 address/);
    expect(run('inet6', 'FD00::A09:35')).toThrow(/as fd00::a09:35/);
    expect(run('inet6', '192.0.2.1')).toThrow(/not an address of the namespace/);
  });
  it('a source port below the ephemeral ports, which the case sockets get', () => {
    expect(run('inet', '10.9.0.53', 5353)).not.toThrow();
    expect(run('inet', '10.9.0.53', 1)).not.toThrow();
    expect(run('inet', '10.9.0.53', 32767)).not.toThrow();
    for (const port of [0, 32768, 40000, 70000, 53.5]) expect(run('inet', '10.9.0.53', port)).toThrow(/source port must be an integer in 1\.\.32767/);
  });
});

describe('model: what a socket may be bound to', () => {
  const run = (family: 'inet' | 'inet6', protocol: 'tcp' | 'udp', bindTo: string) => () =>
    outcomes({ state: DNS_SCENARIOS[0]!.case.state, kind: 'consistent', enrolled: true, ops: [socket(1, family, protocol, bindTo)] }, DEFAULT_ENVIRONMENT);
  it('an AF_INET UDP socket, to an IPv4 address of the namespace outside loopback, written canonically', () => {
    expect(run('inet', 'udp', '10.255.0.1')).not.toThrow();
    expect(run('inet', 'udp', '10.6.0.6')).not.toThrow();
    expect(run('inet', 'tcp', '10.6.0.6')).toThrow(/only an AF_INET UDP socket is bound/);
    expect(run('inet6', 'udp', '10.6.0.6')).toThrow(ModelInputError);
    for (const a of ['127.0.0.1', '0.0.0.0', '0.0.0.2']) expect(run('inet', 'udp', a)).toThrow(/outside 127\.0\.0\.0\/8/);
    expect(run('inet', 'udp', '192.0.2.1')).toThrow(/not an address of the namespace/);
    expect(run('inet', 'udp', '10.06.0.6')).toThrow(ModelInputError);
  });
});
