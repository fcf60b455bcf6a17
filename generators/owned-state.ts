// A map state under construction that one builder owns: the control ops a plan is built from
// (DNS proxy, backends, services, frontends, endpoints, waypoints) applied in place. applyControlOp
// copies the maps on every op, which was most of what generating a consistent state cost; applied
// here the ops give the same state (the control-plane tests rebuild every generated state from
// its ops with applyControlOp and compare). Ops not handled here return false: the builder then
// applies them with applyControlOp and stops building in place.

import { DNS_PROXY_UID, NO_WAYPOINT, PORT_SLOTS, PRIO_GROUPS, type Backend, type Endpoint, type Frontend, type IpAddr, type MapState, type Service } from '../model/domain.js';
import type { ControlOp } from '../model/control-plane/control-ops.js';
import { zeros } from '../model/records.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type OwnedService = Mutable<Service> & { endpointCounts: number[] };
type OwnedBackend = Mutable<Backend> & { services: number[] };

/** A MapState whose arrays and records nobody else holds yet. */
export interface OwnedState extends MapState {
  readonly frontends: Frontend[];
  readonly services: OwnedService[];
  readonly endpoints: Endpoint[];
  readonly backends: OwnedBackend[];
}

export function emptyOwned(): OwnedState {
  return { frontends: [], services: [], endpoints: [], backends: [] };
}

/** The finished state: its lists copied at their exact size (they grew by pushes). */
export function finishOwned(s: OwnedState): MapState {
  for (const b of s.backends) b.services = b.services.slice();
  return { frontends: s.frontends.slice(), services: s.services.slice(), endpoints: s.endpoints.slice(), backends: s.backends.slice() };
}

/** Applies `op` in place when it is one of the building ops; false (and nothing changed) otherwise. */
export function applyInPlace(s: OwnedState, op: ControlOp): boolean {
  switch (op.op) {
    case 'dnsProxy': {
      const i = s.backends.findIndex((b) => b.uid === DNS_PROXY_UID);
      if (i >= 0) s.backends.splice(i, 1);
      if (op.addr !== null) s.backends.unshift({ uid: DNS_PROXY_UID, addr: op.addr, services: [], waypoint: NO_WAYPOINT });
      return true;
    }
    case 'addBackend':
      s.backends.push({ uid: op.uid, addr: op.addr, services: [], waypoint: op.waypoint });
      return true;
    case 'addFrontend': {
      const f: Frontend = { addr: op.addr, upstreamId: op.upstreamId };
      const i = frontendAt(s, op.addr);
      if (i < 0) s.frontends.push(f);
      else s.frontends[i] = f;
      return true;
    }
    case 'addService': {
      // Copies of exact-size templates: pushing would leave spare capacity that every copy of
      // the state (by the garbage collector, too) carries along.
      const servicePorts = zeros(PORT_SLOTS);
      const targetPorts = zeros(PORT_SLOTS);
      op.ports.forEach((p, i) => {
        servicePorts[i] = p.service;
        targetPorts[i] = p.target || p.service;
      });
      s.services.push({ id: op.id, endpointCounts: zeros(PRIO_GROUPS), lbPolicy: op.lbPolicy, servicePorts, targetPorts, waypoint: NO_WAYPOINT });
      return true;
    }
    case 'addEndpoint': {
      const svc = serviceOf(s, op.serviceId);
      const backend = backendOf(s, op.backendUid);
      if (!svc || !backend) return false;
      const index = (svc.endpointCounts[op.prio] ?? 0) + 1;
      const clash = endpointAt(s, svc.id, op.prio, index);
      if (clash >= 0) s.endpoints.splice(clash, 1);
      s.endpoints.push({ serviceId: svc.id, prio: op.prio, index, backendUid: backend.uid });
      svc.endpointCounts[op.prio] = index;
      if (!backend.services.includes(svc.id)) backend.services.push(svc.id);
      return true;
    }
    case 'setWaypoint': {
      const x = op.target === 'service' ? serviceOf(s, op.id) : backendOf(s, op.id);
      if (!x) return false;
      x.waypoint = op.waypoint;
      return true;
    }
    default:
      return false;
  }
}

// Lookups as plain loops: the ops above run for every generated state, and with TurboFan's small
// inlining budget (shared/v8-tuning.ts) a find with a callback is a call per element.

function serviceOf(s: OwnedState, id: number): OwnedService | undefined {
  for (const v of s.services) if (v.id === id) return v;
  return undefined;
}

function backendOf(s: OwnedState, uid: number): OwnedBackend | undefined {
  for (const b of s.backends) if (b.uid === uid) return b;
  return undefined;
}

function frontendAt(s: OwnedState, addr: IpAddr): number {
  for (let i = 0; i < s.frontends.length; i++) if ((s.frontends[i] as Frontend).addr === addr) return i;
  return -1;
}

function endpointAt(s: OwnedState, serviceId: number, prio: number, index: number): number {
  for (let i = 0; i < s.endpoints.length; i++) {
    const e = s.endpoints[i] as Endpoint;
    if (e.serviceId === serviceId && e.prio === prio && e.index === index) return i;
  }
  return -1;
}
