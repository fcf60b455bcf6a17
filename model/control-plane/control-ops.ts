// Control-plane operations as a control plane writes them (kmesh-dataplane.md, section 5), each a
// small pure function from one MapState to the next. Applied in order to EMPTY_STATE they rebuild
// a consistent state, so the list is a readable account of how a state came about.
// An operation that does not fit the state (an unknown id, a taken id) throws: the generators
// only emit fitting ones, and a hand-written list that does not fit is a mistake worth naming.

import {
  DNS_PROXY_UID,
  NO_WAYPOINT,
  PORT_SLOTS,
  PRIO_GROUPS,
  SERVICES_PER_BACKEND,
  LbPolicy,
  type Backend,
  type Endpoint,
  type Frontend,
  type IpAddr,
  type MapState,
  type Service,
  type Waypoint,
} from '../domain.js';
import { isAllZero, sockAddrText } from '../address.js';
import { mapEntries, numbersWith, replaceAt, withBackend, withEndpoint, withMaps, withService, zeros } from '../records.js';

export interface PortSlot {
  readonly service: number;
  /** 0 means "the service port" and is replaced by it when written. */
  readonly target: number;
}

export type ControlOp =
  | { readonly op: 'addService'; readonly id: number; readonly lbPolicy: number; readonly ports: readonly PortSlot[] }
  | { readonly op: 'removeService'; readonly id: number }
  | { readonly op: 'addEndpoint'; readonly serviceId: number; readonly prio: number; readonly backendUid: number }
  | { readonly op: 'deleteEndpoint'; readonly serviceId: number; readonly prio: number; readonly index: number }
  | { readonly op: 'addBackend'; readonly uid: number; readonly addr: IpAddr; readonly waypoint: Waypoint }
  | { readonly op: 'removeBackend'; readonly uid: number }
  | { readonly op: 'setWaypoint'; readonly target: 'service' | 'backend'; readonly id: number; readonly waypoint: Waypoint }
  | { readonly op: 'setLbPolicy'; readonly id: number; readonly lbPolicy: number }
  | { readonly op: 'addFrontend'; readonly addr: IpAddr; readonly upstreamId: number }
  | { readonly op: 'removeFrontend'; readonly addr: IpAddr }
  | { readonly op: 'dnsProxy'; readonly addr: IpAddr | null };

export class ControlOpError extends Error {}

function fail(op: ControlOp, why: string): never {
  throw new ControlOpError(`control op ${formatControlOp(op)}: ${why}; emit ops that fit the state they apply to`);
}

/** Whether an id is taken: service ids and backend uids come from one allocator. */
export function idTaken(s: MapState, id: number): boolean {
  // Plain loops: generation asks this for every id it allocates.
  for (const v of s.services) if (v.id === id) return true;
  for (const b of s.backends) if (b.uid === id) return true;
  return false;
}

/** Address and port together, or neither (section 5). */
export function waypointWhole(w: Waypoint): boolean {
  return (w.port === 0) === isAllZero(w.addr);
}

function sameKey(a: Endpoint, b: Endpoint): boolean {
  return a.serviceId === b.serviceId && a.prio === b.prio && a.index === b.index;
}

/** Writes endpoints as map updates: an entry already at one of their keys is replaced. */
function putEndpoints(existing: readonly Endpoint[], written: readonly Endpoint[]): Endpoint[] {
  const overwritten = (e: Endpoint) => {
    for (const w of written) if (sameKey(w, e)) return true;
    return false;
  };
  // Most writes land on a free key: then the entries are copied as they are.
  let clash = false;
  for (const e of existing) if (overwritten(e)) clash = true;
  return [...(clash ? existing.filter((e) => !overwritten(e)) : existing), ...written];
}

function withoutServiceOnBackend(b: Backend, id: number): Backend {
  return b.services.includes(id) ? withBackend(b, { services: b.services.filter((x) => x !== id) }) : b;
}

