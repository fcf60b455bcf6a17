// Control-plane-consistent states. A state is generated as a plan (backends, services with their
// endpoints and frontends, waypoints, then a little churn) and built by emitting control ops
// against EMPTY_STATE, so it satisfies section 5 by construction and comes with the ops that
// built it. Plans refer to entities by small indices resolved against the state at that moment
// (`ref % count`): every plan is applicable, and shrinking a plan keeps it applicable.

import fc from 'fast-check';
import { DNS_PROXY_UID, LbPolicy, NO_WAYPOINT, PRIO_GROUPS, SERVICES_PER_BACKEND, type Backend, type IpAddr, type MapState, type Waypoint } from '../model/domain.js';
import { ipAddrTable, portTable, v6Host, WAYPOINT_PORTS } from './addresses.js';
import { emptyOwned, applyInPlace, finishOwned, type OwnedState } from './owned-state.js';
import { arb, chance, lengths, mix, Table, uniform, type Gen } from './choices.js';
import { REFS } from './connect.js';
import { applyControlOp, ControlOpError, idTaken, type ControlOp, type PortSlot } from '../model/control-plane/control-ops.js';

/** Where a waypoint address comes from: a frontend (a waypoint service VIP), a pod, or the pool. */
export interface WaypointPlan {
  readonly to: 'frontend' | 'backend' | 'pool';
  readonly ref: number;
  readonly addr: IpAddr;
  readonly port: number;
}

export interface BackendPlan {
  readonly uid: number;
  readonly addr: IpAddr;
  /** Also reachable directly: a frontend pod IP -> this backend. */
  readonly podFrontend: boolean;
  readonly waypoint: WaypointPlan | null;
}

export interface EndpointPlan {
  readonly prio: number;
  readonly backendRef: number;
}

export interface ServicePlan {
  readonly id: number;
  readonly lbPolicy: number;
  readonly ports: readonly PortSlot[];
  readonly vip: IpAddr | null;
  readonly endpoints: readonly EndpointPlan[];
  readonly waypoint: WaypointPlan | null;
}

/** A later change, resolved against the state it meets. */
export type Intent =
  | { readonly kind: 'addService'; readonly plan: ServicePlan }
  | { readonly kind: 'removeService'; readonly ref: number }
  | { readonly kind: 'addEndpoint'; readonly ref: number; readonly backendRef: number; readonly prio: number }
  | { readonly kind: 'deleteEndpoint'; readonly ref: number; readonly pick: number }
  | { readonly kind: 'addBackend'; readonly plan: BackendPlan }
  | { readonly kind: 'removeBackend'; readonly ref: number }
  | { readonly kind: 'setWaypoint'; readonly target: 'service' | 'backend'; readonly ref: number; readonly waypoint: WaypointPlan | null }
  | { readonly kind: 'setLbPolicy'; readonly ref: number; readonly lbPolicy: number }
  | { readonly kind: 'addFrontend'; readonly to: 'service' | 'backend'; readonly ref: number; readonly addr: IpAddr }
  | { readonly kind: 'removeFrontend'; readonly ref: number }
  | { readonly kind: 'dnsProxy'; readonly addr: IpAddr | null };

export interface StatePlan {
  readonly dns: IpAddr | null;
  readonly backends: readonly BackendPlan[];
  readonly services: readonly ServicePlan[];
  readonly churn: readonly Intent[];
}

export interface BuiltState {
  readonly state: MapState;
  /** The control-plane ops that built `state` from EMPTY_STATE, in order. */
  readonly ops: readonly ControlOp[];
}

// ---------------------------------------------------------------------------------------------
// Arbitraries. Every choice shrinks towards the simplest: fewer entries, smaller ids, random
// policy, prio 0, no waypoint, no DNS proxy.

