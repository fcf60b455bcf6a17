// Raw map contents: anything the maps can hold, one entry per key. Half of them are consistent
// states with a few deliberate breakages (so that the data path still gets far into them), the
// other half arbitrary maps over a tiny id space (so that frontends, services, endpoints and
// backends still meet).

import fc from 'fast-check';
import { canonicalIpAddr, isIPv4Form, v4Mapped } from '../model/address.js';
import { NO_WAYPOINT, PORT_SLOTS, PRIO_GROUPS, SERVICES_PER_BACKEND, type Backend, type Endpoint, type Frontend, type IpAddr, type MapState, type Service, type Waypoint } from '../model/domain.js';
import { withBackend, withEndpoint, withMaps, withService } from '../model/records.js';
import { ipAddrArb, portArb, waypointPortArb } from './addresses.js';
import { consistentState } from './control-plane.js';

export const UNKNOWN_POLICIES: readonly number[] = [3, 7, 0xffffffff];

/** A breakage of a state; refs are resolved modulo what exists, so every mutation applies. */
export type RawMutation =
  | { readonly kind: 'dropEndpoint'; readonly ref: number }
  | { readonly kind: 'setCount'; readonly ref: number; readonly prio: number; readonly count: number }
  | { readonly kind: 'moveIndex'; readonly ref: number; readonly index: number }
  | { readonly kind: 'policy'; readonly ref: number; readonly lbPolicy: number }
  | { readonly kind: 'slot'; readonly ref: number; readonly slot: number; readonly service: number; readonly target: number }
  | { readonly kind: 'duplicatePort'; readonly ref: number; readonly target: number }
  | { readonly kind: 'halfWaypoint'; readonly target: 'service' | 'backend'; readonly ref: number; readonly part: 'addr' | 'port'; readonly addr: IpAddr; readonly port: number }
  | { readonly kind: 'mapStored'; readonly what: 'frontend' | 'backend' | 'waypoint'; readonly ref: number }
  | { readonly kind: 'danglingFrontend'; readonly addr: IpAddr; readonly upstreamId: number }
  | { readonly kind: 'danglingEndpoint'; readonly serviceId: number; readonly prio: number; readonly index: number; readonly backendUid: number }
  | { readonly kind: 'dropService'; readonly ref: number }
  | { readonly kind: 'dropBackend'; readonly ref: number }
  | { readonly kind: 'idCollision'; readonly ref: number; readonly addr: IpAddr }
  | { readonly kind: 'higherPrioOnRandom'; readonly ref: number; readonly prio: number };

const ref = fc.nat({ max: 7 });
const smallId = fc.oneof({ withCrossShrink: true }, { arbitrary: fc.integer({ min: 0, max: 5 }), weight: 12 }, { arbitrary: fc.constantFrom(0xffffffff, 0x1000000), weight: 1 });
const prio = fc.integer({ min: 0, max: PRIO_GROUPS - 1 });
const rawPort = portArb();
const rawAddr = ipAddrArb({ edges: 'raw' });
const policyArb = fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constantFrom(0, 1, 2), weight: 3 }, { arbitrary: fc.constantFrom(...UNKNOWN_POLICIES), weight: 1 });
const countArb = fc.oneof({ withCrossShrink: true }, { arbitrary: fc.integer({ min: 0, max: 3 }), weight: 20 }, { arbitrary: fc.constant(0xffffffff), weight: 1 });

export const rawMutationArb: fc.Arbitrary<RawMutation> = fc.oneof(
  fc.record({ kind: fc.constant('dropEndpoint' as const), ref }),
  fc.record({ kind: fc.constant('setCount' as const), ref, prio, count: countArb }),
  fc.record({ kind: fc.constant('moveIndex' as const), ref, index: fc.integer({ min: 0, max: 6 }) }),
  fc.record({ kind: fc.constant('policy' as const), ref, lbPolicy: fc.constantFrom(...UNKNOWN_POLICIES, 0) }),
  fc.record({ kind: fc.constant('slot' as const), ref, slot: fc.integer({ min: 0, max: PORT_SLOTS - 1 }), service: rawPort, target: fc.constantFrom(0, 80, 8080, 65535) }),
  fc.record({ kind: fc.constant('duplicatePort' as const), ref, target: rawPort }),
  fc.record({
    kind: fc.constant('halfWaypoint' as const),
    target: fc.constantFrom('service' as const, 'backend' as const),
    ref,
    part: fc.constantFrom('addr' as const, 'port' as const),
    addr: ipAddrArb(),
    port: waypointPortArb(),
  }),
  fc.record({ kind: fc.constant('mapStored' as const), what: fc.constantFrom('frontend' as const, 'backend' as const, 'waypoint' as const), ref }),
  fc.record({ kind: fc.constant('danglingFrontend' as const), addr: rawAddr, upstreamId: smallId }),
  fc.record({ kind: fc.constant('danglingEndpoint' as const), serviceId: smallId, prio, index: fc.integer({ min: 0, max: 4 }), backendUid: smallId }),
  fc.record({ kind: fc.constant('dropService' as const), ref }),
  fc.record({ kind: fc.constant('dropBackend' as const), ref }),
  fc.record({ kind: fc.constant('idCollision' as const), ref, addr: ipAddrArb() }),
  fc.record({ kind: fc.constant('higherPrioOnRandom' as const), ref, prio: fc.integer({ min: 1, max: PRIO_GROUPS - 1 }) }),
);

