// struct sockaddr_in / sockaddr_in6 in preallocated buffers, and back to SockAddr text. Parsed
// address bytes are cached: cases reuse a handful of addresses.

import { formatIPv4, formatIPv6, parseAddress } from '../../model/address.js';
import type { Family, SockAddr } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { textMemo } from '../../shared/memo.js';
/** Linux address family numbers (sa_family). */
export const AF_INET = 2;
export const AF_INET6 = 10;

export const SOCKADDR_IN_LEN = 16;
export const SOCKADDR_IN6_LEN = 28;
export const SOCKADDR_MAX = 128;

const bytesOf: (text: string) => Uint8Array = textMemo(parseAddress, 10_000);

/** Writes a socket address of `family` into `buf`; returns its length. */
export function writeSockaddr(buf: Uint8Array, family: Family, a: SockAddr): number {
  const raw = bytesOf(a.addr);
  if (family === 'inet') {
    if (raw.length !== 4) throw new KmeshCheckError('codec', `an AF_INET socket cannot connect to ${a.addr}: give an IPv4 address`);
    buf.fill(0, 0, SOCKADDR_IN_LEN);
    buf[0] = AF_INET;
    buf[2] = a.port >>> 8;
    buf[3] = a.port & 0xff;
    buf.set(raw, 4);
    return SOCKADDR_IN_LEN;
  }
  if (raw.length !== 16) throw new KmeshCheckError('codec', `an AF_INET6 socket needs IPv6 text (v4-mapped as ::ffff:a.b.c.d), got ${a.addr}`);
  buf.fill(0, 0, SOCKADDR_IN6_LEN);
  buf[0] = AF_INET6;
  buf[2] = a.port >>> 8;
  buf[3] = a.port & 0xff;
  buf.set(raw, 8);
  return SOCKADDR_IN6_LEN;
}

/** Reads a sockaddr_in or sockaddr_in6 as written by the kernel. */
export function readSockaddr(buf: Uint8Array): SockAddr & { family: Family } {
  const fam = (buf[0] ?? 0) | ((buf[1] ?? 0) << 8);
  const port = ((buf[2] ?? 0) << 8) | (buf[3] ?? 0);
  if (fam === AF_INET) return { family: 'inet', addr: formatIPv4(buf, 4), port };
  if (fam === AF_INET6) return { family: 'inet6', addr: formatIPv6(buf, 8), port };
  throw new KmeshCheckError('worker', `unexpected socket address family ${fam}`);
}

/**
 * A compact identity of a socket address that is the same for an AF_INET address and its
 * v4-mapped form (a dual-stack listener sees AF_INET clients as ::ffff:a.b.c.d).
 */
export function sockaddrKey(buf: Uint8Array): string {
  const port = ((buf[2] ?? 0) << 8) | (buf[3] ?? 0);
  if (buf[0] === AF_INET) return `${port}/${u32be(buf, 4)}`;
  // v4-mapped: ::ffff:a.b.c.d keys like the AF_INET form.
  if (u32be(buf, 8) === 0 && u32be(buf, 12) === 0 && u32be(buf, 16) === 0xffff) return `${port}/${u32be(buf, 20)}`;
  return `${port}/${u32be(buf, 8)}/${u32be(buf, 12)}/${u32be(buf, 16)}/${u32be(buf, 20)}`;
}

function u32be(b: Uint8Array, off: number): number {
  return (((b[off] ?? 0) << 24) | ((b[off + 1] ?? 0) << 16) | ((b[off + 2] ?? 0) << 8) | (b[off + 3] ?? 0)) >>> 0;
}
