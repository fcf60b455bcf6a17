// The routing of one pass (sections 3.1-3.7, 3.10), judged on the reference model's pass records:
// the path each pass took is the one the maps prescribe for its destination and drawn index, the
// LB draw stays in the right priority group, port mapping takes the first matching slot, and the
// address family rule holds.

import { mapPortText } from '../../address.js';
import { LbPolicy, PORT_SLOTS, PRIO_GROUPS, writtenPort, type Family, type MapState, type Protocol, type SockAddr } from '../../domain.js';
import type { PassPath, PassRecord, PassTarget, TargetKind } from '../passes.js';
import { backendOf, configuredWaypoint, controlAction, endpointOf, frontendKey, frontendOf, ip, programConnects, sameSockAddr, serviceOf, show, socketView, type Known } from '../facts.js';
import { Checker, type Invariant } from '../types.js';

interface Prescribed {
  readonly path: PassPath;
  readonly target?: PassTarget;
  /** The pass draws an LB index on its way. */
  readonly drew?: boolean;
}

/** The priority group a service's policy draws from (3.7), or the path that ends the pass. */
export function lbGroup(counts: readonly number[], policy: number): { prio: number; count: number } | PassPath {
  if (policy === LbPolicy.random) return (counts[0] ?? 0) !== 0 ? { prio: 0, count: counts[0]! } : 'random-empty';
  if (policy === LbPolicy.strict) return (counts[0] ?? 0) !== 0 ? { prio: 0, count: counts[0]! } : 'strict-empty';
  if (policy === LbPolicy.failover) {
    for (let p = 0; p < PRIO_GROUPS; p++) if ((counts[p] ?? 0) !== 0) return { prio: p, count: counts[p]! };
    return 'failover-empty';
  }
  return 'unknown-policy';
}

function withTarget(family: Family, path: PassPath, kind: TargetKind, addr: string, port: number, drew?: true): Prescribed {
  const target = { kind, addr: ip(addr), port };
  const prescribed = socketView(family, target.addr) === null ? 'family-mismatch' : path;
  return drew ? { path: prescribed, target, drew } : { path: prescribed, target };
}

/**
 * The path section 3 prescribes for a pass on `dest`, given the maps, the namespace's enrolment
 * and the index the pass drew (null if it drew none); null when enrolment is unknown.
 */
export function prescribedPath(state: MapState, family: Family, protocol: Protocol, dest: SockAddr, netns: Known, index: number | null): Prescribed | null {
  if (controlAction(family, dest)) return { path: 'control' };
  if (netns === 'unknown') return null;
  if (!netns) return { path: 'not-enrolled' };
  if (family === 'inet' && dest.port === 53) {
    const proxy = backendOf(state, 0);
    if (proxy) return withTarget(family, 'dns', 'dns-proxy', proxy.addr, dest.port);
    if (protocol !== 'tcp') return { path: 'dns-no-proxy' };
  }
  if (protocol !== 'tcp') return { path: 'udp-skip' };
  const up = frontendOf(state, frontendKey(family, dest.addr));
  if (up === undefined) return { path: 'frontend-miss' };
  const svc = serviceOf(state, up);
  if (!svc) {
    const be = backendOf(state, up);
    if (!be) return { path: 'direct-backend-missing' };
    const wp = configuredWaypoint(be.waypoint);
    if (wp) return withTarget(family, 'direct-backend-waypoint', 'backend-waypoint', wp.addr, wp.port);
    return { path: 'direct-backend' };
  }
  const swp = configuredWaypoint(svc.waypoint);
  if (swp) return withTarget(family, 'service-waypoint', 'service-waypoint', swp.addr, swp.port);
  const group = lbGroup(svc.endpointCounts, svc.lbPolicy);
  if (typeof group === 'string') return { path: group };
  if (index === null) return null;
  const ep = endpointOf(state, svc.id, group.prio, index);
  if (!ep) return { path: 'endpoint-missing', drew: true };
  const be = backendOf(state, ep.backendUid);
  if (!be) return { path: 'backend-missing', drew: true };
  const bwp = configuredWaypoint(be.waypoint);
  if (bwp) return withTarget(family, 'backend-waypoint', 'backend-waypoint', bwp.addr, bwp.port, true);
  for (let i = 0; i < PORT_SLOTS; i++) {
    if ((svc.servicePorts[i] ?? 0) === dest.port) {
      const path = svc.lbPolicy === LbPolicy.random ? 'random' : svc.lbPolicy === LbPolicy.strict ? 'strict' : 'failover';
      return withTarget(family, path, 'backend', be.addr, writtenPort(svc.targetPorts[i] ?? 0), true);
    }
  }
  return { path: 'no-port-match', drew: true };
}

