// Byte-exact codecs of the acceleration maps (kmesh-dataplane.md section 8): sock_key (24 B,
// packed) and sock_param (490 B, packed: four lists of a u8 count and 10 u32 pairs, then 166 B
// of dump settings). Addresses in keys are network order and ports u32 with the network-order
// port in the low 16 bits; the filter's CIDRs and ranges are host order.

import { formatIPv4, parseAddress } from '../../model/address.js';
import { FILTER_LISTS, type AccelFilter, type Cidr, type FilterList, type PortRange } from '../../model/accel/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { checkMapShape, type MapShape } from './abi.js';
import { portFromU32, portToU32, readU32, readU64, writeU32, writeU64 } from './structs.js';

export const SOCK_KEY_SIZE = 24;
export const SOCK_KEY_OFFSETS = { sip4: 0, dip4: 4, sport: 8, dport: 12, netnsCookie: 16 } as const;
export const SOCK_PARAM_SIZE = 490;
export const FILTER_SLOTS = 10;
export const FILTER_LIST_SIZE = 81;
export const SOCK_PARAM_OFFSETS = { acceptCidrs: 0, returnCidrs: 81, acceptPorts: 162, returnPorts: 243, dump: 324 } as const;

/** The two programs of section 8, by role. */
export const ACCEL_PROGRAMS = { ops: 'ma_ops', redirect: 'ma_redirect' } as const;

/** The acceleration maps as the objects must define them. */
export const ACCEL_MAPS = [
  { name: 'sock_ops_map', type: 18 /* sockhash */, keySize: SOCK_KEY_SIZE, valueSize: 4, maxEntries: 196608 },
  { name: 'sock_proxy_map', type: 1 /* hash */, keySize: SOCK_KEY_SIZE, valueSize: SOCK_KEY_SIZE, maxEntries: 196608 },
  { name: 'sock_param_map', type: 2 /* array */, keySize: 4, valueSize: SOCK_PARAM_SIZE, maxEntries: 1 },
] as const;
export type AccelMapName = (typeof ACCEL_MAPS)[number]['name'];

/** Throws (abi-mismatch) when a map of `name` differs from section 8's table in type, sizes or capacity. */
export function checkAccelMapShape(where: string, name: AccelMapName, shape: MapShape): void {
  const abi = ACCEL_MAPS.find((m) => m.name === name)!;
  checkMapShape(where, 8, abi, shape);
}

export interface SockKeyBytes {
  readonly local: string;
  readonly remote: string;
  readonly localPort: number;
  readonly remotePort: number;
  readonly cookie: bigint;
}

function ipv4(text: string, what: string): Uint8Array {
  let b: Uint8Array;
  try {
    b = parseAddress(text);
  } catch {
    throw new KmeshCheckError('codec', `${what} ${JSON.stringify(text)} is not an address: give a dotted IPv4 address`);
  }
  if (b.length !== 4) throw new KmeshCheckError('codec', `${what} ${text} is not IPv4: the acceleration maps hold IPv4 only`);
  return b;
}