/** Ids: small mostly, now and then large enough to show byte-order mistakes. */
export const IDS: Table<number> = mix([Array.from({ length: 12 }, (_, i) => i + 1), 12], [[0x100, 0x10000, 0x1000000, 0xfffffffe], 1]);

export const LB_POLICIES: Table<number> = uniform([LbPolicy.random, LbPolicy.strict, LbPolicy.failover]);

/** Mostly prio 0, often 1, sometimes a worse group. */
export const PRIOS: Table<number> = mix([[0], 6], [[1], 3], [Array.from({ length: PRIO_GROUPS - 2 }, (_, i) => i + 2), 1]);

const WAYPOINT_TO = new Table<WaypointPlan['to']>(['frontend', 'backend', 'pool'], [11, 5, 4]);
const ADDRS = ipAddrTable();
const POD_FRONTEND = chance(2, 1);
const BACKEND_WAYPOINT = chance(3, 1);
const SERVICE_WAYPOINT = chance(4, 1);
const SET_WAYPOINT = chance(1, 2);
const SERVICE_PORTS = portTable({ nonZero: true });
// 0 stands for "the service port": written as the service port.
const TARGET_PORTS = mix([[0], 3], [SERVICE_PORTS, 2]);
const PORT_SLOT_COUNTS = lengths(0, 3, 1, 14);
const ENDPOINT_COUNTS = lengths(0, 4, 1, 6);
const TARGETS = uniform(['service', 'backend'] as const);
/** No DNS proxy (null) is the simplest. */
const VIPS = mix<IpAddr | null>([[null], 1], [ADDRS, 8]);
const DNS_ADDRS = mix<IpAddr>([ipAddrTable({ v4Only: true }), 9], [[1, 2, 3, 4].map(v6Host), 1]);
const DNS_PROXY = mix<IpAddr | null>([[null], 3], [DNS_ADDRS, 1]);
const DNS_CHANGE = mix<IpAddr | null>([[null], 1], [DNS_ADDRS, 2]);

/** Waypoint addresses never all-zero: a consistent waypoint has both parts. */
export const waypointPlanGen: Gen<WaypointPlan> = (d) => ({ to: d.pick(WAYPOINT_TO), ref: d.int(REFS), addr: d.pick(ADDRS), port: d.pick(WAYPOINT_PORTS) });

/** Now and then all ten port slots are in use: nine fillers first, so that the last slot decides. */
const FULL_PORT_TABLE = chance(11, 1);
/** The fillers' service ports: outside the pool, so that only a connect to a filler matches one. */
const FILLER_PORTS: readonly number[] = [20001, 20002, 20003, 20004, 20005, 20006, 20007, 20008, 20009];
const FILLER_TARGET = 20010;

/** Port slots, service ports distinct (a repeated one is dropped). */
const portSlotsGen: Gen<readonly PortSlot[]> = (d) => {
  if (d.pick(FULL_PORT_TABLE)) {
    // The last slot maps its port to another, so that a program that misses the slot shows.
    const service = d.pick(SERVICE_PORTS);
    const target = d.pick(SERVICE_PORTS);
    return [...FILLER_PORTS.map((p) => ({ service: p, target: 0 })), { service, target: target === service ? FILLER_TARGET : target }];
  }
  const slots = d.list((g): PortSlot => ({ service: g.pick(SERVICE_PORTS), target: g.pick(TARGET_PORTS) }), PORT_SLOT_COUNTS);
  return slots.filter((p, i) => slots.findIndex((q) => q.service === p.service) === i);
};

export const backendPlanGen: Gen<BackendPlan> = (d) => ({
  uid: d.pick(IDS),
  addr: d.pick(ADDRS),
  podFrontend: d.pick(POD_FRONTEND),
  waypoint: d.maybe(waypointPlanGen, BACKEND_WAYPOINT),
});

