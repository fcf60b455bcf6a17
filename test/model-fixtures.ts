// Small builders for hand-written model cases (used by test/model-*.test.ts).

import { NO_WAYPOINT, type Backend, type Case, type Family, type MapState, type Operation, type Protocol, type Waypoint } from '../model/domain.js';

import { backend as anyBackend, connect, endpoint, frontend, maps, send, service, socket } from '../model/builders.js';

export { connect, endpoint, frontend, maps, send, service };

/** A backend in no service's list (what the model tests need). */
export function backend(uid: number, addr: string, waypoint: Waypoint = NO_WAYPOINT): Backend {
  return anyBackend(uid, addr, [], waypoint);
}

export const sock = socket;

export function mkCase(state: MapState, ops: Operation[], enrolled = true): Case {
  return { state, kind: 'raw', enrolled, ops };
}

/** One socket, one connect. */
export function oneConnect(state: MapState, family: Family, addr: string, port: number, protocol: Protocol = 'tcp', enrolled = true): Case {
  return mkCase(state, [sock(1, family, protocol), connect(1, addr, port)], enrolled);
}

// A service VIP 10.0.0.1 (id 1, port 80 -> 8080) with three prio-0 backends.
export const VIP = '10.0.0.1';
export const BACKENDS = ['10.1.0.1', '10.1.0.2', '10.1.0.3'];

export function threeBackends(policy = 0, counts: number[] = [3]): MapState {
  return maps({
    frontends: [frontend(VIP, 1)],
    services: [service(1, { counts, policy, ports: [[80, 8080]] })],
    endpoints: BACKENDS.map((_, i) => endpoint(1, 0, i + 1, 100 + i)),
    backends: BACKENDS.map((a, i) => backend(100 + i, a)),
  });
}

// A service VIP 10.0.0.1:80 routed via a waypoint VIP 10.0.0.200:15008, which resolves to one
// waypoint pod 10.2.0.1 (service 2, port 15008 -> 15008).
export const WP_VIP = '10.0.0.200';
export const WP_POD = '10.2.0.1';

export function viaWaypoint(): MapState {
  return maps({
    frontends: [frontend(VIP, 1), frontend(WP_VIP, 2)],
    services: [service(1, { counts: [1], ports: [[80, 8080]], waypoint: { addr: WP_VIP, port: 15008 } }), service(2, { counts: [1], ports: [[15008, 15008]] })],
    endpoints: [endpoint(1, 0, 1, 100), endpoint(2, 0, 1, 200)],
    backends: [backend(100, '10.1.0.1'), backend(200, WP_POD)],
  });
}
