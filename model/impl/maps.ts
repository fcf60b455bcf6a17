// Lookup tables over a MapState, built once per state object (states are immutable and shared by
// every branch), with addresses in canonical ip_addr text and waypoints already classified.

import { canonicalIpAddr, foldedIpAddr, isAllZero } from '../address.js';
import { writtenPort, type Backend, type Family, type IpAddr, type MapPort, type MapState, type Service, type Waypoint } from '../domain.js';

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

/** A read-only lookup table: all the model asks of an index is `get`. */
export interface Lookup<K, V> {
  get(key: K): V | undefined;
}

export interface MapIndex {
  readonly frontends: Lookup<IpAddr, number>;
  readonly services: Lookup<number, IndexedService>;
  /** `${serviceId}/${prio}/${index}` -> backend uid. */
  readonly endpoints: Lookup<string, number>;
  /** `${serviceId}/${prio}` -> the indices present, ascending. */
  readonly groups: Lookup<string, readonly number[]>;
  readonly backends: Lookup<number, IndexedBackend>;
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

/**
 * The waypoint when configured (interpretation.md, items 7 and 22), with the port a rewrite
 * writes; the address is read only when the port is not 0 (the exhaustive view reads lazily).
 */
export function configuredWaypoint(port: MapPort, addrOf: () => IpAddr): Waypoint | null {
  if (port === 0) return null;
  const addr = ipKey(addrOf());
  return isAllZero(addr) ? null : { addr, port: writtenPort(port) };
}

const configured = (w: Waypoint): Waypoint | null => configuredWaypoint(w.port, () => w.addr);

export function endpointKey(serviceId: number, prio: number, index: number): string {
  return `${serviceId}/${prio}/${index}`;
}

export function groupKey(serviceId: number, prio: number): string {
  return `${serviceId}/${prio}`;
}

/** Up to this many entries a table is scanned; a longer one (a hand-written state) is hashed. */
const SCAN_LIMIT = 16;

/**
 * A lookup table filled in map-update order, later entries winning. Generated states hold a
 * handful of entries per map: scanning them from the end costs less than building and probing a
 * hash table; past SCAN_LIMIT entries it switches to a Map.
 */
class Table<K, V> implements Lookup<K, V> {
  private readonly keys: K[] = [];
  private readonly values: V[] = [];
  private hashed: Map<K, V> | null;

  constructor(size: number) {
    this.hashed = size > SCAN_LIMIT ? new Map() : null;
  }

  put(key: K, value: V): void {
    if (this.hashed) this.hashed.set(key, value);
    else {
      this.keys.push(key);
      this.values.push(value);
    }
  }

  get(key: K): V | undefined {
    if (this.hashed) return this.hashed.get(key);
    for (let i = this.keys.length - 1; i >= 0; i--) if (this.keys[i] === key) return this.values[i];
    return undefined;
  }
}

/** Present indices per `${serviceId}/${prio}`, ascending. */
function groupsOf(state: MapState): Lookup<string, readonly number[]> {
  const groups = new Map<string, number[]>();
  for (const e of state.endpoints) {
    const g = groupKey(e.serviceId, e.prio);
    let indices = groups.get(g);
    if (!indices) groups.set(g, (indices = []));
    if (!indices.includes(e.index)) indices.push(e.index);
  }
  for (const indices of groups.values()) indices.sort((a, b) => a - b);
  return groups;
}

/**
 * The index of one state. The endpoint tables are built when the model first reads them: most
 * connects stop before the endpoints (not enrolled, UDP, a frontend miss, a direct backend). The
 * others are built at once, so that an address that is no address fails where it always did.
 */
class StateIndex implements MapIndex {
  readonly frontends: Lookup<IpAddr, number>;
  readonly services: Lookup<number, IndexedService>;
  readonly backends: Lookup<number, IndexedBackend>;
  private e: Lookup<string, number> | undefined;
  private g: Lookup<string, readonly number[]> | undefined;

  constructor(private readonly state: MapState) {
    const frontends = new Table<IpAddr, number>(state.frontends.length);
    for (const f of state.frontends) frontends.put(ipKey(f.addr), f.upstreamId);
    const services = new Table<number, IndexedService>(state.services.length);
    for (const s of state.services) services.put(s.id, { service: s, waypoint: configured(s.waypoint) });
    const backends = new Table<number, IndexedBackend>(state.backends.length);
    for (const b of state.backends) backends.put(b.uid, { backend: b, addr: ipKey(b.addr), waypoint: configured(b.waypoint) });
    this.frontends = frontends;
    this.services = services;
    this.backends = backends;
  }

  get endpoints(): Lookup<string, number> {
    if (!this.e) {
      const endpoints = new Table<string, number>(this.state.endpoints.length);
      for (const e of this.state.endpoints) endpoints.put(endpointKey(e.serviceId, e.prio, e.index), e.backendUid);
      this.e = endpoints;
    }
    return this.e;
  }

  get groups(): Lookup<string, readonly number[]> {
    return (this.g ??= groupsOf(this.state));
  }
}

/** Indices given by registerIndex (exploration's lazy states). */
const registered = new WeakMap<MapState, MapIndex>();

/**
 * The states indexed last, most recent first. A case's operations read one or two states, one
 * after another, and every generated case brings new ones: a short list by identity finds them
 * without a WeakMap entry per state (whose insertion and collection cost more than the lookups
 * they would save). A state that falls off the list is indexed again if read again.
 */
const recent: { state: MapState; index: MapIndex }[] = [];
const RECENT = 4;

/**
 * Gives `state` an index built elsewhere: bounded-exhaustive exploration (generators/exhaustive)
 * hands the model a placeholder state whose index decides entries as the model reads them.
 */
export function registerIndex(state: MapState, index: MapIndex): void {
  registered.set(state, index);
  const k = recent.findIndex((r) => r.state === state);
  if (k >= 0) recent.splice(k, 1);
}

export function indexMaps(state: MapState): MapIndex {
  for (const r of recent) if (r.state === state) return r.index;
  const index = registered.get(state) ?? new StateIndex(state);
  if (recent.unshift({ state, index }) > RECENT) recent.pop();
  return index;
}