/** Host-order u32 of a dotted IPv4 address. */
export function ipv4ToU32(text: string): number {
  const b = ipv4(text, 'address');
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export function u32ToIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

export function encodeSockKey(k: SockKeyBytes, out = new Uint8Array(SOCK_KEY_SIZE)): Uint8Array {
  out.set(ipv4(k.local, 'sock_key local address'), SOCK_KEY_OFFSETS.sip4);
  out.set(ipv4(k.remote, 'sock_key remote address'), SOCK_KEY_OFFSETS.dip4);
  writeU32(out, SOCK_KEY_OFFSETS.sport, portToU32(k.localPort));
  writeU32(out, SOCK_KEY_OFFSETS.dport, portToU32(k.remotePort));
  writeU64(out, SOCK_KEY_OFFSETS.netnsCookie, k.cookie);
  return out;
}

export function decodeSockKey(b: Uint8Array): SockKeyBytes {
  if (b.length !== SOCK_KEY_SIZE) throw new KmeshCheckError('codec', `a sock_key is ${SOCK_KEY_SIZE} bytes, got ${b.length}`);
  return {
    local: formatIPv4(b, SOCK_KEY_OFFSETS.sip4),
    remote: formatIPv4(b, SOCK_KEY_OFFSETS.dip4),
    localPort: portFromU32(readU32(b, SOCK_KEY_OFFSETS.sport)),
    remotePort: portFromU32(readU32(b, SOCK_KEY_OFFSETS.dport)),
    cookie: readU64(b, SOCK_KEY_OFFSETS.netnsCookie),
  };
}

/** The upper 16 bits of a key's port words, which the programs must leave zero. */
export function sockKeyPortHighBits(b: Uint8Array): number {
  return (readU32(b, SOCK_KEY_OFFSETS.sport) >>> 16) | (readU32(b, SOCK_KEY_OFFSETS.dport) >>> 16);
}

function checkList<T>(list: readonly T[], what: string): void {
  if (list.length > FILTER_SLOTS) throw new KmeshCheckError('codec', `${what} has ${list.length} entries: sock_param holds at most ${FILTER_SLOTS}`);
}

function checkU32(v: number, what: string): number {
  if (v >>> 0 !== v) throw new KmeshCheckError('codec', `${what} must be a u32, got ${v}`);
  return v;
}

/**
 * Fills the slots of a list past its count with a pair that matches everything (CIDR 0.0.0.0 mask
 * 0, ports 0-65535): a control plane may leave stale entries there, and a program must read only
 * `count` of them. Read by mistake, such a pair rejects every connection through a return list
 * and admits every one through a non-empty accept list, so the overrun shows.
 */
function fillStale(out: Uint8Array, off: number, from: number, a: number, b: number): void {
  for (let i = from; i < FILTER_SLOTS; i++) {
    writeU32(out, off + 1 + i * 8, a);
    writeU32(out, off + 5 + i * 8, b);
  }
}

/** A list's count byte: its length, or the count byte the filter gives a full list (11..255). */
function countByte(list: readonly unknown[], given: number | undefined, what: string): number {
  if (given === undefined) return list.length;
  if (!Number.isInteger(given) || given < FILTER_SLOTS + 1 || given > 255 || list.length !== FILTER_SLOTS) {
    throw new KmeshCheckError('codec', `${what}: a count byte of its own (${given}) is 11..255 and only for a full list of ${FILTER_SLOTS}, which has ${list.length}`);
  }
  return given;
}

function writeCidrs(out: Uint8Array, off: number, list: readonly Cidr[], what: string, count?: number): void {
  checkList(list, what);
  out[off] = countByte(list, count, what);
  list.forEach((c, i) => {
    writeU32(out, off + 1 + i * 8, ipv4ToU32(c.ip));
    writeU32(out, off + 5 + i * 8, checkU32(c.mask, `${what}[${i}].mask`));
  });
  fillStale(out, off, list.length, 0, 0);
}

function writePorts(out: Uint8Array, off: number, list: readonly PortRange[], what: string, count?: number): void {
  checkList(list, what);
  out[off] = countByte(list, count, what);
  list.forEach((r, i) => {
    writeU32(out, off + 1 + i * 8, checkU32(r.begin, `${what}[${i}].begin`));
    writeU32(out, off + 5 + i * 8, checkU32(r.end, `${what}[${i}].end`));
  });
  fillStale(out, off, list.length, 0, 0xffff);
}

/** sock_param with the filter (stale pairs past each list's count) and zeroed dump settings. */
export function encodeSockParam(f: AccelFilter): Uint8Array {
  const out = new Uint8Array(SOCK_PARAM_SIZE);
  const c = f.countBytes ?? {};
  writeCidrs(out, SOCK_PARAM_OFFSETS.acceptCidrs, f.acceptCidrs, 'accept CIDRs', c.acceptCidrs);
  writeCidrs(out, SOCK_PARAM_OFFSETS.returnCidrs, f.returnCidrs, 'return CIDRs', c.returnCidrs);
  writePorts(out, SOCK_PARAM_OFFSETS.acceptPorts, f.acceptPorts, 'accept port ranges', c.acceptPorts);
  writePorts(out, SOCK_PARAM_OFFSETS.returnPorts, f.returnPorts, 'return port ranges', c.returnPorts);
  return out;
}

function readPairs(b: Uint8Array, off: number): Array<[number, number]> {
  const n = Math.min(b[off] ?? 0, FILTER_SLOTS);
  return Array.from({ length: n }, (_, i) => [readU32(b, off + 1 + i * 8), readU32(b, off + 5 + i * 8)] as [number, number]);
}

/** The filter a sock_param holds (a count above 10 reads as 10, as the programs read it). */
export function decodeSockParam(b: Uint8Array): AccelFilter {
  if (b.length !== SOCK_PARAM_SIZE) throw new KmeshCheckError('codec', `a sock_param is ${SOCK_PARAM_SIZE} bytes, got ${b.length}`);
  const cidrs = (off: number): Cidr[] => readPairs(b, off).map(([ip, mask]) => ({ ip: u32ToIpv4(ip), mask }));
  const ports = (off: number): PortRange[] => readPairs(b, off).map(([begin, end]) => ({ begin, end }));
  const countBytes: Partial<Record<FilterList, number>> = {};
  for (const l of FILTER_LISTS) if ((b[SOCK_PARAM_OFFSETS[l]] ?? 0) > FILTER_SLOTS) countBytes[l] = b[SOCK_PARAM_OFFSETS[l]]!;
  return {
    acceptCidrs: cidrs(SOCK_PARAM_OFFSETS.acceptCidrs),
    returnCidrs: cidrs(SOCK_PARAM_OFFSETS.returnCidrs),
    acceptPorts: ports(SOCK_PARAM_OFFSETS.acceptPorts),
    returnPorts: ports(SOCK_PARAM_OFFSETS.returnPorts),
    ...(Object.keys(countBytes).length ? { countBytes } : {}),
  };
}