function pickIndex(n: number, r: number): number {
  return n === 0 ? -1 : r % n;
}

function replaceAt<T>(xs: readonly T[], i: number, x: T): T[] {
  return xs.map((y, j) => (j === i ? x : y));
}

function endpointKey(e: Pick<Endpoint, 'serviceId' | 'prio' | 'index'>): string {
  return `${e.serviceId}/${e.prio}/${e.index}`;
}

function mappedIfV4(addr: IpAddr): IpAddr {
  return isIPv4Form(addr) ? canonicalIpAddr(v4Mapped(addr)) : addr;
}

/** Adds or replaces the endpoint at its key (one entry per key). */
function putEndpoint(s: MapState, e: Endpoint): MapState {
  const rest = s.endpoints.filter((x) => endpointKey(x) !== endpointKey(e));
  return withMaps(s, { endpoints: [...rest, e] });
}

export function applyRawMutation(s: MapState, m: RawMutation): MapState {
  const si = 'ref' in m ? pickIndex(s.services.length, m.ref) : -1;
  const svc: Service | undefined = s.services[si];
  switch (m.kind) {
    case 'dropEndpoint': {
      const i = pickIndex(s.endpoints.length, m.ref);
      return i < 0 ? s : withMaps(s, { endpoints: s.endpoints.filter((_, j) => j !== i) });
    }
    case 'setCount':
      return svc ? withMaps(s, { services: replaceAt(s.services, si, withService(svc, { endpointCounts: replaceAt(svc.endpointCounts, m.prio, m.count) })) }) : s;
    case 'moveIndex': {
      const i = pickIndex(s.endpoints.length, m.ref);
      const e = s.endpoints[i];
      if (!e) return s;
      const moved = withEndpoint(e, { index: m.index });
      if (s.endpoints.some((x, j) => j !== i && endpointKey(x) === endpointKey(moved))) return s;
      return withMaps(s, { endpoints: replaceAt(s.endpoints, i, moved) });
    }
    case 'policy':
      return svc ? withMaps(s, { services: replaceAt(s.services, si, withService(svc, { lbPolicy: m.lbPolicy })) }) : s;
    case 'slot':
      if (!svc) return s;
      return withMaps(s, {
        services: replaceAt(s.services, si, withService(svc, { servicePorts: replaceAt(svc.servicePorts, m.slot, m.service), targetPorts: replaceAt(svc.targetPorts, m.slot, m.target) })),
      });
    case 'duplicatePort': {
      if (!svc) return s;
      const first = svc.servicePorts[0] ?? 0;
      const free = svc.servicePorts.findIndex((p, i) => i > 0 && p === 0);
      const slot = free < 0 ? PORT_SLOTS - 1 : free;
      return withMaps(s, {
        services: replaceAt(s.services, si, withService(svc, { servicePorts: replaceAt(svc.servicePorts, slot, first), targetPorts: replaceAt(svc.targetPorts, slot, m.target) })),
      });
    }
    case 'halfWaypoint': {
      const w: Waypoint = m.part === 'addr' ? { addr: m.addr, port: 0 } : { addr: '0.0.0.0', port: m.port };
      if (m.target === 'service') return svc ? withMaps(s, { services: replaceAt(s.services, si, withService(svc, { waypoint: w })) }) : s;
      const bi = pickIndex(s.backends.length, m.ref);
      const b = s.backends[bi];
      return b ? withMaps(s, { backends: replaceAt(s.backends, bi, withBackend(b, { waypoint: w })) }) : s;
    }
    case 'mapStored': {
      if (m.what === 'frontend') {
        const i = pickIndex(s.frontends.length, m.ref);
        const f = s.frontends[i];
        if (!f) return s;
        const addr = mappedIfV4(f.addr);
        if (s.frontends.some((x, j) => j !== i && x.addr === addr)) return s;
        return withMaps(s, { frontends: replaceAt(s.frontends, i, { ...f, addr }) });
      }
      if (m.what === 'backend') {
        const i = pickIndex(s.backends.length, m.ref);
        const b = s.backends[i];
        return b ? withMaps(s, { backends: replaceAt(s.backends, i, withBackend(b, { addr: mappedIfV4(b.addr) })) }) : s;
      }
      // A waypoint (service first, else backend) with its address stored v4-mapped.
      const v = s.services.find((x) => x.waypoint.port !== 0);
      if (v) return withMaps(s, { services: s.services.map((x) => (x === v ? withService(x, { waypoint: { addr: mappedIfV4(x.waypoint.addr), port: x.waypoint.port } }) : x)) });
      const b = s.backends.find((x) => x.waypoint.port !== 0);
      if (b) return withMaps(s, { backends: s.backends.map((x) => (x === b ? withBackend(x, { waypoint: { addr: mappedIfV4(x.waypoint.addr), port: x.waypoint.port } }) : x)) });
      return s;
    }
    case 'danglingFrontend': {
      const f: Frontend = { addr: m.addr, upstreamId: m.upstreamId };
      return withMaps(s, { frontends: [...s.frontends.filter((x) => x.addr !== m.addr), f] });
    }
    case 'danglingEndpoint':
      return putEndpoint(s, { serviceId: m.serviceId, prio: m.prio, index: m.index, backendUid: m.backendUid });
    case 'dropService':
      return svc ? withMaps(s, { services: s.services.filter((_, j) => j !== si) }) : s;
    case 'dropBackend': {
      const i = pickIndex(s.backends.length, m.ref);
      return i < 0 ? s : withMaps(s, { backends: s.backends.filter((_, j) => j !== i) });
    }
    case 'idCollision': {
      // A backend whose uid is a service id: a frontend's upstream id now means two things.
      if (!svc || s.backends.some((b) => b.uid === svc.id)) return s;
      const b: Backend = { uid: svc.id, addr: m.addr, services: [], waypoint: NO_WAYPOINT };
      return withMaps(s, { backends: [...s.backends, b] });
    }
    case 'higherPrioOnRandom': {
      // A random service that still has an endpoint in a worse group (count included).
      if (!svc) return s;
      const backendUid = s.backends[0]?.uid ?? 1;
      // Counts are u32: a raw count already at the maximum stays there.
      const count = Math.min((svc.endpointCounts[m.prio] ?? 0) + 1, 0xffffffff);
      const next: Service = withService(svc, { lbPolicy: 0, endpointCounts: replaceAt(svc.endpointCounts, m.prio, count) });
      return putEndpoint(withMaps(s, { services: replaceAt(s.services, si, next) }), { serviceId: svc.id, prio: m.prio, index: count, backendUid });
    }
  }
}

