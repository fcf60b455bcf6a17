// Address and port pools. Frontends, backends, waypoints and connect destinations all draw from
// the same few addresses so that they meet: independent random addresses would almost never hit a
// frontend. Ordinary addresses lie in the harness's local ranges (10.0.0.0/8, fd00::/8, see
// DEFAULT_ENVIRONMENT) and shrink towards 10.0.0.1; edge addresses come with a modest weight.

import fc from 'fast-check';
import { canonicalIpAddr, formatIPv6, parseAddress, v4Mapped, type IpAddr } from '../model/address.js';
import { textMemo } from '../shared/memo.js';
import { arb, mix, uniform, type Table } from './choices.js';

/** How many ordinary addresses each family's pool holds: small, so that roles collide. */
export const V4_POOL_SIZE = 8;
export const V6_POOL_SIZE = 4;

/** The n-th ordinary IPv4 address (1-based): 10.0.0.1, 10.0.0.2, ... */
export function v4Host(n: number): IpAddr {
  if (!Number.isInteger(n) || n < 1 || n > 0xfffe) throw new RangeError(`v4Host: n must be 1..65534, got ${n}`);
  return `10.0.${n >> 8}.${n & 0xff}`;
}

/** The n-th ordinary IPv6 address (1-based): fd00::1, fd00::2, ... */
export function v6Host(n: number): IpAddr {
  if (!Number.isInteger(n) || n < 1 || n > 0xffff) throw new RangeError(`v6Host: n must be 1..65535, got ${n}`);
  return `fd00::${n.toString(16)}`;
}

/** IPv6 text whose first word is zero and which is no IPv4 key: ::a00:1 for 10.0.0.1. */
export function zeroFirstWordOf(ipv4: string): IpAddr {
  return zeroFirstWord(ipv4);
}

const zeroFirstWord = textMemo((ipv4) => {
  const b = new Uint8Array(16);
  b.set(parseAddress(ipv4), 12);
  return formatIPv6(b);
});

/**
 * IPv6 socket text whose bytes 4..15 are zero: a00:1:: for 10.0.0.1. As an ip_addr it is the
 * IPv4 key itself (docs/interpretation.md, item 2), so it only differs as a destination.
 */
export function ipv4KeyCollisionOf(ipv4: string): string {
  return keyCollision(ipv4);
}

const keyCollision = textMemo((ipv4) => {
  const b = new Uint8Array(16);
  b.set(parseAddress(ipv4), 0);
  return formatIPv6(b);
});

/**
 * IPv6 socket text that looks v4-mapped from word 2 on but has a prefix: fd00:1::ffff:a00:1 for
 * 10.0.0.1. It is a native IPv6 address (a program that checks only word 2 takes it for IPv4).
 */
export function nearMappedOf(ipv4: string): string {
  return nearMapped(ipv4);
}

const nearMapped = textMemo((ipv4) => {
  const b = new Uint8Array(16);
  b.set([0xfd, 0x00, 0x00, 0x01], 0);
  b.set([0xff, 0xff], 10);
  b.set(parseAddress(ipv4), 12);
  return formatIPv6(b);
});

/** Pod addresses of the harness: edges only (the source address of every socket). */
export const POD_ADDRESSES: readonly IpAddr[] = ['10.255.0.1', 'fd00:ffff::1'];

const V4_POOL: readonly IpAddr[] = Array.from({ length: V4_POOL_SIZE }, (_, i) => v4Host(i + 1));
const V6_POOL: readonly IpAddr[] = Array.from({ length: V6_POOL_SIZE }, (_, i) => v6Host(i + 1));

/** Edge ip_addr values a control plane could still write (none of them all-zero or v4-mapped). */
const consistentEdges: Table<IpAddr> = mix([['127.0.0.1', '0.0.0.2', '::1', '::2', ...POD_ADDRESSES], 1], [V4_POOL.map((a) => canonicalIpAddr(zeroFirstWordOf(a))), 1]);

/** Edge ip_addr values only raw states hold: all-zero and stored v4-mapped forms of pool VIPs. */
const rawOnlyEdges: Table<IpAddr> = mix([['0.0.0.0'], 1], [V4_POOL.map((a) => canonicalIpAddr(v4Mapped(a))), 1]);

export interface IpAddrOptions {
  /** 'consistent' leaves out edges no control plane writes (0.0.0.0, stored v4-mapped). */
  readonly edges?: 'consistent' | 'raw';
  /** Restrict to one form: 'v4' (bytes 4..15 zero) or any. */
  readonly v4Only?: boolean;
}

const IP_TABLES = {
  consistent: mix([V4_POOL, 70], [V6_POOL, 20], [consistentEdges, 10]),
  raw: mix([V4_POOL, 70], [V6_POOL, 20], [consistentEdges, 5], [rawOnlyEdges, 5]),
  v4Only: mix([V4_POOL, 18], [['127.0.0.1', '0.0.0.2', POD_ADDRESSES[0] ?? '10.255.0.1'], 1]),
};

/** The table of stored ip_addr values (canonical text), the simplest 10.0.0.1. */
export function ipAddrTable(opts: IpAddrOptions = {}): Table<IpAddr> {
  return opts.v4Only ? IP_TABLES.v4Only : opts.edges === 'raw' ? IP_TABLES.raw : IP_TABLES.consistent;
}

/** A stored ip_addr (canonical text), shrinking towards 10.0.0.1. */
export function ipAddrArb(opts: IpAddrOptions = {}): fc.Arbitrary<IpAddr> {
  const t = ipAddrTable(opts);
  return arb((d) => d.pick(t));
}

/** Ports that services, targets and destinations share; the first is the simplest. */
export const PORT_POOL: readonly number[] = [80, 443, 8080, 9080, 15001, 15008, 53, 5000];
export const WAYPOINT_PORT_POOL: readonly number[] = [15008, 15001, 8080, 53];

const PORT_TABLES = { any: mix([PORT_POOL, 40], [[0, 65535], 1]), nonZero: mix([PORT_POOL, 40], [[65535], 1]) };

/** Ports from the pool, the simplest 80; 0 and 65535 rarely unless `nonZero`. */
export function portTable(opts: { nonZero?: boolean } = {}): Table<number> {
  return opts.nonZero ? PORT_TABLES.nonZero : PORT_TABLES.any;
}

/** A port from the pool, shrinking to 80; 0 and 65535 rarely unless `nonZero`. */
export function portArb(opts: { nonZero?: boolean } = {}): fc.Arbitrary<number> {
  const t = portTable(opts);
  return arb((d) => d.pick(t));
}

/** Waypoint ports (never 0), the simplest 15008. */
export const WAYPOINT_PORTS: Table<number> = uniform(WAYPOINT_PORT_POOL);
