// Connect contexts: socket family, protocol and destination. A destination is generated as a
// choice ("the n-th frontend, the m-th of its service ports, v4-mapped") and resolved against the
// map state the connect meets, so that most connects take a real path through the maps and the
// same choice still makes sense after the state shrinks or a sequence changes it.

import fc from 'fast-check';
import { canonicalSockText, isIPv4Form, v4Mapped, type Family, type SockAddr } from '../model/address.js';
import { CONTROL_ADDR, ControlPort, DNS_PORT, DNS_PROXY_UID, PORT_SLOTS, writtenPort, type IpAddr, type MapState, type Protocol, type Waypoint } from '../model/domain.js';
import { ipAddrTable, ipv4KeyCollisionOf, nearMappedOf, portTable } from './addresses.js';
import { arb, mix, Table, uniform, type Gen } from './choices.js';

export interface ConnectContext {
  readonly family: Family;
  readonly protocol: Protocol;
  readonly dest: SockAddr;
}

/**
 * How an AF_INET6 socket writes an IPv4-form address: v4-mapped (looked up by its IPv4 key), with
 * the IPv4 bytes at the front and zeros after (the same key, docs/interpretation.md item 2), or
 * near-mapped (fd00:1::ffff:a.b.c.d: a native IPv6 address, its own key).
 */
export type V6Form = 'mapped' | 'collision' | 'near-mapped';

export type PortChoice = { readonly from: 'service'; readonly ref: number } | { readonly from: 'pool'; readonly port: number };

export type DestChoice =
  | { readonly to: 'frontend'; readonly ref: number; readonly port: PortChoice; readonly form: V6Form; readonly waypointed?: true }
  | { readonly to: 'backend'; readonly ref: number; readonly port: PortChoice; readonly form: V6Form }
  | { readonly to: 'waypoint'; readonly ref: number; readonly form: V6Form }
  | { readonly to: 'other'; readonly addr: IpAddr; readonly port: number; readonly form: V6Form }
  | { readonly to: 'dns'; readonly ref: number; readonly viaFrontend: boolean; readonly addr: IpAddr; readonly form: V6Form }
  /** nearMiss 0: the control address itself; n > 0: the n-th of CONTROL_NEAR_MISSES (modulo their number). */
  | { readonly to: 'control'; readonly port: number; readonly nearMiss: number };

/** Refs pick among up to 8 candidates (modulo what exists). */
export const REFS = 8;

export const FAMILIES: Table<Family> = new Table<Family>(['inet', 'inet6'], [3, 2]);
export const PROTOCOLS: Table<Protocol> = new Table<Protocol>(['tcp', 'udp'], [4, 1]);
const FORMS: Table<V6Form> = new Table<V6Form>(['mapped', 'collision', 'near-mapped'], [9, 1, 1]);

/** A port choice is one choice: the n-th service port (any of a full table's slots), or a pool port. */
const PORT_CHOICES: Table<PortChoice> = mix<PortChoice>(
  [Array.from({ length: PORT_SLOTS }, (_, ref) => ({ from: 'service' as const, ref })), 4],
  [portTable().map((port): PortChoice => ({ from: 'pool', port })), 1],
);
const POOL_PORTS = portTable();

type DestKind = DestChoice['to'];
const DEST_KINDS: Table<DestKind> = new Table<DestKind>(['frontend', 'other', 'dns', 'control', 'backend', 'waypoint'], [62, 14, 8, 6, 6, 4]);
const CONTROL_PORTS = uniform([ControlPort.enrol, ControlPort.withdraw]);
const NEAR_MISS = new Table([false, true], [2, 1]);

/**
 * Addresses a control check that reads only part of the control address takes for it (no
 * control connect: docs/interpretation.md, item 4): for ::2, each of its first three 32-bit words
 * changed (::ffff:0.0.0.2 for a check of word 2 against 0xffff too); for 0.0.0.2, its bytes reversed.
 */
export const CONTROL_NEAR_MISSES: Readonly<Record<Family, readonly string[]>> = {
  inet: ['2.0.0.0'],
  inet6: ['::ffff:0.0.0.2', 'fd00::2', '0:0:1::2', '::1:0:2'],
};
const BOOLS = uniform([false, true]);
const RAW_ADDRS = ipAddrTable({ edges: 'raw' });
const ADDRS = ipAddrTable();

/** A destination choice: one entry of the tape. */
export const destChoiceGen: Gen<DestChoice> = (d) =>
  d.group((g): DestChoice => {
    const to = g.pick(DEST_KINDS);
    switch (to) {
      case 'frontend':
      case 'backend':
        return { to, ref: g.int(REFS), port: g.pick(PORT_CHOICES), form: g.pick(FORMS) };
      case 'waypoint':
        return { to, ref: g.int(REFS), form: g.pick(FORMS) };
      case 'other':
        return { to, addr: g.pick(RAW_ADDRS), port: g.pick(POOL_PORTS), form: g.pick(FORMS) };
      case 'dns':
        return { to, ref: g.int(REFS), viaFrontend: g.pick(BOOLS), addr: g.pick(ADDRS), form: g.pick(FORMS) };
      case 'control':
        return { to, port: g.pick(CONTROL_PORTS), nearMiss: g.pick(NEAR_MISS) ? 1 + g.int(REFS) : 0 };
    }
  });

/**
 * Another connect of a socket to a frontend whose upstream (service or backend) names a waypoint
 * (the first frontend when none does): a socket whose original an earlier connect recorded
 * without one then meets the waypoint path (section 3.8's once-only rules), which an ordinary
 * choice of another destination rarely makes.
 */
export const waypointedFrontendGen: Gen<DestChoice> = (d) => d.group((g): DestChoice => ({ to: 'frontend', ref: g.int(REFS), port: g.pick(PORT_CHOICES), form: g.pick(FORMS), waypointed: true }));