/** Deletes endpoint (service, prio, index): the last index moves into the hole. */
function deleteEndpointIn(s: MapState, serviceId: number, prio: number, index: number): MapState {
  const si = s.services.findIndex((v) => v.id === serviceId);
  const svc = s.services[si];
  if (!svc) return s;
  const count = svc.endpointCounts[prio] ?? 0;
  const victim = s.endpoints.find((e) => e.serviceId === serviceId && e.prio === prio && e.index === index);
  if (!victim || index < 1 || index > count) return s;
  let endpoints = s.endpoints.filter((e) => e !== victim);
  if (index !== count) {
    endpoints = mapEntries(endpoints, (e) => (e.serviceId === serviceId && e.prio === prio && e.index === count ? withEndpoint(e, { index }) : e));
  }
  const counts = numbersWith(svc.endpointCounts, prio, count - 1);
  const services = replaceAt(s.services, si, withService(svc, { endpointCounts: counts }));
  // The backend leaves the service's list once no endpoint of that service refers to it.
  const stillThere = endpoints.some((e) => e.serviceId === serviceId && e.backendUid === victim.backendUid);
  const backends = stillThere ? s.backends : mapEntries(s.backends, (b) => (b.uid === victim.backendUid ? withoutServiceOnBackend(b, serviceId) : b));
  return withMaps(s, { services, endpoints, backends });
}

function addService(s: MapState, op: Extract<ControlOp, { op: 'addService' }>): MapState {
  if (idTaken(s, op.id) || op.id === DNS_PROXY_UID) fail(op, `id ${op.id} is taken or reserved`);
  if (op.ports.length > PORT_SLOTS) fail(op, `at most ${PORT_SLOTS} port slots`);
  const servicePorts = zeros(PORT_SLOTS);
  const targetPorts = zeros(PORT_SLOTS);
  for (let i = 0; i < op.ports.length; i++) {
    const p = op.ports[i]!;
    if (p.service < 1 || p.service > 65535) fail(op, `service port ${p.service} is not 1..65535`);
    for (let j = 0; j < i; j++) if (op.ports[j]!.service === p.service) fail(op, `service port ${p.service} twice`);
    servicePorts[i] = p.service;
    targetPorts[i] = p.target === 0 ? p.service : p.target;
  }
  const svc: Service = {
    id: op.id,
    endpointCounts: zeros(PRIO_GROUPS),
    lbPolicy: op.lbPolicy,
    servicePorts,
    targetPorts,
    waypoint: NO_WAYPOINT,
  };
  return withMaps(s, { services: [...s.services, svc] });
}

/** Removes a service with its endpoints and the frontends that lead to it. */
function removeService(s: MapState, id: number): MapState {
  return {
    frontends: s.frontends.filter((f) => f.upstreamId !== id),
    services: s.services.filter((v) => v.id !== id),
    endpoints: s.endpoints.filter((e) => e.serviceId !== id),
    backends: mapEntries(s.backends, (b) => withoutServiceOnBackend(b, id)),
  };
}

function addEndpoint(s: MapState, op: Extract<ControlOp, { op: 'addEndpoint' }>): MapState {
  const si = s.services.findIndex((v) => v.id === op.serviceId);
  const svc = s.services[si];
  if (!svc) fail(op, `no service ${op.serviceId}`);
  const bi = s.backends.findIndex((b) => b.uid === op.backendUid);
  const backend = s.backends[bi];
  if (!backend || op.backendUid === DNS_PROXY_UID) fail(op, `no backend ${op.backendUid}`);
  if (op.prio < 0 || op.prio >= PRIO_GROUPS) fail(op, `prio must be 0..${PRIO_GROUPS - 1}`);
  if (svc.lbPolicy === LbPolicy.random && op.prio !== 0) fail(op, 'a random service keeps every endpoint at prio 0');
  if (s.endpoints.some((e) => e.serviceId === svc.id && e.backendUid === backend.uid)) {
    fail(op, `backend ${backend.uid} is already an endpoint of service ${svc.id}`);
  }
  if (!backend.services.includes(svc.id) && backend.services.length >= SERVICES_PER_BACKEND) {
    fail(op, `backend ${backend.uid} is already in ${SERVICES_PER_BACKEND} services`);
  }
  const count = svc.endpointCounts[op.prio] ?? 0;
  if (count >= 0xffffffff) fail(op, `count[${op.prio}] is at its u32 maximum`);
  // Written at count+1 first, then the count is bumped: never a dangling index.
  const endpoint: Endpoint = { serviceId: svc.id, prio: op.prio, index: count + 1, backendUid: backend.uid };
  const services = replaceAt(s.services, si, withService(svc, { endpointCounts: numbersWith(svc.endpointCounts, op.prio, count + 1) }));
  const backends = backend.services.includes(svc.id) ? s.backends : replaceAt(s.backends, bi, withBackend(backend, { services: [...backend.services, svc.id] }));
  return withMaps(s, { services, endpoints: putEndpoints(s.endpoints, [endpoint]), backends });
}