function sameTarget(a: PassTarget | null | undefined, b: PassTarget | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.kind === b.kind && ip(a.addr) === ip(b.addr) && a.port === b.port;
}

/** Calls `f` for every pass of every connect that has pass records, with the connect's facts. */
function eachPass(ctx: Parameters<Invariant['check']>[0], f: (p: PassRecord, v: ReturnType<typeof programConnects>[number], netns: Known) => void): void {
  for (const v of programConnects(ctx)) {
    let netns: Known = v.netnsBefore;
    for (const p of v.passes ?? []) {
      f(p, v, netns);
      if (p.control) netns = p.control === 'enrol';
    }
  }
}

export const pathJustified: Invariant = {
  name: 'path-justified',
  statement:
    'Each pass takes the path the routing pipeline prescribes for its destination, the maps in force and its drawn index: control, enrolment, DNS, protocol, frontend, service or direct backend, waypoint, policy, endpoint, backend, port slot and address family, in that order.',
  needs: 'passes',
  check(ctx) {
    const chk = new Checker();
    eachPass(ctx, (p, v, netns) => {
      const expected = prescribedPath(v.state, v.family, v.protocol, p.destIn, netns, p.index);
      // Written only for a failure: every pass of every case comes here.
      const where = () => `operation ${v.i + 1}, pass ${p.pass} on ${show(p.destIn)}`;
      if (!expected) {
        if (netns !== 'unknown') chk.expect(false, () => `${where()}: ${p.path} needs a drawn index but the pass records none`);
        return;
      }
      chk.exercise();
      chk.expect(expected.path === p.path, () => `${where()}: took ${p.path}, the routing pipeline prescribes ${expected.path}`);
      if (expected.target) chk.expect(sameTarget(expected.target, p.target), () => `${where()}: target ${JSON.stringify(p.target)}, expected ${JSON.stringify(expected.target)}`);
      chk.expect((expected.drew ?? false) === (p.index !== null), () => `${where()}: ${p.path} with drawn index ${p.index}`);
    });
    return chk.verdict();
  },
};

export const lbChoice: Invariant = {
  name: 'lb-choice',
  statement:
    'Random and strict draw only from priority 0 and failover only from the first non-empty priority group, so strict never yields a backend of priority 1 or worse; the drawn index lies in 1..count of that group and names the endpoint the pass used.',
  needs: 'passes',
  check(ctx) {
    const chk = new Checker();
    eachPass(ctx, (p, v) => {
      if (p.index === null) return;
      chk.exercise();
      const where = `operation ${v.i + 1}, pass ${p.pass}`;
      const svc = p.serviceId === null ? undefined : serviceOf(v.state, p.serviceId);
      if (!chk.expect(svc !== undefined, () => `${where}: drew index ${p.index} without a service`) || !svc) return;
      const group = lbGroup(svc.endpointCounts, svc.lbPolicy);
      if (!chk.expect(typeof group !== 'string', () => `${where}: drew from service ${svc.id} whose policy ends the pass (${String(group)})`)) return;
      const g = group as { prio: number; count: number };
      chk.expect(p.prio === g.prio, () => `${where}: drew from priority ${p.prio}, policy ${svc.lbPolicy} chooses from ${g.prio}`);
      chk.expect(p.count === g.count, () => `${where}: count ${p.count}, the service says ${g.count}`);
      chk.expect(p.index! >= 1 && p.index! <= g.count, () => `${where}: index ${p.index} outside 1..${g.count}`);
      const ep = endpointOf(v.state, svc.id, g.prio, p.index!);
      chk.expect((ep?.backendUid ?? null) === p.backendUid, () => `${where}: used backend ${p.backendUid}, endpoint (${svc.id}, ${g.prio}, ${p.index}) names ${ep?.backendUid ?? 'nothing'}`);
      if (svc.lbPolicy === LbPolicy.strict) chk.expect(p.prio === 0, () => `${where}: strict yielded a backend of priority ${p.prio}`);
    });
    return chk.verdict();
  },
};