export function applyRawMutations(s: MapState, ms: readonly RawMutation[]): MapState {
  return ms.reduce(applyRawMutation, s);
}

// ---------------------------------------------------------------------------------------------
// Arbitrary maps over a tiny id space.

const rawWaypointArb: fc.Arbitrary<Waypoint> = fc.oneof(
  { withCrossShrink: true },
  { arbitrary: fc.constant(NO_WAYPOINT), weight: 6 },
  { arbitrary: fc.record({ addr: rawAddr, port: waypointPortArb() }), weight: 2 },
  { arbitrary: fc.record({ addr: rawAddr, port: fc.constant(0) }), weight: 1 },
  { arbitrary: fc.record({ addr: fc.constant('0.0.0.0'), port: waypointPortArb() }), weight: 1 },
);

const rawServiceArb: fc.Arbitrary<Service> = fc.record({
  id: smallId,
  endpointCounts: fc.array(countArb, { minLength: PRIO_GROUPS, maxLength: PRIO_GROUPS }),
  lbPolicy: policyArb,
  servicePorts: fc.array(rawPort, { minLength: PORT_SLOTS, maxLength: PORT_SLOTS }),
  targetPorts: fc.array(rawPort, { minLength: PORT_SLOTS, maxLength: PORT_SLOTS }),
  waypoint: rawWaypointArb,
});

const rawEndpointArb: fc.Arbitrary<Endpoint> = fc.record({
  serviceId: smallId,
  prio,
  index: fc.integer({ min: 1, max: 3 }),
  backendUid: smallId,
});

const rawBackendArb: fc.Arbitrary<Backend> = fc.record({
  uid: smallId,
  addr: rawAddr,
  services: fc.array(smallId, { maxLength: SERVICES_PER_BACKEND }),
  waypoint: rawWaypointArb,
});

const rawFrontendArb: fc.Arbitrary<Frontend> = fc.record({ addr: rawAddr, upstreamId: smallId });

export const randomMapsArb: fc.Arbitrary<MapState> = fc.record({
  frontends: fc.uniqueArray(rawFrontendArb, { maxLength: 4, selector: (f) => f.addr }),
  services: fc.uniqueArray(rawServiceArb, { maxLength: 3, selector: (v) => v.id }),
  endpoints: fc.uniqueArray(fc.oneof({ withCrossShrink: true }, { arbitrary: rawEndpointArb, weight: 9 }, { arbitrary: rawEndpointArb.map((e) => ({ ...e, index: 0 })), weight: 1 }), {
    maxLength: 6,
    selector: endpointKey,
  }),
  backends: fc.uniqueArray(rawBackendArb, { maxLength: 4, selector: (b) => b.uid }),
});

/** Any map contents, one entry per key. */
export function rawState(): fc.Arbitrary<MapState> {
  return fc.oneof(
    { withCrossShrink: true },
    {
      arbitrary: fc.tuple(consistentState(), fc.array(rawMutationArb, { minLength: 1, maxLength: 3 })).map(([built, ms]) => applyRawMutations(built.state, ms)),
      weight: 1,
    },
    { arbitrary: randomMapsArb, weight: 1 },
  );
}
