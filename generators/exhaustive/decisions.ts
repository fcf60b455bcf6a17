// The shared decision record of one choice sequence: a map state that starts undecided and is
// decided one read at a time. Whoever reads first (the reference model or the compiled program in
// the VM) asks the oracle, which answers with the index of an alternative ("absent" first for
// entries, then the value classes of generators/exhaustive/classes.ts); the other reader then sees
// the same answer. Ids and pooled addresses are "an existing one or the next fresh one", so states
// that differ only by a renaming are enumerated once. What nobody reads stays absent (entries) or
// zero (fields of a present entry), and toState() gives the concrete MapState of the sequence.

import { canonicalIpAddr, foldedIpAddr, isAllZero } from '../../model/address.js';
import { PORT_SLOTS, PRIO_GROUPS, type Backend, type IpAddr, type MapState, type Service } from '../../model/domain.js';
import {
  ADDRESS_CLASSES,
  DNS_PROXY_ADDRESS_CLASSES,
  LB_POLICY_CLASSES,
  SERVICE_PORT_CLASSES,
  STORED_ADDRESS_CLASSES,
  TARGET_PORT_CLASSES,
  WAYPOINT_PORT_CLASSES,
  addressClass,
  allowed,
  countCost,
  countValues,
  endpointIndexLimit,
  deviationCost,
  deviationsAt,
  portSlotsAt,
  type ValueClass,
} from './classes.js';

/** Answers choice points: the index (0-based) of the alternative taken among `size`. */
export interface Oracle {
  choose(label: string, size: number): number;
}

/** A present service's or backend's fields, by name; missing names are undecided. */
export type Fields = Map<string, number | string>;

export const SERVICE_FIELDS = [
  ...Array.from({ length: PRIO_GROUPS }, (_, p) => `count${p}`),
  'policy',
  ...Array.from({ length: PORT_SLOTS }, (_, i) => `sport${i}`),
  ...Array.from({ length: PORT_SLOTS }, (_, i) => `tport${i}`),
  'wpAddr',
  'wpPort',
] as const;

export const BACKEND_FIELDS = ['addr', 'serviceCount', ...Array.from({ length: 10 }, (_, i) => `service${i}`), 'wpAddr', 'wpPort'] as const;

const ZERO_ADDR = '0.0.0.0';

export class Decisions {
  private readonly ids: number[] = [];
  private readonly pools = new Map<string, number>();
  readonly frontends = new Map<IpAddr, number | null>();
  readonly services = new Map<number, Fields | null>();
  readonly endpoints = new Map<string, number | null>();
  readonly backends = new Map<number, Fields | null>();
  /** Choice points answered (with more than one alternative). */
  choices = 0;
  /**
   * Answers beyond scope 1 still allowed along this sequence (see DEVIATIONS in classes.ts): a value
   * of a class from scope 2 on, an endpoint count above 1, a port slot other than the first.
   */
  private deviationsLeft: number;
  /** Present entries per map: at most `scope` each (the small-scope bound on the state). */
  private readonly present = { frontend: 0, service: 0, endpoint: 0, backend: 0 };
  /**
   * The km_frontend keys of the waypoint addresses decided so far (as given, and v4-mapped folded
   * to IPv4): the keys the next pass of a waypoint chain looks up. An entry under one of them is
   * part of its waypoint (the waypoint's VIP), not a second frontend entry (see deviationsAt).
   */
  private readonly waypointKeys = new Set<IpAddr>();

  /** A second and later id is a deviation. */
  private idCost(): number {
    return this.ids.length > 0 ? 1 : 0;
  }

  /** A second and later frontend or endpoint entry is a deviation (services and backends pay by their ids). */
  private entryCost(map: 'frontend' | 'endpoint'): number {
    return this.present[map] > 0 ? 1 : 0;
  }

  /** A frontend entry costs as a second entry unless its key is a waypoint's address (its VIP). */
  private frontendCost(key: IpAddr): number {
    return this.waypointKeys.has(key) ? 0 : this.entryCost('frontend');
  }

  /** Whether one more entry of `map` fits the scope (if not, a read of a new key finds it absent). */
  private room(map: keyof Decisions['present']): boolean {
    return this.present[map] < this.scope;
  }

  constructor(
    readonly scope: number,
    private readonly oracle: Oracle,
    /** Deviations the top-level choices (the skeleton) already used. */
    used = 0,
  ) {
    this.deviationsLeft = deviationsAt(scope) - used;
  }

  private choose(label: string, size: number): number {
    if (size <= 1) return 0;
    this.choices++;
    const i = this.oracle.choose(label, size);
    if (!Number.isInteger(i) || i < 0 || i >= size) throw new Error(`oracle answered ${i} for ${label} with ${size} alternatives`);
    return i;
  }

  /**
   * One of the alternatives, each with its cost in deviations: those the sequence can no longer
   * afford are not offered (the oracle sees the others only); returns the index into `costs`.
   */
  private chooseCosted(label: string, costs: readonly number[]): number {
    const offered: number[] = [];
    costs.forEach((c, i) => {
      if (c <= this.deviationsLeft) offered.push(i);
    });
    const i = offered[this.choose(label, offered.length)] as number;
    this.deviationsLeft -= costs[i] as number;
    return i;
  }

