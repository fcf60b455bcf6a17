// Addresses in domain terms. Two kinds of address exist in the data path:
//  - an `IpAddr`: the 16-byte `ip_addr` union kept in maps, written as text. The ABI cannot tell
//    IPv4 10.0.0.1 from IPv6 a00:1:: (same bytes), so neither can this type: the canonical text is
//    dotted-quad when bytes 4..15 are zero and RFC 5952 IPv6 text otherwise.
//  - a socket address (`SockAddr`), whose family is the socket's: dotted-quad on AF_INET,
//    IPv6 text (v4-mapped written as ::ffff:a.b.c.d) on AF_INET6.
// Byte encoding lives in bpf/codec; these helpers only parse, format and classify. Text stays the
// domain's value (cases are saved, replayed and diffed as text); every parse and classification
// is interned per text, so the hot path reads a memo instead of re-parsing the same few addresses.

import { textMemo } from '../shared/memo.js';

export type Family = 'inet' | 'inet6';

/** Canonical text of a 16-byte ip_addr (see above). */
export type IpAddr = string;

export interface SockAddr {
  readonly addr: string;
  /** Host-order port, 0..65535. */
  readonly port: number;
}

export class AddressError extends Error {}

function parseIPv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

function parseIPv6(text: string): number[] | null {
  let head = text;
  let tailV4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.slice(lastColon + 1).includes('.')) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (!v4) return null;
    tailV4 = v4;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = groups(halves[0] ?? '');
  const right = halves.length === 2 ? groups(halves[1] ?? '') : [];
  if (!left || !right) return null;
  let words: number[];
  if (halves.length === 2) {
    const fill = 8 - left.length - right.length;
    if (fill < 1) return null;
    words = [...left, ...new Array<number>(fill).fill(0), ...right];
  } else {
    words = left;
  }
  if (words.length !== 8) return null;
  const bytes: number[] = [];
  for (const w of words) bytes.push(w >> 8, w & 0xff);
  if (tailV4.length) bytes.splice(12, 4, ...tailV4);
  return bytes;
}

/** The bytes (4 or 16) of address text, or null when it is none: interned, never mutate. */
const bytesOfText = textMemo((text: string): Uint8Array | null => {
  const b = text.includes(':') ? parseIPv6(text) : parseIPv4(text);
  return b ? Uint8Array.from(b) : null;
});

function addressBytes(text: string): Uint8Array {
  const b = bytesOfText(text);
  if (!b) throw new AddressError(`not an IP address: ${JSON.stringify(text)}`);
  return b;
}

/** Parses IPv4 or IPv6 text into its bytes (4 or 16); the caller owns the array. */
export function parseAddress(text: string): Uint8Array {
  return addressBytes(text).slice();
}

export function formatIPv4(b: ArrayLike<number>, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/** RFC 5952 text of 16 bytes; v4-mapped addresses as ::ffff:a.b.c.d. */
export function formatIPv6(b: ArrayLike<number>, offset = 0): string {
  const words: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) words[i] = ((b[offset + 2 * i] ?? 0) << 8) | (b[offset + 2 * i + 1] ?? 0);
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return `::ffff:${formatIPv4(b, offset + 12)}`;
  }
  // The longest run of two or more zero words (the first of equal runs) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += (words[i] ?? 0).toString(16);
  }
  return out;
}

/** The 16 bytes of an ip_addr text, interned (IPv4 text fills bytes 0..3). */
const ipAddr16 = textMemo((addr: IpAddr): Uint8Array => {
  const b = addressBytes(addr);
  if (b.length === 16) return b;
  const out = new Uint8Array(16);
  out.set(b, 0);
  return out;
});

/** The 16 bytes of an ip_addr given as text (IPv4 text fills bytes 0..3); the caller owns the array. */
export function ipAddrBytes(addr: IpAddr): Uint8Array {
  return ipAddr16(addr).slice();
}

/** Canonical ip_addr text of 16 bytes. */
export function ipAddrFromBytes(b: ArrayLike<number>, offset = 0): IpAddr {
  for (let i = 4; i < 16; i++) if ((b[offset + i] ?? 0) !== 0) return formatIPv6(b, offset);
  return formatIPv4(b, offset);
}

/** Canonical form of any address text as an ip_addr (e.g. "a00:1::" becomes "10.0.0.1"). */
export const canonicalIpAddr: (text: string) => IpAddr = textMemo((text) => ipAddrFromBytes(ipAddr16(text)));

/** An ip_addr is IPv4 when bytes 4..15 are zero (docs/interpretation.md, item 1). */
export function isIPv4Form(addr: IpAddr): boolean {
  return !addr.includes(':');
}

export const isAllZero: (addr: IpAddr) => boolean = textMemo((addr) => ipAddr16(addr).every((x) => x === 0));

/** Whether 16 address bytes are ::ffff:a.b.c.d. */
export function isV4MappedBytes(b: ArrayLike<number>): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** For AF_INET6 socket text: the IPv4 address inside ::ffff:a.b.c.d, or null. */
export const v4MappedInner: (sockText: string) => string | null = textMemo((sockText) => {
  if (!sockText.includes(':')) return null;
  const b = addressBytes(sockText);
  return isV4MappedBytes(b) ? formatIPv4(b, 12) : null;
});

/** Address text as an ip_addr key with a v4-mapped address folded to its IPv4 key (the km_frontend and km_manage keys). */
export const foldedIpAddr: (text: string) => IpAddr = textMemo((text) => v4MappedInner(text) ?? canonicalIpAddr(text));

/** The v4-mapped IPv6 text of an IPv4 address (interned: the same text object every time, so map lookups keyed on it hash once). */
export const v4Mapped: (ipv4: string) => string = textMemo((ipv4) => `::ffff:${ipv4}`);

/** Canonical socket text of one family, or why the text is none (kept, so bad text is not re-parsed). */
function sockTextMemo(family: Family): (text: string) => { readonly text: string } | { readonly error: string } {
  return textMemo((text) => {
    const b = bytesOfText(text);
    if (!b) return { error: `not an IP address: ${JSON.stringify(text)}` };
    if (family === 'inet') return b.length === 4 ? { text: formatIPv4(b) } : { error: `an AF_INET socket address must be IPv4: ${text}` };
    return b.length === 16 ? { text: formatIPv6(b) } : { error: `an AF_INET6 socket address must be IPv6 text: ${text}` };
  });
}

const sockText = { inet: sockTextMemo('inet'), inet6: sockTextMemo('inet6') } as const;

/** Canonical socket-address text for a family (normalises IPv6 spelling). */
export function canonicalSockText(family: Family, text: string): string {
  const r = sockText[family](text);
  if ('error' in r) throw new AddressError(r.error);
  return r.text;
}

export function sockAddrEquals(a: SockAddr, b: SockAddr): boolean {
  return a.addr === b.addr && a.port === b.port;
}

/** A port as text; a map port whose u32 has an upper half shows it (`80+0x1<<16`, interpretation.md, item 22). */
export function mapPortText(port: number): string {
  return port <= 0xffff ? `${port}` : `${port & 0xffff}+0x${Math.floor(port / 0x10000).toString(16)}<<16`;
}

export function formatSockAddr(family: Family, s: SockAddr): string {
  const port = mapPortText(s.port);
  return family === 'inet6' ? `[${s.addr}]:${port}` : `${s.addr}:${port}`;
}

/** An address and port as text, IPv6 in brackets (the family read from the address text). */
export function sockAddrText(s: SockAddr): string {
  return formatSockAddr(s.addr.includes(':') ? 'inet6' : 'inet', s);
}