function removeBackend(s: MapState, uid: number): MapState {
  let out = s;
  // Delete its endpoints one by one, highest index first, so every group stays dense.
  const mine = s.endpoints.filter((e) => e.backendUid === uid).sort((a, b) => b.index - a.index);
  for (const e of mine) {
    const current = out.endpoints.find((x) => x.serviceId === e.serviceId && x.prio === e.prio && x.backendUid === uid);
    if (current) out = deleteEndpointIn(out, current.serviceId, current.prio, current.index);
  }
  return withMaps(out, { frontends: out.frontends.filter((f) => f.upstreamId !== uid), backends: out.backends.filter((b) => b.uid !== uid) });
}

/**
 * Switching policy. Switching to random keeps section 5's rule: the endpoints of prio 1..6 are
 * appended to group 0 (in prio, then index order) and the other groups emptied.
 */
function setLbPolicy(s: MapState, id: number, lbPolicy: number): MapState {
  const si = s.services.findIndex((v) => v.id === id);
  const svc = s.services[si];
  if (!svc) return s;
  if (lbPolicy !== LbPolicy.random) {
    return withMaps(s, { services: replaceAt(s.services, si, withService(svc, { lbPolicy })) });
  }
  const others = s.endpoints.filter((e) => e.serviceId === id && e.prio !== 0).sort((a, b) => a.prio - b.prio || a.index - b.index);
  let next = svc.endpointCounts[0] ?? 0;
  if (next + others.length > 0xffffffff) throw new ControlOpError(`switching service ${id} to random would push count[0] past its u32 maximum`);
  const moved = new Map<Endpoint, Endpoint>();
  for (const e of others) moved.set(e, withEndpoint(e, { prio: 0, index: ++next }));
  const counts = zeros(svc.endpointCounts.length);
  if (counts.length > 0) counts[0] = next;
  return withMaps(s, {
    services: replaceAt(s.services, si, withService(svc, { lbPolicy, endpointCounts: counts })),
    endpoints: putEndpoints(
      s.endpoints.filter((e) => !moved.has(e)),
      [...moved.values()],
    ),
  });
}

function setWaypoint(s: MapState, op: Extract<ControlOp, { op: 'setWaypoint' }>): MapState {
  if (!waypointWhole(op.waypoint)) fail(op, 'a waypoint is written with address and port together');
  if (op.target === 'service') {
    if (!s.services.some((v) => v.id === op.id)) fail(op, `no service ${op.id}`);
    return withMaps(s, { services: mapEntries(s.services, (v) => (v.id === op.id ? withService(v, { waypoint: op.waypoint }) : v)) });
  }
  if (!s.backends.some((b) => b.uid === op.id) || op.id === DNS_PROXY_UID) fail(op, `no backend ${op.id}`);
  return withMaps(s, { backends: mapEntries(s.backends, (b) => (b.uid === op.id ? withBackend(b, { waypoint: op.waypoint }) : b)) });
}

/** One key, one entry: a new frontend at an address replaces the old one. */
function addFrontend(s: MapState, op: Extract<ControlOp, { op: 'addFrontend' }>): MapState {
  if (!idTaken(s, op.upstreamId) || op.upstreamId === DNS_PROXY_UID) fail(op, `no service or backend ${op.upstreamId}`);
  const f: Frontend = { addr: op.addr, upstreamId: op.upstreamId };
  const i = s.frontends.findIndex((x) => x.addr === op.addr);
  return withMaps(s, { frontends: i < 0 ? [...s.frontends, f] : replaceAt(s.frontends, i, f) });
}