export const servicePlanGen: Gen<ServicePlan> = (d) => ({
  id: d.pick(IDS),
  lbPolicy: d.pick(LB_POLICIES),
  ports: portSlotsGen(d),
  vip: d.pick(VIPS),
  endpoints: d.list((g): EndpointPlan => ({ prio: g.pick(PRIOS), backendRef: g.int(REFS) }), ENDPOINT_COUNTS),
  waypoint: d.maybe(waypointPlanGen, SERVICE_WAYPOINT),
});

const INTENT_KINDS = uniform<Intent['kind']>([
  'removeService',
  'deleteEndpoint',
  'removeBackend',
  'setWaypoint',
  'setLbPolicy',
  'addEndpoint',
  'addService',
  'addBackend',
  'addFrontend',
  'removeFrontend',
  'dnsProxy',
]);

/** A later change; one entry of the tape. */
export const intentGen: Gen<Intent> = (d) =>
  d.group((g): Intent => {
    const kind = g.pick(INTENT_KINDS);
    switch (kind) {
      case 'removeService':
      case 'removeBackend':
      case 'removeFrontend':
        return { kind, ref: g.int(REFS) };
      case 'deleteEndpoint':
        return { kind, ref: g.int(REFS), pick: g.int(REFS) };
      case 'setWaypoint':
        return { kind, target: g.pick(TARGETS), ref: g.int(REFS), waypoint: g.maybe(waypointPlanGen, SET_WAYPOINT) };
      case 'setLbPolicy':
        return { kind, ref: g.int(REFS), lbPolicy: g.pick(LB_POLICIES) };
      case 'addEndpoint':
        return { kind, ref: g.int(REFS), backendRef: g.int(REFS), prio: g.pick(PRIOS) };
      case 'addService':
        return { kind, plan: servicePlanGen(g) };
      case 'addBackend':
        return { kind, plan: backendPlanGen(g) };
      case 'addFrontend':
        return { kind, to: g.pick(TARGETS), ref: g.int(REFS), addr: g.pick(ADDRS) };
      case 'dnsProxy':
        return { kind, addr: g.pick(DNS_CHANGE) };
    }
  });

const BACKEND_COUNTS = lengths(0, 4, 1, 9);
const SERVICE_COUNTS = lengths(0, 3, 1, 9);
const CHURN_COUNTS = lengths(0, 3, 1, 1);

export const statePlanGen: Gen<StatePlan> = (d) => ({
  dns: d.pick(DNS_PROXY),
  backends: d.list(backendPlanGen, BACKEND_COUNTS),
  services: d.list(servicePlanGen, SERVICE_COUNTS),
  churn: d.list(intentGen, CHURN_COUNTS),
});

// ---------------------------------------------------------------------------------------------
// Building: plans -> control ops, each applied as soon as it is emitted.

class Builder {
  state: MapState;
  readonly ops: ControlOp[] = [];
  /** Set while the state is one this builder owns and applies building ops to in place. */
  private owned: OwnedState | null;
  /** On a raw state an op may not fit (a count that disagrees with its endpoints): skip it. */
  constructor(
    initial: MapState | OwnedState,
    private readonly lenient = false,
    owned = false,
  ) {
    this.state = initial;
    this.owned = owned ? (initial as OwnedState) : null;
  }
  emit(op: ControlOp | null): void {
    if (op === null) return;
    if (this.owned && applyInPlace(this.owned, op)) {
      this.ops.push(op);
      return;
    }
    try {
      this.state = applyControlOp(this.state, op);
    } catch (e) {
      if (this.lenient && e instanceof ControlOpError) return;
      throw e;
    }
    // applyControlOp copies what it changes and keeps the rest: an owned state stays owned.
    if (this.owned) this.owned = this.state as OwnedState;
    this.ops.push(op);
  }
  /** The state built: an owned one is handed over at its exact size, and owned no more. */
  finish(): MapState {
    if (this.owned) this.state = finishOwned(this.owned);
    this.owned = null;
    return this.state;
  }
  /** The wanted id, or the next free one (service ids and backend uids share one allocator). */
  freshId(wanted: number): number {
    let id = wanted;
    while (id === DNS_PROXY_UID || idTaken(this.state, id)) id = id >= 0xfffffffe ? 1 : id + 1;
    return id;
  }
  routedBackends() {
    return this.state.backends.filter((b) => b.uid !== DNS_PROXY_UID);
  }
  waypointFrom(plan: WaypointPlan | null): Waypoint {
    if (plan === null) return NO_WAYPOINT;
    const pick = <T>(xs: readonly T[]): T | undefined => xs[plan.ref % Math.max(1, xs.length)];
    let addr = plan.addr;
    if (plan.to === 'frontend') addr = pick(this.state.frontends)?.addr ?? addr;
    if (plan.to === 'backend') addr = pick(this.routedBackends())?.addr ?? addr;
    return { addr, port: plan.port };
  }
}

