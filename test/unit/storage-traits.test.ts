// The once-only storage classes (properties/storage-traits.ts) on hand-made cases, read off the
// model's traces, and the generator's choice that makes the waypoint one likelier.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arb } from '../../generators/choices.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { storageTraits } from '../../properties/storage-traits.js';
import { resolveDestination, waypointedFrontendGen, type DestChoice } from '../../generators/connect.js';
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

const traitsOf = (c: ReturnType<typeof mkCase>) => storageTraits(c, outcomes(c, DEFAULT_ENVIRONMENT));

describe('storage traits', () => {
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
