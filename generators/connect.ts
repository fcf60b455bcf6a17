// Connect contexts: socket family, protocol and destination. A destination is generated as a
// choice ("the n-th frontend, the m-th of its service ports, v4-mapped") and resolved against the
// map state the connect meets, so that most connects take a real path through the maps and the
// same choice still makes sense after the state shrinks or a sequence changes it.

import fc from 'fast-check';
import { canonicalSockText, isIPv4Form, v4Mapped, type Family, type SockAddr } from '../model/address.js';
import { CONTROL_ADDR, ControlPort, DNS_PORT, DNS_PROXY_UID, PORT_SLOTS, type IpAddr, type MapState, type Protocol } from '../model/domain.js';
import { ipAddrArb, ipv4KeyCollisionOf, portArb } from './addresses.js';

export interface ConnectContext {
  readonly family: Family;
  readonly protocol: Protocol;
  readonly dest: SockAddr;
}

/**
 * How an AF_INET6 socket writes an IPv4-form address: v4-mapped (looked up by its IPv4 key) or
 * with the IPv4 bytes at the front and zeros after (the same key, docs/interpretation.md item 2).
 */
export type V6Form = 'mapped' | 'collision';

export type PortChoice = { readonly from: 'service'; readonly ref: number } | { readonly from: 'pool'; readonly port: number };

export type DestChoice =
  | { readonly to: 'frontend'; readonly ref: number; readonly port: PortChoice; readonly form: V6Form }
  | { readonly to: 'backend'; readonly ref: number; readonly port: PortChoice; readonly form: V6Form }
  | { readonly to: 'waypoint'; readonly ref: number; readonly form: V6Form }
  | { readonly to: 'other'; readonly addr: IpAddr; readonly port: number; readonly form: V6Form }
  | { readonly to: 'dns'; readonly ref: number; readonly viaFrontend: boolean; readonly addr: IpAddr; readonly form: V6Form }
  | { readonly to: 'control'; readonly port: number; readonly nearMiss: boolean };

const ref = fc.nat({ max: 7 });

export const familyArb: fc.Arbitrary<Family> = fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant('inet' as const), weight: 3 }, { arbitrary: fc.constant('inet6' as const), weight: 2 });

export const protocolArb: fc.Arbitrary<Protocol> = fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant('tcp' as const), weight: 4 }, { arbitrary: fc.constant('udp' as const), weight: 1 });

const formArb: fc.Arbitrary<V6Form> = fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant('mapped' as const), weight: 9 }, { arbitrary: fc.constant('collision' as const), weight: 1 });

const portChoiceArb: fc.Arbitrary<PortChoice> = fc.oneof(
  { withCrossShrink: true },
  { arbitrary: fc.record({ from: fc.constant('service' as const), ref }), weight: 4 },
  { arbitrary: fc.record({ from: fc.constant('pool' as const), port: portArb() }), weight: 1 },
);

export const destChoiceArb: fc.Arbitrary<DestChoice> = fc.oneof(
  { withCrossShrink: true },
  { arbitrary: fc.record({ to: fc.constant('frontend' as const), ref, port: portChoiceArb, form: formArb }), weight: 62 },
  { arbitrary: fc.record({ to: fc.constant('other' as const), addr: ipAddrArb({ edges: 'raw' }), port: portArb(), form: formArb }), weight: 14 },
  { arbitrary: fc.record({ to: fc.constant('dns' as const), ref, viaFrontend: fc.boolean(), addr: ipAddrArb(), form: formArb }), weight: 8 },
  {
    arbitrary: fc.record({
      to: fc.constant('control' as const),
      port: fc.constantFrom(ControlPort.enrol, ControlPort.withdraw),
      nearMiss: fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant(false), weight: 5 }, { arbitrary: fc.constant(true), weight: 1 }),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ to: fc.constant('backend' as const), ref, port: portChoiceArb, form: formArb }), weight: 6 },
  { arbitrary: fc.record({ to: fc.constant('waypoint' as const), ref, form: formArb }), weight: 4 },
);

function pick<T>(xs: readonly T[], r: number): T | undefined {
  return xs[r % Math.max(1, xs.length)];
}

