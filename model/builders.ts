// Builders for hand-written cases in the document's terms (tests, the spec docs' examples):
// short to write, every array padded to the ABI's size.

import {
  EMPTY_STATE,
  NO_WAYPOINT,
  PORT_SLOTS,
  PRIO_GROUPS,
  type Backend,
  type Endpoint,
  type Family,
  type Frontend,
  type MapState,
  type Operation,
  type Protocol,
  type Service,
  type Waypoint,
} from './domain.js';

export function frontend(addr: string, upstreamId: number): Frontend {
  return { addr, upstreamId };
}

export interface ServiceOptions {
  /** endpoint counts from prio 0 on; missing groups are 0 */
  readonly counts?: readonly number[];
  readonly policy?: number;
  /** (service port, target port) slots from slot 0 on */
  readonly ports?: ReadonlyArray<readonly [number, number]>;
  readonly waypoint?: Waypoint;
}

export function service(id: number, o: ServiceOptions = {}): Service {
  return {
    id,
    endpointCounts: Array.from({ length: PRIO_GROUPS }, (_, i) => o.counts?.[i] ?? 0),
    lbPolicy: o.policy ?? 0,
    servicePorts: Array.from({ length: PORT_SLOTS }, (_, i) => o.ports?.[i]?.[0] ?? 0),
    targetPorts: Array.from({ length: PORT_SLOTS }, (_, i) => o.ports?.[i]?.[1] ?? 0),
    waypoint: o.waypoint ?? NO_WAYPOINT,
  };
}

export function endpoint(serviceId: number, prio: number, index: number, backendUid: number): Endpoint {
  return { serviceId, prio, index, backendUid };
}

export function backend(uid: number, addr: string, services: readonly number[] = [], waypoint: Waypoint = NO_WAYPOINT): Backend {
  return { uid, addr, services, waypoint };
}

export function maps(parts: Partial<MapState>): MapState {
  return { ...EMPTY_STATE, ...parts };
}

export function socket(sock: number, family: Family, protocol: Protocol = 'tcp', bindTo?: string): Operation {
  return bindTo === undefined ? { op: 'socket', sock, family, protocol } : { op: 'socket', sock, family, protocol, bindTo };
}

export function connect(sock: number, addr: string, port: number): Operation {
  return { op: 'connect', sock, dest: { addr, port } };
}

export function send(sock: number, messages: number): Operation {
  return { op: 'send', sock, messages };
}

export function sendto(sock: number, addr: string, port: number, n = 1): Operation {
  return { op: 'sendto', sock, dest: { addr, port }, n };
}

export function recvfrom(sock: number): Operation {
  return { op: 'recvfrom', sock };
}

export function deliver(sock: number, addr: string, port = 53): Operation {
  return { op: 'deliver', sock, from: { addr, port } };
}