function addServiceOps(b: Builder, plan: ServicePlan): number {
  const id = b.freshId(plan.id);
  b.emit({ op: 'addService', id, lbPolicy: plan.lbPolicy, ports: plan.ports });
  if (plan.vip !== null) b.emit({ op: 'addFrontend', addr: plan.vip, upstreamId: id });
  for (const e of plan.endpoints) b.emit(addEndpointOp(b.state, id, e.backendRef, e.prio));
  return id;
}

/** The ref-th routed backend (the DNS proxy is none), modulo how many there are. */
function routedBackend(s: MapState, ref: number): Backend | undefined {
  const proxy = s.backends[0]?.uid === DNS_PROXY_UID ? 1 : 0;
  const n = s.backends.length - proxy;
  if (n <= 0 || s.backends.some((b, i) => i >= proxy && b.uid === DNS_PROXY_UID)) return s.backends.filter((b) => b.uid !== DNS_PROXY_UID)[ref % Math.max(1, n)];
  return s.backends[proxy + (ref % n)];
}

function addEndpointOp(s: MapState, serviceId: number, backendRef: number, prio: number): ControlOp | null {
  const svc = s.services.find((v) => v.id === serviceId);
  const backend = routedBackend(s, backendRef);
  if (!svc || !backend) return null;
  if (s.endpoints.some((e) => e.serviceId === serviceId && e.backendUid === backend.uid)) return null;
  if (!backend.services.includes(serviceId) && backend.services.length >= SERVICES_PER_BACKEND) return null;
  return { op: 'addEndpoint', serviceId, prio: svc.lbPolicy === LbPolicy.random ? 0 : prio, backendUid: backend.uid };
}

function addBackendOps(b: Builder, plan: BackendPlan): void {
  const uid = b.freshId(plan.uid);
  b.emit({ op: 'addBackend', uid, addr: plan.addr, waypoint: NO_WAYPOINT });
  if (plan.podFrontend) b.emit({ op: 'addFrontend', addr: plan.addr, upstreamId: uid });
}