export const portMapping: Invariant = {
  name: 'port-mapping',
  statement:
    "A rewrite to a backend takes the target port of the first slot whose service port equals the destination port; a waypoint keeps its own port and skips port mapping; the DNS proxy keeps the destination's port.",
  needs: 'passes',
  check(ctx) {
    const chk = new Checker();
    eachPass(ctx, (p, v) => {
      const t = p.target;
      if (!t) return;
      chk.exercise();
      const where = `operation ${v.i + 1}, pass ${p.pass}`;
      const written = p.path !== 'family-mismatch';
      if (t.kind === 'backend') {
        const svc = p.serviceId === null ? undefined : serviceOf(v.state, p.serviceId);
        if (!chk.expect(svc !== undefined, () => `${where}: a backend target without a service`) || !svc) return;
        let slot = -1;
        for (let i = 0; i < PORT_SLOTS && slot < 0; i++) if ((svc.servicePorts[i] ?? 0) === p.destIn.port) slot = i;
        chk.expect(p.portSlot === slot, () => `${where}: used port slot ${p.portSlot}, the first match for ${p.destIn.port} is ${slot}`);
        chk.expect(t.port === writtenPort(svc.targetPorts[slot] ?? 0), () => `${where}: target port ${t.port}, slot ${slot} says ${mapPortText(svc.targetPorts[slot] ?? 0)}`);
      } else {
        chk.expect(p.portSlot === null, () => `${where}: a ${t.kind} target went through port mapping (slot ${p.portSlot})`);
        if (t.kind === 'dns-proxy') chk.expect(t.port === p.destIn.port, () => `${where}: DNS changed the port to ${t.port}`);
        else {
          const owner = t.kind === 'service-waypoint' ? serviceOf(v.state, p.serviceId ?? -1)?.waypoint : backendOf(v.state, p.backendUid ?? -1)?.waypoint;
          const wp = owner ? configuredWaypoint(owner) : null;
          chk.expect(wp !== null && wp.port === t.port && wp.addr === ip(t.addr), () => `${where}: waypoint target ${JSON.stringify(t)} is not the configured one ${JSON.stringify(wp)}`);
        }
      }
      if (written) chk.expect(p.destOut.port === t.port, () => `${where}: rewrote the port to ${p.destOut.port}, target says ${t.port}`);
    });
    return chk.verdict();
  },
};

export const addressFamily: Invariant = {
  name: 'address-family',
  statement:
    "A pass writes a target in the socket's family (IPv4 on AF_INET; IPv4 as ::ffff:a.b.c.d or IPv6 as it is on AF_INET6), and a target the family cannot hold fails the pass with the destination unchanged.",
  needs: 'passes',
  check(ctx) {
    const chk = new Checker();
    eachPass(ctx, (p, v) => {
      const where = `operation ${v.i + 1}, pass ${p.pass}`;
      chk.expect(p.family === v.family && (v.family === 'inet') === !p.destOut.addr.includes(':'), () => `${where}: destination ${show(p.destOut)} is not in the socket's family ${v.family}`);
      if (!p.target) return;
      chk.exercise();
      const view = socketView(v.family, p.target.addr);
      if (view === null) {
        chk.expect(
          p.path === 'family-mismatch' && sameSockAddr(p.destOut, p.destIn),
          () => `${where}: ${p.target!.addr} cannot be written on ${v.family} but the pass ${p.path} ended at ${show(p.destOut)}`,
        );
      } else {
        chk.expect(p.path !== 'family-mismatch' && p.destOut.addr === view, () => `${where}: target ${p.target!.addr} should be written as ${view} on ${v.family}, got ${show(p.destOut)} (${p.path})`);
      }
    });
    return chk.verdict();
  },
};
