// Lookup tables over a MapState, built once per state object (states are immutable and shared by
// every branch), with addresses in canonical ip_addr text and waypoints already classified.

import { canonicalIpAddr, foldedIpAddr, isAllZero } from '../address.js';
import type { Backend, Family, IpAddr, MapState, Service, Waypoint } from '../domain.js';

export interface IndexedService {
  readonly service: Service;
  /** The waypoint when configured (interpretation.md, item 7), address canonical. */
  readonly waypoint: Waypoint | null;
}

export interface IndexedBackend {
  readonly backend: Backend;
  readonly addr: IpAddr;
  readonly waypoint: Waypoint | null;
}

export interface MapIndex {
  readonly frontends: ReadonlyMap<IpAddr, number>;
  readonly services: ReadonlyMap<number, IndexedService>;
  /** `${serviceId}/${prio}/${index}` -> backend uid. */
  readonly endpoints: ReadonlyMap<string, number>;
  /** `${serviceId}/${prio}` -> the indices present, ascending. */
  readonly groups: ReadonlyMap<string, readonly number[]>;
  readonly backends: ReadonlyMap<number, IndexedBackend>;
}

/** Canonical ip_addr text (interned by model/address: generators reuse few addresses). */
export function ipKey(text: string): IpAddr {
  return canonicalIpAddr(text);
}

/** IPv6 socket text as an ip_addr key with a v4-mapped address folded to its IPv4 key. */
function foldedKey(addr: string): IpAddr {
  return foldedIpAddr(addr);
}

/** km_frontend key of a destination in the socket's family (interpretation.md, item 2). */
export function frontendKeyOf(family: Family, addr: string): IpAddr {
  return family === 'inet' ? addr : foldedKey(addr);
}

/** The km_manage key of a local address: v4-mapped folded to IPv4 (interpretation.md, item 9). */
export function localIpKey(addr: string): IpAddr {
  return foldedKey(addr);
}

function configured(w: Waypoint): Waypoint | null {
  if (w.port === 0) return null;
  const addr = ipKey(w.addr);
  return isAllZero(addr) ? null : { addr, port: w.port };
}

export function endpointKey(serviceId: number, prio: number, index: number): string {
  return `${serviceId}/${prio}/${index}`;
}

export function groupKey(serviceId: number, prio: number): string {
  return `${serviceId}/${prio}`;
}

function build(state: MapState): MapIndex {
  // Later entries win, as map updates applied in order would.
  const frontends = new Map<IpAddr, number>();
  for (const f of state.frontends) frontends.set(ipKey(f.addr), f.upstreamId);
  const services = new Map<number, IndexedService>();
  for (const s of state.services) services.set(s.id, { service: s, waypoint: configured(s.waypoint) });
  const endpoints = new Map<string, number>();
  const groupSets = new Map<string, Set<number>>();
  for (const e of state.endpoints) {
    endpoints.set(endpointKey(e.serviceId, e.prio, e.index), e.backendUid);
    const g = groupKey(e.serviceId, e.prio);
    let set = groupSets.get(g);
    if (!set) groupSets.set(g, (set = new Set()));
    set.add(e.index);
  }
  const groups = new Map<string, readonly number[]>();
  for (const [g, set] of groupSets)
    groups.set(
      g,
      [...set].sort((a, b) => a - b),
    );
  const backends = new Map<number, IndexedBackend>();
  for (const b of state.backends) backends.set(b.uid, { backend: b, addr: ipKey(b.addr), waypoint: configured(b.waypoint) });
  return { frontends, services, endpoints, groups, backends };
}

const cache = new WeakMap<MapState, MapIndex>();

/**
 * Gives `state` an index built elsewhere: bounded-exhaustive exploration (generators/exhaustive)
 * hands the model a placeholder state whose index decides entries as the model reads them.
 */
export function registerIndex(state: MapState, index: MapIndex): void {
  cache.set(state, index);
}

export function indexMaps(state: MapState): MapIndex {
  let idx = cache.get(state);
  if (!idx) {
    idx = build(state);
    cache.set(state, idx);
  }
  return idx;
}
