// One pass of connect4/connect6 (kmesh-dataplane.md section 3; docs/interpretation.md items 2-8):
// the pipeline run once on the socket's current destination. A pass that draws an LB index
// returns one alternative per possible index; every other pass returns exactly one.

import { isIPv4Form, v4Mapped } from '../address.js';
import { CONTROL_ADDR, ControlPort, DNS_PORT, DNS_PROXY_UID, LbPolicy, PORT_SLOTS, PRIO_GROUPS, writtenPort, type Family, type Protocol, type SockAddr, type StorageView } from '../domain.js';
import { RESULT_OF_PATH, type PassPath, type PassRecord, type PassTarget } from '../spec/passes.js';
import { endpointKey, frontendKeyOf, groupKey, type IndexedService, type MapIndex } from './maps.js';

/** What a pass reads and writes besides the maps. */
export interface PassState {
  readonly dest: SockAddr;
  readonly netnsEnrolled: boolean;
  readonly storage: StorageView | null;
}

export interface Draw {
  readonly serviceId: number;
  readonly prio: number;
  readonly count: number;
  readonly index: number;
  readonly alike: number;
}

export interface PassAlternative {
  readonly record: PassRecord;
  readonly draw: Draw | null;
  readonly next: PassState;
}

export interface PassInput {
  readonly maps: MapIndex;
  readonly family: Family;
  readonly protocol: Protocol;
  readonly pass: number;
  readonly state: PassState;
}

// Not frozen: a frozen object has a shape of its own, and every other storage view is a plain literal.
const EMPTY_STORAGE: StorageView = { viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null };

type Facts = { -readonly [K in keyof Omit<PassRecord, 'path' | 'result' | 'destOut' | 'storageCreated' | 'recordedOriginal'>]: PassRecord[K] };

/** Mutable scratch for one pass: the facts gathered so far and the storage as it stands. */
interface Scratch {
  readonly facts: Facts;
  storage: StorageView | null;
  storageCreated: boolean;
}

function end(inp: PassInput, s: Scratch, path: PassPath, next?: Partial<PassState>, recordedOriginal = false): PassAlternative {
  const state: PassState = {
    dest: next?.dest ?? inp.state.dest,
    netnsEnrolled: next?.netnsEnrolled ?? inp.state.netnsEnrolled,
    storage: next && 'storage' in next ? (next.storage ?? null) : s.storage,
  };
  const f = s.facts;
  const record: PassRecord = {
    pass: f.pass,
    family: f.family,
    destIn: f.destIn,
    path,
    result: RESULT_OF_PATH[path],
    control: f.control,
    frontendKey: f.frontendKey,
    upstreamId: f.upstreamId,
    serviceId: f.serviceId,
    lbPolicy: f.lbPolicy,
    prio: f.prio,
    count: f.count,
    index: f.index,
    backendUid: f.backendUid,
    portSlot: f.portSlot,
    target: f.target,
    destOut: state.dest,
    storageCreated: s.storageCreated,
    recordedOriginal,
  };
  return { record, draw: null, next: state };
}

/** The original destination is written once per socket (3.8): the pass's own destination. */
function withOriginal(storage: StorageView, dest: SockAddr): { storage: StorageView; recorded: boolean } {
  if (storage.hasSetIp) return { storage, recorded: false };
  return { storage: { viaWaypoint: storage.viaWaypoint, hasSetIp: true, hasEncoded: storage.hasEncoded, original: dest }, recorded: true };
}

/** A success with no rewrite: records the original (TCP passes always have storage here). */
function kept(inp: PassInput, s: Scratch, path: PassPath): PassAlternative {
  const { storage, recorded } = withOriginal(s.storage ?? EMPTY_STORAGE, inp.state.dest);
  return end(inp, s, path, { storage }, recorded);
}

/** A target written in the socket's family (3.10; interpretation.md, item 1), or null. */
function socketView(family: Family, addr: string): string | null {
  if (isIPv4Form(addr)) return family === 'inet' ? addr : v4Mapped(addr);
  return family === 'inet6' ? addr : null;
}

