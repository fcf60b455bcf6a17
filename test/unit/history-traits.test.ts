// The history classes (properties/history-traits.ts) on hand-made cases, read off the model's
// traces, and the generator's choices that make them likelier.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arb } from '../../generators/choices.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { historyTraits } from '../../properties/history-traits.js';
import { resolveDestination, waypointedFrontendGen, type DestChoice } from '../../generators/connect.js';
import { sequenceCase } from '../../generators/cases.js';
import { CONTROL_ADDR, ControlPort, type Family, type Operation } from '../../model/domain.js';
import { backend, connect, endpoint, frontend, maps, mkCase, service, sock, viaWaypoint, VIP, WP_VIP } from '../model-fixtures.js';

// viaWaypoint() plus a VIP 10.0.0.9:80 whose only backend is reached at port 0, where nothing
// listens: its connect records the original and is refused, so the socket may connect again.
const REFUSING_VIP = '10.0.0.9';
function withRefusingService() {
  const s = viaWaypoint();
  return maps({
    frontends: [...s.frontends, frontend(REFUSING_VIP, 3)],
    services: [...s.services, service(3, { counts: [1], ports: [[80, 0]] })],
    endpoints: [...s.endpoints, endpoint(3, 0, 1, 300)],
    backends: [...s.backends, backend(300, '10.1.0.9')],
  });
}

const traitsOf = (c: ReturnType<typeof mkCase>) => historyTraits(c, outcomes(c, DEFAULT_ENVIRONMENT));

describe('once-only storage classes', () => {
  it('a refused connect that recorded, then a connect via a waypoint: both classes', () => {
    const c = mkCase(withRefusingService(), [sock(1, 'inet', 'tcp'), connect(1, REFUSING_VIP, 80), connect(1, VIP, 80)]);
    const t = outcomes(c, DEFAULT_ENVIRONMENT)[0]!;
    // The premise: the first connect recorded its original without a waypoint and failed.
    expect(t.observations[1]).toMatchObject({ error: expect.any(String), storage: { hasSetIp: true, viaWaypoint: false } });
    expect(t.observations[2]?.storage).toMatchObject({ viaWaypoint: true, original: { addr: REFUSING_VIP, port: 80 } });
    expect([...traitsOf(c)].sort()).toEqual(['original-kept', 'waypoint-after-original']);
  });

  it('the same again to the refusing VIP keeps the original but asks for no other destination: neither class', () => {
    const c = mkCase(withRefusingService(), [sock(1, 'inet', 'tcp'), connect(1, REFUSING_VIP, 80), connect(1, REFUSING_VIP, 80)]);
    expect([...traitsOf(c)]).toEqual([]);
  });

  it('a fresh socket under the same id starts over: neither class', () => {
    const c = mkCase(withRefusingService(), [sock(1, 'inet', 'tcp'), connect(1, REFUSING_VIP, 80), { op: 'close', sock: 1 }, sock(1, 'inet', 'tcp'), connect(1, VIP, 80)]);
    expect([...traitsOf(c)]).toEqual([]);
  });

  it('a connected socket connects again in vain (EISCONN, no program runs): neither class', () => {
    const c = mkCase(viaWaypoint(), [sock(1, 'inet', 'tcp'), connect(1, WP_VIP, 15008), connect(1, VIP, 80)]);
    expect([...traitsOf(c)]).toEqual([]);
  });
});

/** An enrolment change from a TCP socket of its own (id 9), as the sequences' enrolment command makes it. */
function enrolment(family: Family, port: number): Operation[] {
  return [sock(9, family, 'tcp'), connect(9, CONTROL_ADDR[family], port), { op: 'close', sock: 9 }];
}

