// Raw map contents: anything the maps can hold, one entry per key. Half of them are consistent
// states with a few deliberate breakages (so that the data path still gets far into them), the
// other half arbitrary maps over a tiny id space (so that frontends, services, endpoints and
// backends still meet).

import fc from 'fast-check';
import { canonicalIpAddr, isAllZero, isIPv4Form, v4Mapped } from '../model/address.js';
import {
  NO_WAYPOINT,
  PORT_SLOTS,
  PRIO_GROUPS,
  SERVICES_PER_BACKEND,
  writtenPort,
  type Backend,
  type Endpoint,
  type Frontend,
  type IpAddr,
  type MapState,
  type Service,
  type Waypoint,
} from '../model/domain.js';
import { mapEntries, numberList, numbersWith, replaceAt, withBackend, withEndpoint, withMaps, withService, zeros } from '../model/records.js';
import { ipAddrTable, portTable, WAYPOINT_PORTS } from './addresses.js';
import { arb, lengths, mix, Table, uniform, type Draw, type Gen } from './choices.js';
import { REFS } from './connect.js';
import { consistentStateGen } from './control-plane.js';

/** Policies no program knows; 0x100, 0x101 and 0x10002 end in a known one's byte or half-word (a program that reads fewer bytes takes them for it). */
export const UNKNOWN_POLICIES: readonly number[] = [3, 7, 0x100, 0x101, 0x10002, 0xffffffff];

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
  | { readonly kind: 'higherPrioOnRandom'; readonly ref: number; readonly prio: number }
  | { readonly kind: 'widePort'; readonly ref: number; readonly port: WidePortField; readonly upper: number; readonly addr: IpAddr }
  | { readonly kind: 'wideCount'; readonly upper: number }
  | { readonly kind: 'lowZeroCount'; readonly upper: number }
  | { readonly kind: 'signedEmptyCount'; readonly count: number };

/** Which map port a widePort mutation gives an upper half. */
type WidePortField = 'service' | 'target' | 'service-waypoint' | 'backend-waypoint';

const SMALL_IDS: Table<number> = mix([[0, 1, 2, 3, 4, 5], 12], [[0xffffffff, 0x1000000], 1]);
const RAW_PORTS = portTable();
const RAW_ADDRS = ipAddrTable({ edges: 'raw' });
const ADDRS = ipAddrTable();
const POLICIES: Table<number> = mix([[0, 1, 2], 3], [UNKNOWN_POLICIES, 1]);
/**
 * Endpoint counts: small ones, the largest, and wide ones whose low byte or half-word is a small
 * count (0x102, 0x10001, 0x10003): a pick that reads the count at a narrower width than its u32
 * takes them for 2, 1 or 3.
 */
const COUNTS: Table<number> = mix([[0, 1, 2, 3], 20], [[0xffffffff], 1], [[0x102, 0x10001, 0x10003], 1]);
const MUTATION_POLICIES = uniform([...UNKNOWN_POLICIES, 0]);
const SLOT_TARGETS = uniform([0, 80, 8080, 65535]);
const TARGETS = uniform(['service', 'backend'] as const);
const PARTS = uniform(['addr', 'port'] as const);
const STORED = uniform(['frontend', 'backend', 'waypoint'] as const);
/** Service ports the most: a connect meets one only through its own service's slots, a waypoint through any service or backend that has it. */
const WIDE_PORT_FIELDS = new Table<WidePortField>(['service', 'target', 'service-waypoint', 'backend-waypoint'], [3, 1, 1, 1]);
/** What wideCount adds to every count, and lowZeroCount makes every non-empty one: a byte's worth, a half-word's. */
const COUNT_WIDENINGS = uniform([0x100, 0x10000]);
/** What signedEmptyCount makes every empty group's count: negative as an int (the first also 0 at 16 and 8 bits). */
const SIGNED_EMPTY_COUNTS = uniform([0x80000000, 0xffffffff]);
/** Upper halves of a map port's u32 (interpretation.md, item 22): the lowest bit, the highest, all. */
const UPPER_HALVES = uniform([1, 0x8000, 0xffff]);

const MUTATION_KINDS = uniform<RawMutation['kind']>([
  'dropEndpoint',
  'setCount',
  'moveIndex',
  'policy',
  'slot',
  'duplicatePort',
  'halfWaypoint',
  'mapStored',
  'danglingFrontend',
  'danglingEndpoint',
  'dropService',
  'dropBackend',
  'idCollision',
  'higherPrioOnRandom',
  'widePort',
  'wideCount',
  'lowZeroCount',
  'signedEmptyCount',
]);