/** Socket text of an ip_addr in a family, or null when the family cannot hold it. */
export function addrInFamily(family: Family, addr: IpAddr, form: V6Form): string | null {
  if (family === 'inet') return isIPv4Form(addr) ? addr : null;
  if (!isIPv4Form(addr)) return canonicalSockText('inet6', addr);
  return form === 'mapped' ? canonicalSockText('inet6', v4Mapped(addr)) : ipv4KeyCollisionOf(addr);
}

/** An address the family can hold: the first candidate that fits, else the fallback (IPv4 form). */
function firstFitting(family: Family, addrs: readonly IpAddr[], r: number, form: V6Form, fallback: IpAddr): string {
  const fitting = family === 'inet' ? addrs.filter(isIPv4Form) : addrs;
  const chosen = pick(fitting, r) ?? fallback;
  return addrInFamily(family, chosen, form) ?? addrInFamily(family, fallback, form) ?? fallback;
}

function servicePortsOf(s: MapState, upstreamId: number): number[] {
  const svc = s.services.find((v) => v.id === upstreamId);
  if (!svc) return [];
  const out: number[] = [];
  for (let i = 0; i < PORT_SLOTS; i++) {
    const sp = svc.servicePorts[i] ?? 0;
    if (sp !== 0 || (svc.targetPorts[i] ?? 0) !== 0) out.push(sp);
  }
  return out;
}

function portFor(s: MapState, upstreamId: number | undefined, choice: PortChoice): number {
  if (choice.from === 'pool') return choice.port;
  const ports = upstreamId === undefined ? [] : servicePortsOf(s, upstreamId);
  return pick(ports, choice.ref) ?? 80;
}

const FALLBACK_V4: IpAddr = '10.0.0.1';

/** The destination a choice names in state `s`, written in the socket's family. */
export function resolveDestination(s: MapState, family: Family, c: DestChoice): SockAddr {
  switch (c.to) {
    case 'frontend': {
      const fitting = family === 'inet' ? s.frontends.filter((f) => isIPv4Form(f.addr)) : s.frontends;
      const f = pick(fitting, c.ref);
      const addr = addrInFamily(family, f?.addr ?? FALLBACK_V4, c.form) ?? FALLBACK_V4;
      return { addr, port: portFor(s, f?.upstreamId, c.port) };
    }
    case 'backend': {
      const pods = s.backends.filter((b) => b.uid !== DNS_PROXY_UID).map((b) => b.addr);
      return { addr: firstFitting(family, pods, c.ref, c.form, FALLBACK_V4), port: portFor(s, undefined, c.port) };
    }
    case 'waypoint': {
      const wps = [...s.services.map((v) => v.waypoint), ...s.backends.map((b) => b.waypoint)].filter((w) => w.port !== 0);
      const fitting = family === 'inet' ? wps.filter((w) => isIPv4Form(w.addr)) : wps;
      const w = pick(fitting, c.ref);
      if (!w) return { addr: addrInFamily(family, FALLBACK_V4, c.form) ?? FALLBACK_V4, port: 15008 };
      return { addr: addrInFamily(family, w.addr, c.form) ?? FALLBACK_V4, port: w.port };
    }
    case 'other':
      return { addr: addrInFamily(family, c.addr, c.form) ?? FALLBACK_V4, port: c.port };
    case 'dns': {
      const addrs = c.viaFrontend ? s.frontends.map((f) => f.addr) : [c.addr];
      return { addr: firstFitting(family, addrs, c.ref, c.form, FALLBACK_V4), port: DNS_PORT };
    }
    case 'control': {
      // The near miss ::ffff:0.0.0.2 is no control connect (docs/interpretation.md, item 4).
      const addr = family === 'inet6' && c.nearMiss ? '::ffff:0.0.0.2' : CONTROL_ADDR[family];
      return { addr, port: c.port };
    }
  }
}

/** A connect context for a socket meeting state `s`. */
export function connectContext(s: MapState): fc.Arbitrary<ConnectContext> {
  return fc.tuple(familyArb, protocolArb, destChoiceArb).map(([family, protocol, c]) => ({ family, protocol, dest: resolveDestination(s, family, c) }));
}
