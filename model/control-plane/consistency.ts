// Which map states a control plane could have written (kmesh-dataplane.md, section 5, plus the
// referential rules a control plane keeps). A finding on a state with violations is a robustness
// finding; the checker labels cases by this list.

import { isAllZero, mapPortText, parseAddress } from '../address.js';
import { DNS_PROXY_UID, LbPolicy, PORT_SLOTS, PRIO_GROUPS, SERVICES_PER_BACKEND, type MapState, type Waypoint } from '../domain.js';

const U32_MAX = 0xffffffff;

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= U32_MAX;
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 65535;
}

function validAddr(a: string): boolean {
  try {
    parseAddress(a);
    return true;
  } catch {
    return false;
  }
}

function waypointProblem(w: Waypoint): string | null {
  if (!validAddr(w.addr)) return `waypoint address ${JSON.stringify(w.addr)} is not an address`;
  if (!isPort(w.port)) return `waypoint port ${mapPortText(w.port)} is not 0..65535`;
  const zero = isAllZero(w.addr);
  if (w.port !== 0 && zero) return `waypoint port ${mapPortText(w.port)} without an address`;
  if (w.port === 0 && !zero) return `waypoint address ${w.addr} without a port`;
  return null;
}

function duplicates<T>(xs: readonly T[], key: (x: T) => string): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const x of xs) {
    const k = key(x);
    if (seen.has(k)) dup.add(k);
    seen.add(k);
  }
  return [...dup];
}

/** Section-5 violations of a state, one line each; empty means consistent. */
export function isConsistent(state: MapState): string[] {
  const out: string[] = [];
  for (const k of duplicates(state.frontends, (f) => f.addr)) out.push(`two frontends at ${k}`);
  for (const k of duplicates(state.services, (v) => String(v.id))) out.push(`two services with id ${k}`);
  for (const k of duplicates(state.backends, (b) => String(b.uid))) out.push(`two backends with uid ${k}`);
  for (const k of duplicates(state.endpoints, (e) => `${e.serviceId}/${e.prio}/${e.index}`)) {
    out.push(`two endpoints at (service/prio/index) ${k}`);
  }

  const serviceIds = new Set(state.services.map((v) => v.id));
  const backendUids = new Set(state.backends.map((b) => b.uid));

  for (const f of state.frontends) {
    if (!validAddr(f.addr)) out.push(`frontend address ${JSON.stringify(f.addr)} is not an address`);
    if (!serviceIds.has(f.upstreamId) && !backendUids.has(f.upstreamId)) {
      out.push(`frontend ${f.addr} points to ${f.upstreamId}, which is neither a service nor a backend`);
    }
  }

  for (const v of state.services) {
    const name = `service ${v.id}`;
    if (!isU32(v.id)) out.push(`${name}: id is not a u32`);
    // Ids come from one allocator: a frontend's upstream id must not mean two things.
    if (backendUids.has(v.id)) out.push(`${name}: id is also a backend uid`);
    if (v.id === DNS_PROXY_UID) out.push(`${name}: id ${DNS_PROXY_UID} is reserved for the DNS proxy`);
    if (v.lbPolicy !== LbPolicy.random && v.lbPolicy !== LbPolicy.strict && v.lbPolicy !== LbPolicy.failover) {
      out.push(`${name}: unknown lb policy ${v.lbPolicy}`);
    }
    if (v.endpointCounts.length !== PRIO_GROUPS) out.push(`${name}: ${v.endpointCounts.length} priority counts, not ${PRIO_GROUPS}`);
    if (v.servicePorts.length !== PORT_SLOTS || v.targetPorts.length !== PORT_SLOTS) {
      out.push(`${name}: port slots are not ${PORT_SLOTS} long`);
    }
    v.endpointCounts.forEach((count, prio) => {
      if (!isU32(count)) {
        out.push(`${name}: count[${prio}] = ${count} is not a u32`);
        return;
      }
      if (v.lbPolicy === LbPolicy.random && prio !== 0 && count !== 0) {
        out.push(`${name}: random policy with ${count} endpoints at prio ${prio}`);
      }
      const indices = new Set(state.endpoints.filter((e) => e.serviceId === v.id && e.prio === prio).map((e) => e.index));
      for (let i = 1; i <= count; i++) {
        if (!indices.has(i)) {
          out.push(`${name}: count[${prio}] = ${count} but index ${i} is missing`);
          break;
        }
      }
    });
    const seenPorts = new Set<number>();
    for (let i = 0; i < PORT_SLOTS; i++) {
      const sp = v.servicePorts[i] ?? 0;
      const tp = v.targetPorts[i] ?? 0;
      if (!isPort(sp) || !isPort(tp)) out.push(`${name}: slot ${i} port out of range (${mapPortText(sp)}->${mapPortText(tp)})`);
      if (sp === 0 && tp !== 0) out.push(`${name}: slot ${i} has target port ${mapPortText(tp)} but service port 0`);
      if (sp !== 0 && tp === 0) out.push(`${name}: slot ${i} maps service port ${mapPortText(sp)} to target port 0`);
      if (sp !== 0 && seenPorts.has(sp)) out.push(`${name}: service port ${mapPortText(sp)} in two slots`);
      if (sp !== 0) seenPorts.add(sp);
    }
    const wp = waypointProblem(v.waypoint);
    if (wp) out.push(`${name}: ${wp}`);
  }

  for (const e of state.endpoints) {
    const name = `endpoint (service ${e.serviceId}, prio ${e.prio}, index ${e.index})`;
    const svc = state.services.find((v) => v.id === e.serviceId);
    if (!svc) {
      out.push(`${name}: no such service`);
    } else if (!(e.prio >= 0 && e.prio < PRIO_GROUPS) || !(e.index >= 1 && e.index <= (svc.endpointCounts[e.prio] ?? 0))) {
      out.push(`${name}: outside 1..count of its group`);
    }
    if (!backendUids.has(e.backendUid)) out.push(`${name}: backend ${e.backendUid} does not exist`);
    if (e.backendUid === DNS_PROXY_UID) out.push(`${name}: the DNS proxy is not an endpoint`);
  }

  for (const b of state.backends) {
    const name = `backend ${b.uid}`;
    if (!isU32(b.uid)) out.push(`${name}: uid is not a u32`);
    if (!validAddr(b.addr)) out.push(`${name}: address ${JSON.stringify(b.addr)} is not an address`);
    if (b.services.length > SERVICES_PER_BACKEND) out.push(`${name}: in ${b.services.length} services, at most ${SERVICES_PER_BACKEND}`);
    if (new Set(b.services).size !== b.services.length) out.push(`${name}: a service listed twice`);
    const wp = waypointProblem(b.waypoint);
    if (wp) out.push(`${name}: ${wp}`);
  }
  return out;
}