/** A breakage; one entry of the tape. */
export const rawMutationGen: Gen<RawMutation> = (d) =>
  d.group((g): RawMutation => {
    const kind = g.pick(MUTATION_KINDS);
    switch (kind) {
      case 'dropEndpoint':
      case 'dropService':
      case 'dropBackend':
        return { kind, ref: g.int(REFS) };
      case 'setCount':
        return { kind, ref: g.int(REFS), prio: g.int(PRIO_GROUPS), count: g.pick(COUNTS) };
      case 'moveIndex':
        return { kind, ref: g.int(REFS), index: g.int(7) };
      case 'policy':
        return { kind, ref: g.int(REFS), lbPolicy: g.pick(MUTATION_POLICIES) };
      case 'slot':
        return { kind, ref: g.int(REFS), slot: g.int(PORT_SLOTS), service: g.pick(RAW_PORTS), target: g.pick(SLOT_TARGETS) };
      case 'duplicatePort':
        return { kind, ref: g.int(REFS), target: g.pick(RAW_PORTS) };
      case 'halfWaypoint':
        return { kind, target: g.pick(TARGETS), ref: g.int(REFS), part: g.pick(PARTS), addr: g.pick(ADDRS), port: g.pick(WAYPOINT_PORTS) };
      case 'mapStored':
        return { kind, what: g.pick(STORED), ref: g.int(REFS) };
      case 'danglingFrontend':
        return { kind, addr: g.pick(RAW_ADDRS), upstreamId: g.pick(SMALL_IDS) };
      case 'danglingEndpoint':
        return { kind, serviceId: g.pick(SMALL_IDS), prio: g.int(PRIO_GROUPS), index: g.int(5), backendUid: g.pick(SMALL_IDS) };
      case 'idCollision':
        return { kind, ref: g.int(REFS), addr: g.pick(ADDRS) };
      case 'higherPrioOnRandom':
        return { kind, ref: g.int(REFS), prio: 1 + g.int(PRIO_GROUPS - 1) };
      case 'widePort':
        return { kind, ref: g.int(REFS), port: g.pick(WIDE_PORT_FIELDS), upper: g.pick(UPPER_HALVES), addr: g.pick(ADDRS) };
      case 'wideCount':
      case 'lowZeroCount':
        return { kind, upper: g.pick(COUNT_WIDENINGS) };
      case 'signedEmptyCount':
        return { kind, count: g.pick(SIGNED_EMPTY_COUNTS) };
    }
  });

export const rawMutationArb: fc.Arbitrary<RawMutation> = arb(rawMutationGen);

function pickIndex(n: number, r: number): number {
  return n === 0 ? -1 : r % n;
}

function endpointKey(e: Pick<Endpoint, 'serviceId' | 'prio' | 'index'>): string {
  return `${e.serviceId}/${e.prio}/${e.index}`;
}

/** Whether two endpoints have one key (endpointKey, without building the texts). */
function sameKey(a: Pick<Endpoint, 'serviceId' | 'prio' | 'index'>, b: Pick<Endpoint, 'serviceId' | 'prio' | 'index'>): boolean {
  return a.serviceId === b.serviceId && a.prio === b.prio && a.index === b.index;
}

function mappedIfV4(addr: IpAddr): IpAddr {
  return isIPv4Form(addr) ? canonicalIpAddr(v4Mapped(addr)) : addr;
}