/** A rewrite: to a backend or the DNS proxy (rewritten) or to a waypoint (waypoint). */
function rewrite(inp: PassInput, s: Scratch, path: PassPath, target: PassTarget): PassAlternative {
  s.facts.target = target;
  const addr = socketView(inp.family, target.addr);
  if (addr === null) return end(inp, s, 'family-mismatch');
  let storage = s.storage;
  if (!storage) {
    // Only a UDP DNS pass gets here without storage; it creates it to record.
    storage = EMPTY_STORAGE;
    s.storageCreated = true;
  }
  const recorded = withOriginal(storage, inp.state.dest);
  storage = recorded.storage;
  if (target.kind === 'service-waypoint' || target.kind === 'backend-waypoint') {
    if (!storage.viaWaypoint) storage = { viaWaypoint: true, hasSetIp: storage.hasSetIp, hasEncoded: storage.hasEncoded, original: storage.original };
  }
  return end(inp, s, path, { dest: { addr, port: target.port }, storage }, recorded.recorded);
}

function isControl(family: Family, dest: SockAddr): 'enrol' | 'withdraw' | null {
  if (dest.addr !== CONTROL_ADDR[family]) return null;
  if (dest.port === ControlPort.enrol) return 'enrol';
  if (dest.port === ControlPort.withdraw) return 'withdraw';
  return null;
}

/** The priority group a policy chooses from, or the path that ends the pass. */
function lbGroup(svc: IndexedService): { prio: number; count: number } | PassPath {
  const counts = svc.service.endpointCounts;
  const policy = svc.service.lbPolicy;
  if (policy === LbPolicy.random || policy === LbPolicy.strict) {
    const count = counts[0] ?? 0;
    if (count !== 0) return { prio: 0, count };
    return policy === LbPolicy.random ? 'random-empty' : 'strict-empty';
  }
  if (policy === LbPolicy.failover) {
    for (let p = 0; p < PRIO_GROUPS; p++) {
      const count = counts[p] ?? 0;
      if (count !== 0) return { prio: p, count };
    }
    return 'failover-empty';
  }
  return 'unknown-policy';
}

const POLICY_PATH: Record<number, PassPath> = {
  [LbPolicy.random]: 'random',
  [LbPolicy.strict]: 'strict',
  [LbPolicy.failover]: 'failover',
};

/** After the draw: endpoint -> backend -> waypoint or port mapping (3.7). */
function afterDraw(inp: PassInput, base: Scratch, svc: IndexedService, prio: number, count: number, index: number): PassAlternative {
  // Each drawn alternative gets its own copy of the facts gathered before the draw.
  const f = base.facts;
  const facts: Facts = {
    pass: f.pass,
    family: f.family,
    destIn: f.destIn,
    control: f.control,
    frontendKey: f.frontendKey,
    upstreamId: f.upstreamId,
    serviceId: f.serviceId,
    lbPolicy: f.lbPolicy,
    prio,
    count,
    index,
    backendUid: f.backendUid,
    portSlot: f.portSlot,
    target: f.target,
  };
  const s: Scratch = { facts, storage: base.storage, storageCreated: base.storageCreated };
  const uid = inp.maps.endpoints.get(endpointKey(svc.service.id, prio, index));
  if (uid === undefined) return end(inp, s, 'endpoint-missing');
  s.facts.backendUid = uid;
  const be = inp.maps.backends.get(uid);
  if (!be) return end(inp, s, 'backend-missing');
  if (be.waypoint) return rewrite(inp, s, 'backend-waypoint', { kind: 'backend-waypoint', ...be.waypoint });
  const ports = svc.service.servicePorts;
  for (let i = 0; i < PORT_SLOTS; i++) {
    if ((ports[i] ?? 0) === inp.state.dest.port) {
      s.facts.portSlot = i;
      const port = writtenPort(svc.service.targetPorts[i] ?? 0);
      return rewrite(inp, s, POLICY_PATH[svc.service.lbPolicy] as PassPath, { kind: 'backend', addr: be.addr, port });
    }
  }
  return end(inp, s, 'no-port-match');
}