function dnsProxy(s: MapState, addr: IpAddr | null): MapState {
  const rest = s.backends.filter((b) => b.uid !== DNS_PROXY_UID);
  if (addr === null) return withMaps(s, { backends: rest });
  const proxy: Backend = { uid: DNS_PROXY_UID, addr, services: [], waypoint: NO_WAYPOINT };
  return withMaps(s, { backends: [proxy, ...rest] });
}

export function applyControlOp(s: MapState, op: ControlOp): MapState {
  switch (op.op) {
    case 'addService':
      return addService(s, op);
    case 'removeService':
      return removeService(s, op.id);
    case 'addEndpoint':
      return addEndpoint(s, op);
    case 'deleteEndpoint': {
      const svc = s.services.find((v) => v.id === op.serviceId);
      if (!svc || op.index < 1 || op.index > (svc.endpointCounts[op.prio] ?? 0)) fail(op, 'no such endpoint');
      return deleteEndpointIn(s, op.serviceId, op.prio, op.index);
    }
    case 'addBackend': {
      if (idTaken(s, op.uid) || op.uid === DNS_PROXY_UID) fail(op, `uid ${op.uid} is taken or reserved`);
      if (!waypointWhole(op.waypoint)) fail(op, 'a waypoint is written with address and port together');
      return withMaps(s, { backends: [...s.backends, { uid: op.uid, addr: op.addr, services: [], waypoint: op.waypoint }] });
    }
    case 'removeBackend':
      if (op.uid === DNS_PROXY_UID) fail(op, 'the DNS proxy is switched off with dnsProxy null');
      return removeBackend(s, op.uid);
    case 'setWaypoint':
      return setWaypoint(s, op);
    case 'setLbPolicy':
      return setLbPolicy(s, op.id, op.lbPolicy);
    case 'addFrontend':
      return addFrontend(s, op);
    case 'removeFrontend':
      return withMaps(s, { frontends: s.frontends.filter((f) => f.addr !== op.addr) });
    case 'dnsProxy':
      return dnsProxy(s, op.addr);
  }
}

export function applyControlOps(s: MapState, ops: readonly ControlOp[]): MapState {
  return ops.reduce(applyControlOp, s);
}

function wpText(w: Waypoint): string {
  return w.port === 0 ? 'none' : sockAddrText(w);
}

const POLICY_NAMES = ['random', 'strict', 'failover'];

/** One line per op, for reports. */
export function formatControlOp(op: ControlOp): string {
  switch (op.op) {
    case 'addService': {
      const ports = op.ports.map((p) => `${p.service}->${p.target || p.service}`).join(' ') || '-';
      return `add service ${op.id} ${POLICY_NAMES[op.lbPolicy] ?? `policy(${op.lbPolicy})`} ports ${ports}`;
    }
    case 'removeService':
      return `remove service ${op.id}`;
    case 'addEndpoint':
      return `add endpoint service ${op.serviceId} prio ${op.prio} -> backend ${op.backendUid}`;
    case 'deleteEndpoint':
      return `delete endpoint service ${op.serviceId} prio ${op.prio} index ${op.index}`;
    case 'addBackend':
      return `add backend ${op.uid} ${op.addr} waypoint ${wpText(op.waypoint)}`;
    case 'removeBackend':
      return `remove backend ${op.uid}`;
    case 'setWaypoint':
      return `set ${op.target} ${op.id} waypoint ${wpText(op.waypoint)}`;
    case 'setLbPolicy':
      return `set service ${op.id} policy ${POLICY_NAMES[op.lbPolicy] ?? op.lbPolicy}`;
    case 'addFrontend':
      return `add frontend ${op.addr} -> ${op.upstreamId}`;
    case 'removeFrontend':
      return `remove frontend ${op.addr}`;
    case 'dnsProxy':
      return op.addr === null ? 'dns proxy off' : `dns proxy ${op.addr}`;
  }
}