/** Adds or replaces the endpoint at its key (one entry per key). */
function putEndpoint(s: MapState, e: Endpoint): MapState {
  const rest = s.endpoints.filter((x) => !sameKey(x, e));
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
      return svc ? withMaps(s, { services: replaceAt(s.services, si, withService(svc, { endpointCounts: numbersWith(svc.endpointCounts, m.prio, m.count) })) }) : s;
    case 'moveIndex': {
      const i = pickIndex(s.endpoints.length, m.ref);
      const e = s.endpoints[i];
      if (!e) return s;
      const moved = withEndpoint(e, { index: m.index });
      if (s.endpoints.some((x, j) => j !== i && sameKey(x, moved))) return s;
      return withMaps(s, { endpoints: replaceAt(s.endpoints, i, moved) });
    }
    case 'policy':
      return svc ? withMaps(s, { services: replaceAt(s.services, si, withService(svc, { lbPolicy: m.lbPolicy })) }) : s;
    case 'slot':
      if (!svc) return s;
      return withMaps(s, {
        services: replaceAt(s.services, si, withService(svc, { servicePorts: numbersWith(svc.servicePorts, m.slot, m.service), targetPorts: numbersWith(svc.targetPorts, m.slot, m.target) })),
      });
    case 'duplicatePort': {
      if (!svc) return s;
      const first = svc.servicePorts[0] ?? 0;
      const free = svc.servicePorts.findIndex((p, i) => i > 0 && p === 0);
      const slot = free < 0 ? PORT_SLOTS - 1 : free;
      return withMaps(s, {
        services: replaceAt(s.services, si, withService(svc, { servicePorts: numbersWith(svc.servicePorts, slot, first), targetPorts: numbersWith(svc.targetPorts, slot, m.target) })),
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
        return withMaps(s, { frontends: replaceAt(s.frontends, i, { addr, upstreamId: f.upstreamId }) });
      }
      if (m.what === 'backend') {
        const i = pickIndex(s.backends.length, m.ref);
        const b = s.backends[i];
        return b ? withMaps(s, { backends: replaceAt(s.backends, i, withBackend(b, { addr: mappedIfV4(b.addr) })) }) : s;
      }
      // A waypoint (service first, else backend) with its address stored v4-mapped.
      const v = s.services.find((x) => x.waypoint.port !== 0);
      if (v) return withMaps(s, { services: mapEntries(s.services, (x) => (x === v ? withService(x, { waypoint: { addr: mappedIfV4(x.waypoint.addr), port: x.waypoint.port } }) : x)) });
      const b = s.backends.find((x) => x.waypoint.port !== 0);
      if (b) return withMaps(s, { backends: mapEntries(s.backends, (x) => (x === b ? withBackend(x, { waypoint: { addr: mappedIfV4(x.waypoint.addr), port: x.waypoint.port } }) : x)) });
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
      const next: Service = withService(svc, { lbPolicy: 0, endpointCounts: numbersWith(svc.endpointCounts, m.prio, count) });
      return putEndpoint(withMaps(s, { services: replaceAt(s.services, si, next) }), { serviceId: svc.id, prio: m.prio, index: count, backendUid });
    }
    case 'widePort':
      return widenPort(s, si, m);
    case 'wideCount':
      // Every group of every service, so that whichever a connect meets has them: a count whose
      // low byte or half is the group's real count (a narrower read picks among the real
      // endpoints only, the u32 among indices mostly missing), and 0x100 or 0x10000 for an empty one.
      return withCounts(s, (c) => (c + m.upper) >>> 0);
    case 'lowZeroCount':
      // Every non-empty group's count has a low byte or half of 0: a narrower read takes the
      // group for empty (random keeps the destination, failover goes on to a later group).
      return withCounts(s, (c) => (c === 0 ? 0 : m.upper));
    case 'signedEmptyCount':
      // Every empty group's count has its top bit set, the others keep theirs: a program that
      // reads counts as signed ints takes those groups for empty (or negative) where the u32 is
      // not 0 (strict and random draw from group 0, failover stops at the first such group).
      return withCounts(s, (c) => (c === 0 ? m.count : c));
  }
}

function withCounts(s: MapState, f: (count: number) => number): MapState {
  return withMaps(s, { services: s.services.map((svc) => withService(svc, { endpointCounts: svc.endpointCounts.map(f) })) });
}

/**
 * A map port with an upper half: the service or target ports of the used slots, or a waypoint's
 * port. A waypoint without an address gets one and a port whose low half is 0 (configured by
 * its u32, port 0 by its low half); a configured one keeps its low half.
 */
function widenPort(s: MapState, si: number, m: Extract<RawMutation, { kind: 'widePort' }>): MapState {
  const widen = (port: number) => writtenPort(port) + m.upper * 0x10000;
  const widenWaypoint = (w: Waypoint): Waypoint => (isAllZero(w.addr) ? { addr: m.addr, port: m.upper * 0x10000 } : { addr: w.addr, port: widen(w.port) });
  if (m.port === 'backend-waypoint') {
    const bi = pickIndex(s.backends.length, m.ref);
    const b = s.backends[bi];
    return b ? withMaps(s, { backends: replaceAt(s.backends, bi, withBackend(b, { waypoint: widenWaypoint(b.waypoint) })) }) : s;
  }
  const svc = s.services[si];
  if (!svc) return s;
  if (m.port === 'service-waypoint') return withMaps(s, { services: replaceAt(s.services, si, withService(svc, { waypoint: widenWaypoint(svc.waypoint) })) });
  // Every used slot, so that whichever of the service's ports a connect picks meets one.
  const used = (i: number) => (svc.servicePorts[i] ?? 0) !== 0 || (svc.targetPorts[i] ?? 0) !== 0;
  const ports = m.port === 'service' ? svc.servicePorts : svc.targetPorts;
  const widened = ports.map((p, i) => (used(i) ? widen(p) : p));
  return withMaps(s, { services: replaceAt(s.services, si, withService(svc, m.port === 'service' ? { servicePorts: widened } : { targetPorts: widened })) });
}

export function applyRawMutations(s: MapState, ms: readonly RawMutation[]): MapState {
  return ms.reduce(applyRawMutation, s);
}