/** Every index 1..count: one alternative per present endpoint, one for all missing ones. */
function draw(inp: PassInput, s: Scratch, svc: IndexedService, prio: number, count: number): PassAlternative[] {
  const id = svc.service.id;
  const present = (inp.maps.groups.get(groupKey(id, prio)) ?? []).filter((i) => i >= 1 && i <= count);
  const out: PassAlternative[] = [];
  const withDraw = (alt: PassAlternative, index: number, alike: number): PassAlternative => ({
    record: alt.record,
    draw: { serviceId: id, prio, count, index, alike },
    next: alt.next,
  });
  let missing = count - present.length;
  let firstMissing = 0;
  if (missing > 0) {
    firstMissing = 1;
    for (const i of present) {
      if (i === firstMissing) firstMissing++;
      else if (i > firstMissing) break;
    }
  }
  for (const index of present) {
    // Keep the draw order ascending in index so the representative run is the smallest one.
    if (missing > 0 && firstMissing < index) {
      out.push(withDraw(afterDraw(inp, s, svc, prio, count, firstMissing), firstMissing, missing));
      missing = 0;
    }
    out.push(withDraw(afterDraw(inp, s, svc, prio, count, index), index, 1));
  }
  if (missing > 0) out.push(withDraw(afterDraw(inp, s, svc, prio, count, firstMissing), firstMissing, missing));
  return out;
}

export function runPass(inp: PassInput): PassAlternative[] {
  const { family, protocol, state, maps } = inp;
  const dest = state.dest;
  const s: Scratch = {
    facts: {
      pass: inp.pass,
      family,
      destIn: dest,
      control: null,
      frontendKey: null,
      upstreamId: null,
      serviceId: null,
      lbPolicy: null,
      prio: null,
      count: null,
      index: null,
      backendUid: null,
      portSlot: null,
      target: null,
    },
    storage: state.storage,
    storageCreated: false,
  };

  // 3.1 control connects, before the enrolment check (interpretation.md, item 4).
  const control = isControl(family, dest);
  if (control) {
    s.facts.control = control;
    return [end(inp, s, 'control', { netnsEnrolled: control === 'enrol' })];
  }
  // 3.2
  if (!state.netnsEnrolled) return [end(inp, s, 'not-enrolled')];
  // 3.4 storage for every enrolled TCP pass (interpretation.md, item 3).
  if (protocol === 'tcp' && !s.storage) {
    s.storage = EMPTY_STORAGE;
    s.storageCreated = true;
  }
  // 3.3 DNS, connect4 only, TCP and UDP alike (interpretation.md, item 5).
  if (family === 'inet' && dest.port === DNS_PORT) {
    const proxy = maps.backends.get(DNS_PROXY_UID);
    if (proxy) {
      s.facts.backendUid = DNS_PROXY_UID;
      return [rewrite(inp, s, 'dns', { kind: 'dns-proxy', addr: proxy.addr, port: dest.port })];
    }
    if (protocol !== 'tcp') return [end(inp, s, 'dns-no-proxy')];
  }
  if (protocol !== 'tcp') return [end(inp, s, 'udp-skip')];

  // 3.5 frontend
  const frontendKey = frontendKeyOf(family, dest.addr);
  s.facts.frontendKey = frontendKey;
  const upstreamId = maps.frontends.get(frontendKey);
  if (upstreamId === undefined) return [end(inp, s, 'frontend-miss')];
  s.facts.upstreamId = upstreamId;

  // 3.6 direct backend
  const svc = maps.services.get(upstreamId);
  if (!svc) {
    s.facts.backendUid = upstreamId;
    const be = maps.backends.get(upstreamId);
    if (!be) return [end(inp, s, 'direct-backend-missing')];
    if (be.waypoint) return [rewrite(inp, s, 'direct-backend-waypoint', { kind: 'backend-waypoint', ...be.waypoint })];
    return [kept(inp, s, 'direct-backend')];
  }

  // 3.7 service
  s.facts.serviceId = upstreamId;
  s.facts.lbPolicy = svc.service.lbPolicy;
  if (svc.waypoint) return [rewrite(inp, s, 'service-waypoint', { kind: 'service-waypoint', ...svc.waypoint })];
  const group = lbGroup(svc);
  if (typeof group === 'string') {
    return [group === 'random-empty' ? kept(inp, s, group) : end(inp, s, group)];
  }
  return draw(inp, s, svc, group.prio, group.count);
}