/** Emits the control ops an intent amounts to in the current state (none when it has nothing to act on). */
function intentOps(b: Builder, intent: Intent): void {
  const s = b.state;
  const pick = <T>(xs: readonly T[], r: number): T | undefined => xs[r % Math.max(1, xs.length)];
  switch (intent.kind) {
    case 'addService':
      addServiceOps(b, intent.plan);
      return;
    case 'addBackend':
      addBackendOps(b, intent.plan);
      if (intent.plan.waypoint) {
        const uid = b.state.backends[b.state.backends.length - 1]?.uid;
        if (uid !== undefined) b.emit({ op: 'setWaypoint', target: 'backend', id: uid, waypoint: b.waypointFrom(intent.plan.waypoint) });
      }
      return;
    case 'removeService': {
      const v = pick(s.services, intent.ref);
      if (v) b.emit({ op: 'removeService', id: v.id });
      return;
    }
    case 'removeBackend': {
      const x = pick(b.routedBackends(), intent.ref);
      if (x) b.emit({ op: 'removeBackend', uid: x.uid });
      return;
    }
    case 'addEndpoint': {
      const v = pick(s.services, intent.ref);
      if (v) b.emit(addEndpointOp(s, v.id, intent.backendRef, intent.prio));
      return;
    }
    case 'deleteEndpoint': {
      const v = pick(s.services, intent.ref);
      const mine = v ? s.endpoints.filter((e) => e.serviceId === v.id) : [];
      const e = pick(mine, intent.pick);
      if (e) b.emit({ op: 'deleteEndpoint', serviceId: e.serviceId, prio: e.prio, index: e.index });
      return;
    }
    case 'setWaypoint': {
      const target = intent.target === 'service' ? pick(s.services, intent.ref)?.id : pick(b.routedBackends(), intent.ref)?.uid;
      if (target !== undefined) b.emit({ op: 'setWaypoint', target: intent.target, id: target, waypoint: b.waypointFrom(intent.waypoint) });
      return;
    }
    case 'setLbPolicy': {
      const v = pick(s.services, intent.ref);
      if (v) b.emit({ op: 'setLbPolicy', id: v.id, lbPolicy: intent.lbPolicy });
      return;
    }
    case 'addFrontend': {
      if (intent.to === 'service') {
        const v = pick(s.services, intent.ref);
        if (v) b.emit({ op: 'addFrontend', addr: intent.addr, upstreamId: v.id });
      } else {
        const x = pick(b.routedBackends(), intent.ref);
        if (x) b.emit({ op: 'addFrontend', addr: x.addr, upstreamId: x.uid });
      }
      return;
    }
    case 'removeFrontend': {
      const f = pick(s.frontends, intent.ref);
      if (f) b.emit({ op: 'removeFrontend', addr: f.addr });
      return;
    }
    case 'dnsProxy':
      b.emit({ op: 'dnsProxy', addr: intent.addr });
      return;
  }
}

/**
 * Applies intents to a state; returns the new state and the control ops they amounted to.
 * `lenient` skips ops that do not fit, for raw states; on a consistent state every op fits.
 */
export function applyIntents(initial: MapState, intents: readonly Intent[], opts: { lenient?: boolean } = {}): BuiltState {
  const b = new Builder(initial, opts.lenient ?? false);
  for (const i of intents) intentOps(b, i);
  return { state: b.state, ops: b.ops };
}

/** Builds a plan from EMPTY_STATE. */
export function buildState(plan: StatePlan): BuiltState {
  const b = new Builder(emptyOwned(), false, true);
  if (plan.dns !== null) b.emit({ op: 'dnsProxy', addr: plan.dns });
  for (const bp of plan.backends) addBackendOps(b, bp);
  const serviceIds = plan.services.map((sp) => addServiceOps(b, sp));
  // Waypoints last, so that they can name the frontends (waypoint VIPs) and pods now present.
  plan.services.forEach((sp, i) => {
    const id = serviceIds[i];
    if (sp.waypoint && id !== undefined) b.emit({ op: 'setWaypoint', target: 'service', id, waypoint: b.waypointFrom(sp.waypoint) });
  });
  const backendUids = b.routedBackends().map((x) => x.uid);
  plan.backends.forEach((bp, i) => {
    const uid = backendUids[i];
    if (bp.waypoint && uid !== undefined) b.emit({ op: 'setWaypoint', target: 'backend', id: uid, waypoint: b.waypointFrom(bp.waypoint) });
  });
  for (const i of plan.churn) intentOps(b, i);
  return { state: b.finish(), ops: b.ops };
}

/** A control-plane-consistent state with the ops that built it; always `isConsistent`. */
export const consistentStateGen: Gen<BuiltState> = (d) => buildState(statePlanGen(d));

export function consistentState(): fc.Arbitrary<BuiltState> {
  return arb(consistentStateGen);
}