// ---------------------------------------------------------------------------------------------
// Arbitrary maps over a tiny id space.

type WaypointShape = 'none' | 'whole' | 'no port' | 'no address' | 'wide port';
const WAYPOINT_SHAPES = new Table<WaypointShape>(['none', 'whole', 'no port', 'no address', 'wide port'], [6, 2, 1, 1, 1]);
/** Low halves of a wide waypoint port: none (a waypoint by its u32 alone) or a waypoint port. */
const WIDE_WAYPOINT_LOWS = uniform([0, 0, 15008]);

const rawWaypointGen: Gen<Waypoint> = (d) =>
  d.group((g): Waypoint => {
    switch (g.pick(WAYPOINT_SHAPES)) {
      case 'none':
        return NO_WAYPOINT;
      case 'whole':
        return { addr: g.pick(RAW_ADDRS), port: g.pick(WAYPOINT_PORTS) };
      case 'no port':
        return { addr: g.pick(RAW_ADDRS), port: 0 };
      case 'no address':
        return { addr: '0.0.0.0', port: g.pick(WAYPOINT_PORTS) };
      case 'wide port':
        return { addr: g.pick(RAW_ADDRS), port: g.pick(WIDE_WAYPOINT_LOWS) + g.pick(UPPER_HALVES) * 0x10000 };
    }
  });

/** n values of a table, in a packed array of exactly n (a pushed-to one keeps spare room, `new Array(n)` is holey). */
function fixed(d: Draw, n: number, t: Table<number>): number[] {
  const xs = zeros(n);
  for (let i = 0; i < n; i++) xs[i] = d.pick(t);
  return xs;
}

const rawServiceGen: Gen<Service> = (d) => ({
  id: d.pick(SMALL_IDS),
  endpointCounts: fixed(d, PRIO_GROUPS, COUNTS),
  lbPolicy: d.pick(POLICIES),
  servicePorts: fixed(d, PORT_SLOTS, RAW_PORTS),
  targetPorts: fixed(d, PORT_SLOTS, RAW_PORTS),
  waypoint: rawWaypointGen(d),
});

/** Endpoint indices 1..3, now and then the invalid 0. */
const ENDPOINT_INDICES = mix([[1, 2, 3], 9], [[0], 1]);

const rawEndpointGen: Gen<Endpoint> = (d) => ({ serviceId: d.pick(SMALL_IDS), prio: d.int(PRIO_GROUPS), index: d.pick(ENDPOINT_INDICES), backendUid: d.pick(SMALL_IDS) });

const BACKEND_SERVICE_COUNTS = lengths(0, SERVICES_PER_BACKEND);

const rawBackendGen: Gen<Backend> = (d) => ({
  uid: d.pick(SMALL_IDS),
  addr: d.pick(RAW_ADDRS),
  services: numberList(d.list((g) => g.pick(SMALL_IDS), BACKEND_SERVICE_COUNTS)),
  waypoint: rawWaypointGen(d),
});

const rawFrontendGen: Gen<Frontend> = (d) => ({ addr: d.pick(RAW_ADDRS), upstreamId: d.pick(SMALL_IDS) });

/** The first of each key (a map holds one entry per key). */
function uniqueBy<T>(xs: readonly T[], key: (x: T) => string | number): T[] {
  const seen = new Set<string | number>();
  // Pushed and sliced, not filtered: an optimised filter may fill a holey array (see model/records.ts).
  const out: T[] = [];
  for (const x of xs) {
    const k = key(x);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(x);
  }
  return out.slice();
}

const UP_TO_3 = lengths(0, 3);
const UP_TO_4 = lengths(0, 4);
const UP_TO_6 = lengths(0, 6);

export const randomMapsGen: Gen<MapState> = (d) => ({
  frontends: uniqueBy(d.list(rawFrontendGen, UP_TO_4), (f) => f.addr),
  services: uniqueBy(d.list(rawServiceGen, UP_TO_3), (v) => v.id),
  endpoints: uniqueBy(d.list(rawEndpointGen, UP_TO_6), endpointKey),
  backends: uniqueBy(d.list(rawBackendGen, UP_TO_4), (b) => b.uid),
});

const MUTATION_COUNTS = lengths(1, 3);

/** Any map contents, one entry per key: a broken consistent state or arbitrary maps, equally often. */
export const rawStateGen: Gen<MapState> = (d) => d.group((g) => (g.int(2) === 0 ? applyRawMutations(consistentStateGen(g).state, g.list(rawMutationGen, MUTATION_COUNTS, 1)) : randomMapsGen(g)));

/** Any map contents, one entry per key. */
export function rawState(): fc.Arbitrary<MapState> {
  return arb(rawStateGen);
}