describe('waypoint-bound socket from a local IP that is not enrolled', () => {
  const wayOut = (family: Family) => [sock(1, family, 'tcp'), connect(1, family === 'inet' ? VIP : `::ffff:${VIP}`, 80)];

  it('enrolled from ::1, then a connect from 127.0.0.1 (AF_INET, or v4-mapped on AF_INET6) via a waypoint: the class', () => {
    for (const family of ['inet', 'inet6'] as const) {
      const c = mkCase(viaWaypoint(), [...enrolment('inet6', ControlPort.enrol), ...wayOut(family)], false);
      const t = outcomes(c, DEFAULT_ENVIRONMENT)[0]!;
      // The premise: established via the waypoint, its storage says so, and it is not in km_socket.
      expect(t.observations[4]).toMatchObject({ peer: { port: 15008 }, storage: { viaWaypoint: true }, inSockhash: false });
      expect([...traitsOf(c)]).toEqual(['waypoint-local-unenrolled']);
    }
  });

  it('enrolled from 127.0.0.1: the socket is in km_socket, no class', () => {
    const c = mkCase(viaWaypoint(), [...enrolment('inet', ControlPort.enrol), ...wayOut('inet')], false);
    expect(outcomes(c, DEFAULT_ENVIRONMENT)[0]!.observations[4]).toMatchObject({ storage: { viaWaypoint: true }, inSockhash: true });
    expect([...traitsOf(c)]).toEqual([]);
  });

  it('withdrawn from 127.0.0.1 and enrolled again from ::1: the class; withdrawn only: no program runs, no class', () => {
    const again = mkCase(viaWaypoint(), [...enrolment('inet', ControlPort.withdraw), ...enrolment('inet6', ControlPort.enrol), ...wayOut('inet')]);
    expect([...traitsOf(again)]).toEqual(['waypoint-local-unenrolled']);
    const withdrawn = mkCase(viaWaypoint(), [...enrolment('inet', ControlPort.withdraw), ...wayOut('inet')]);
    expect(outcomes(withdrawn, DEFAULT_ENVIRONMENT)[0]!.observations[4]?.storage).toBeNull();
    expect([...traitsOf(withdrawn)]).toEqual([]);
  });

  it('sequences hold enrolment changes from sockets of their own, of both families and both ports', () => {
    const seen = new Set<string>();
    for (const c of fc.sample(sequenceCase({ kind: 'both' }), { seed: 3, numRuns: 300 })) {
      c.ops.forEach((op, i) => {
        const next = c.ops[i + 1];
        const after = c.ops[i + 2];
        if (op.op !== 'socket' || op.protocol !== 'tcp' || next?.op !== 'connect' || next.sock !== op.sock || after?.op !== 'close' || after.sock !== op.sock) return;
        if (next.dest.addr === CONTROL_ADDR[op.family]) seen.add(`${op.family}:${next.dest.port}`);
      });
    }
    expect([...seen].sort()).toEqual(['inet6:929', 'inet6:930', 'inet:929', 'inet:930']);
  });
});

describe('waypointed frontend choice', () => {
  it('names a frontend whose service has a waypoint whatever its ref, and any frontend when none has', () => {
    const choices: DestChoice[] = [];
    for (let ref = 0; ref < 8; ref++) choices.push({ to: 'frontend', ref, port: { from: 'service', ref: 0 }, form: 'mapped', waypointed: true });
    for (const c of choices) expect(resolveDestination(viaWaypoint(), 'inet', c).addr).toBe(VIP);
    const plain = maps({ frontends: [frontend(VIP, 1), frontend(REFUSING_VIP, 3)], services: [service(1, { counts: [1], ports: [[80, 8080]] }), service(3, { counts: [1], ports: [[80, 0]] })] });
    expect(new Set(choices.map((c) => resolveDestination(plain, 'inet', c).addr))).toEqual(new Set([VIP, REFUSING_VIP]));
  });

  it('the generator draws only waypointed frontend choices', () => {
    const drawn = fc.sample(arb(waypointedFrontendGen), { seed: 1, numRuns: 50 });
    for (const c of drawn) expect(c).toMatchObject({ to: 'frontend', waypointed: true });
    expect(new Set(drawn.map((c) => (c as { ref: number }).ref)).size).toBeGreaterThan(1);
  });
});