/** Whether km_frontend's upstream id names a service or a backend with a waypoint. */
function upstreamHasWaypoint(s: MapState, upstreamId: number): boolean {
  const svc = s.services.find((v) => v.id === upstreamId);
  if (svc && svc.waypoint.port !== 0) return true;
  const backend = s.backends.find((b) => b.uid === upstreamId);
  return backend !== undefined && backend.waypoint.port !== 0;
}

function pick<T>(xs: readonly T[], r: number): T | undefined {
  return xs[r % Math.max(1, xs.length)];
}

/** Socket text of an ip_addr in a family, or null when the family cannot hold it. */
export function addrInFamily(family: Family, addr: IpAddr, form: V6Form): string | null {
  if (family === 'inet') return isIPv4Form(addr) ? addr : null;
  if (!isIPv4Form(addr)) return canonicalSockText('inet6', addr);
  if (form === 'mapped') return canonicalSockText('inet6', v4Mapped(addr));
  return form === 'collision' ? ipv4KeyCollisionOf(addr) : nearMappedOf(addr);
}

/** An address the family can hold: the first candidate that fits, else the fallback (IPv4 form). */
function firstFitting(family: Family, addrs: readonly IpAddr[], r: number, form: V6Form, fallback: IpAddr): string {
  const fitting = family === 'inet' ? addrs.filter(isIPv4Form) : addrs;
  const chosen = pick(fitting, r) ?? fallback;
  return addrInFamily(family, chosen, form) ?? addrInFamily(family, fallback, form) ?? fallback;
}

/** The ports a service's slots name; a raw port's low half (what a program that compares 16 bits takes it for). */
function servicePortsOf(s: MapState, upstreamId: number): number[] {
  const svc = s.services.find((v) => v.id === upstreamId);
  if (!svc) return [];
  const out: number[] = [];
  for (let i = 0; i < PORT_SLOTS; i++) {
    const sp = svc.servicePorts[i] ?? 0;
    if (sp !== 0 || (svc.targetPorts[i] ?? 0) !== 0) out.push(writtenPort(sp));
  }
  return out;
}

function portFor(s: MapState, upstreamId: number | undefined, choice: PortChoice): number {
  if (choice.from === 'pool') return choice.port;
  const ports = upstreamId === undefined ? [] : servicePortsOf(s, upstreamId);
  // Even refs count slots from the first, odd ones from the last: both ends of a full table.
  const r = choice.ref;
  const n = Math.max(1, ports.length);
  return pick(ports, r % 2 === 0 ? r >> 1 : n - 1 - ((r >> 1) % n)) ?? 80;
}

const FALLBACK_V4: IpAddr = '10.0.0.1';

/** The destination a choice names in state `s`, written in the socket's family. */
export function resolveDestination(s: MapState, family: Family, c: DestChoice): SockAddr {
  switch (c.to) {
    case 'frontend': {
      const waypointed = c.waypointed ? s.frontends.filter((f) => upstreamHasWaypoint(s, f.upstreamId)) : [];
      const candidates = waypointed.length > 0 ? waypointed : s.frontends;
      const fitting = family === 'inet' ? candidates.filter((f) => isIPv4Form(f.addr)) : candidates;
      const f = pick(fitting, c.ref);
      const addr = addrInFamily(family, f?.addr ?? FALLBACK_V4, c.form) ?? FALLBACK_V4;
      return { addr, port: portFor(s, f?.upstreamId, c.port) };
    }
    case 'backend': {
      const pods: IpAddr[] = [];
      for (const b of s.backends) if (b.uid !== DNS_PROXY_UID) pods.push(b.addr);
      return { addr: firstFitting(family, pods, c.ref, c.form, FALLBACK_V4), port: portFor(s, undefined, c.port) };
    }
    case 'waypoint': {
      // Loops, not map and spread: an optimised map fills a holey array, an unoptimised one a
      // packed one, and `pick` would meet both.
      const wps: Waypoint[] = [];
      for (const v of s.services) if (v.waypoint.port !== 0) wps.push(v.waypoint);
      for (const b of s.backends) if (b.waypoint.port !== 0) wps.push(b.waypoint);
      const fitting = family === 'inet' ? wps.filter((w) => isIPv4Form(w.addr)) : wps;
      const w = pick(fitting, c.ref);
      if (!w) return { addr: addrInFamily(family, FALLBACK_V4, c.form) ?? FALLBACK_V4, port: 15008 };
      return { addr: addrInFamily(family, w.addr, c.form) ?? FALLBACK_V4, port: writtenPort(w.port) };
    }
    case 'other':
      return { addr: addrInFamily(family, c.addr, c.form) ?? FALLBACK_V4, port: c.port };
    case 'dns': {
      const addrs: IpAddr[] = [];
      if (c.viaFrontend) for (const f of s.frontends) addrs.push(f.addr);
      else addrs.push(c.addr);
      return { addr: firstFitting(family, addrs, c.ref, c.form, FALLBACK_V4), port: DNS_PORT };
    }
    case 'control': {
      const misses = CONTROL_NEAR_MISSES[family];
      const addr = c.nearMiss > 0 ? misses[(c.nearMiss - 1) % misses.length]! : CONTROL_ADDR[family];
      return { addr, port: c.port };
    }
  }
}

/** A connect context for a socket meeting state `s`. */
export function connectContext(s: MapState): fc.Arbitrary<ConnectContext> {
  return arb((d) => {
    const family = d.pick(FAMILIES);
    const protocol = d.pick(PROTOCOLS);
    return { family, protocol, dest: resolveDestination(s, family, destChoiceGen(d)) };
  });
}