  /** An id: one of the existing ones or the next fresh one (at most `scope` ids). */
  private pickId(label: string): number {
    const fresh = this.ids.length < this.scope;
    const i = this.chooseCosted(label, [...new Array<number>(this.ids.length).fill(0), ...(fresh ? [this.idCost()] : [])]);
    if (i < this.ids.length) return this.ids[i] as number;
    const id = this.ids.length + 1;
    this.ids.push(id);
    return id;
  }

  /** Registers an address as existing (a connect's destination) so later picks can reuse it. */
  useAddress(className: string, n: number): string {
    const c = addressClass(className);
    if (c.pool) this.pools.set(c.pool, Math.max(this.pools.get(c.pool) ?? 0, n));
    return c.render(n);
  }

  /**
   * An address of one of the classes: an existing one of a pool, its next fresh one, or a fixed
   * one. `oneEach`: one address per class (the pool's first), for addresses nobody looks up.
   */
  pickAddress(label: string, classNames: readonly string[], withZero = false, oneEach = false): string {
    const alts: (() => string)[] = [];
    const costs: number[] = [];
    const add = (cost: number, f: () => string) => {
      alts.push(f);
      costs.push(cost);
    };
    if (withZero) add(0, () => ZERO_ADDR);
    for (const name of classNames) {
      const c = ADDRESS_CLASSES.find((x) => x.name === name);
      if (!c || c.minScope > this.scope) continue;
      const cost = deviationCost(c.minScope);
      if (!c.pool) {
        add(cost, () => c.render(0));
        continue;
      }
      const have = this.pools.get(c.pool) ?? 0;
      if (oneEach) {
        add(cost, () => this.useAddress(c.name, 1));
        continue;
      }
      for (let n = 1; n <= have; n++) add(cost, () => c.render(n));
      if (have < this.scope) add(cost, () => this.useAddress(c.name, have + 1));
    }
    return (alts[this.chooseCosted(label, costs)] as () => string)();
  }

  frontend(key: IpAddr): number | null {
    let v = this.frontends.get(key);
    if (v === undefined) {
      // Absent, or an upstream id (existing or fresh).
      const fresh = this.ids.length < this.scope;
      const e = this.frontendCost(key);
      const i = this.room('frontend') ? this.chooseCosted(`frontend ${key}`, [0, ...new Array<number>(this.ids.length).fill(e), ...(fresh ? [e + this.idCost()] : [])]) : 0;
      v = i === 0 ? null : i - 1 < this.ids.length ? (this.ids[i - 1] as number) : this.pickFresh();
      if (v !== null) this.present.frontend++;
      this.frontends.set(key, v);
    }
    return v;
  }

  private pickFresh(): number {
    const id = this.ids.length + 1;
    this.ids.push(id);
    return id;
  }

  service(id: number): Fields | null {
    let v = this.services.get(id);
    if (v === undefined) {
      v = !this.room('service') || this.choose(`service ${id}`, 2) === 0 ? null : new Map();
      if (v !== null) this.present.service++;
      this.services.set(id, v);
    }
    return v;
  }

  backend(uid: number): Fields | null {
    let v = this.backends.get(uid);
    if (v === undefined) {
      v = !this.room('backend') || this.choose(`backend ${uid}`, 2) === 0 ? null : new Map();
      if (v !== null) this.present.backend++;
      this.backends.set(uid, v);
    }
    return v;
  }

  endpoint(serviceId: number, prio: number, index: number): number | null {
    // Indices past one beyond the scope's counts stand for absent ones (endpointIndexLimit).
    if (index > endpointIndexLimit(this.scope)) return null;
    const key = `${serviceId}/${prio}/${index}`;
    let v = this.endpoints.get(key);
    if (v === undefined) {
      const i = this.room('endpoint') ? this.chooseCosted(`endpoint ${key}`, [0, this.entryCost('endpoint')]) : 0;
      v = i === 0 ? null : this.pickId(`endpoint ${key} uid`);
      if (v !== null) this.present.endpoint++;
      this.endpoints.set(key, v);
    }
    return v;
  }

  /** A field of a present service, decided now if nobody read it before. */
  serviceField(id: number, name: string): number | string {
    const f = this.services.get(id);
    if (!f) throw new Error(`service ${id} is not present: its fields cannot be read`);
    let v = f.get(name);
    if (v === undefined) {
      v = this.decideServiceField(id, name);
      f.set(name, v);
    }
    return v;
  }

  backendField(uid: number, name: string): number | string {
    const f = this.backends.get(uid);
    if (!f) throw new Error(`backend ${uid} is not present: its fields cannot be read`);
    let v = f.get(name);
    if (v === undefined) {
      v = this.decideBackendField(uid, name);
      f.set(name, v);
    }
    return v;
  }

  /** A value of one of the classes allowed at this scope, each costing its deviation. */
  private pickClass<C extends ValueClass>(label: string, classes: readonly C[], valueOf: (c: C) => number = (c) => c.value): number {
    const list = allowed(classes, this.scope);
    const i = this.chooseCosted(
      label,
      list.map((c) => deviationCost(c.minScope)),
    );
    return valueOf(list[i] as C);
  }

  private decideServiceField(id: number, name: string): number | string {
    const label = `service ${id} ${name}`;
    if (name.startsWith('count')) {
      const prio = Number(name.slice(5));
      // Group 0's values depend on the policy: decided first, so that the domain does not depend on which a program reads first.
      const counts = countValues(this.scope, prio, prio === 0 ? (this.serviceField(id, 'policy') as number) : undefined);
      return counts[this.chooseCosted(label, counts.map(countCost))] as number;
    }
    if (name === 'policy') return this.pickClass(label, LB_POLICY_CLASSES);
    if (name.startsWith('sport')) {
      const slot = Number(name.slice(5));
      const other = SERVICE_PORT_CLASSES[0] as ValueClass;
      if (slot >= portSlotsAt(this.scope)) return other.value;
      // A slot after the first holding a port that matches something is a deviation.
      const list = allowed(SERVICE_PORT_CLASSES, this.scope);
      const costs = list.map((c) => deviationCost(c.minScope) + (slot > 0 && c !== other ? 1 : 0));
      return (list[this.chooseCosted(label, costs)] as ValueClass).value;
    }
    if (name.startsWith('tport')) {
      const slot = Number(name.slice(5));
      return this.pickClass(label, TARGET_PORT_CLASSES, (c) => (c.perSlot === true ? c.value + slot : c.value));
    }
    return this.decideWaypointField(label, name);
  }

  private decideWaypointField(label: string, name: string): number | string {
    if (name === 'wpPort') return this.pickClass(label, WAYPOINT_PORT_CLASSES);
    if (name === 'wpAddr') {
      const a = this.pickAddress(label, STORED_ADDRESS_CLASSES, true);
      if (!isAllZero(canonicalIpAddr(a))) this.waypointKeys.add(canonicalIpAddr(a)).add(foldedIpAddr(a));
      return a;
    }
    throw new Error(`no field ${name}`);
  }

  private decideBackendField(uid: number, name: string): number | string {
    const label = `backend ${uid} ${name}`;
    // A backend's address is where a connect ends, never a key the data path looks up: which
    // address of a class it is changes only the name in the observation, so one per class. The
    // DNS proxy's is compared with a reply's source (section 6: restored only from the proxy), so
    // it is any address of the pool, a datagram's source among them.
    if (name === 'addr') return uid === 0 ? this.pickAddress(label, DNS_PROXY_ADDRESS_CLASSES) : this.pickAddress(label, STORED_ADDRESS_CLASSES, true, true);
    // The data path does not read the service list: one representative (empty) stands for all.
    if (name === 'serviceCount' || name.startsWith('service')) return 0;
    return this.decideWaypointField(label, name);
  }

  /** The concrete state: present entries, their undecided fields zero. */
  toState(): MapState {
    const num = (f: Fields, k: string) => (f.get(k) as number | undefined) ?? 0;
    const addr = (f: Fields, k: string) => (f.get(k) as string | undefined) ?? ZERO_ADDR;
    const frontends = [...this.frontends].filter(([, v]) => v !== null).map(([addr, upstreamId]) => ({ addr, upstreamId: upstreamId as number }));
    const services: Service[] = [];
    for (const [id, f] of this.services) {
      if (!f) continue;
      services.push({
        id,
        endpointCounts: Array.from({ length: PRIO_GROUPS }, (_, p) => num(f, `count${p}`)),
        lbPolicy: num(f, 'policy'),
        servicePorts: Array.from({ length: PORT_SLOTS }, (_, i) => num(f, `sport${i}`)),
        targetPorts: Array.from({ length: PORT_SLOTS }, (_, i) => num(f, `tport${i}`)),
        waypoint: { addr: addr(f, 'wpAddr'), port: num(f, 'wpPort') },
      });
    }
    const endpoints = [...this.endpoints]
      .filter(([, v]) => v !== null)
      .map(([k, uid]) => {
        const [serviceId, prio, index] = k.split('/').map(Number) as [number, number, number];
        return { serviceId, prio, index, backendUid: uid as number };
      });
    const backends: Backend[] = [];
    for (const [uid, f] of this.backends) {
      if (!f) continue;
      backends.push({ uid, addr: addr(f, 'addr'), services: [], waypoint: { addr: addr(f, 'wpAddr'), port: num(f, 'wpPort') } });
    }
    const byNum =
      <T>(key: (x: T) => number | string) =>
      (a: T, b: T) =>
        key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
    return {
      frontends: frontends.sort(byNum((x) => x.addr)),
      services: services.sort(byNum((x) => x.id)),
      endpoints: endpoints.sort(byNum((x) => `${x.serviceId}/${x.prio}/${String(x.index).padStart(10, '0')}`)),
      backends: backends.sort(byNum((x) => x.uid)),
    };
  }
}
