// Byte-exact codecs of the connection-report records (kmesh-dataplane.md section 7): the 128-byte
// `tcp_probe_info` of the km_tcp_probe ring buffer and the 40-byte `ringbuf_msg_type` of
// km_auth_req, whose tuple is also km_auth_res's key. Addresses are in network order and ports in
// host order (little-endian u16) in both. Every field is decoded, padding and the bytes a tuple
// view does not use included, so that a byte the program left unwritten can be seen.

import { formatIPv4, formatIPv6, parseAddress } from '../../model/address.js';
import type { Family, SockAddr } from '../../model/domain.js';
import type { AuthRecord, ProbeRecord, ReportObservation, ReportTuple } from '../../model/report/domain.js';
import { BPF_MAP_TYPE, checkMapShape, type MapShape, type MapShapeAbi } from './abi.js';
import { fromHex } from './state.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { readU32, readU64, writeU32, writeU64 } from './structs.js';

export const TCP_PROBE_INFO_SIZE = 128;
export const AUTH_REQUEST_SIZE = 40;
export const SOCK_TUPLE_SIZE = 36;

/** The programs each object of the report path must hold, by role (the loaders attach them; check looks before any work). */
export const REPORT_PROGRAMS = {
  connect: ['cgroup_connect4_prog', 'cgroup_connect6_prog'],
  sockops: ['sockops_prog'],
  sendmsg: ['sendmsg_prog'],
  skb: ['cgroup_skb_ingress_prog', 'cgroup_skb_egress_prog'],
} as const;

/** Section 7's maps as the objects must define them, where they define them (ring buffers have no key or value). */
export const REPORT_MAPS: ReadonlyArray<MapShapeAbi & { readonly name: string }> = [
  { name: 'km_tcp_probe', type: BPF_MAP_TYPE.ringbuf, keySize: 0, valueSize: 0, maxEntries: 256 * 1024 },
  { name: 'km_auth_req', type: BPF_MAP_TYPE.ringbuf, keySize: 0, valueSize: 0, maxEntries: 4096 },
  { name: 'km_auth_res', type: BPF_MAP_TYPE.hash, keySize: SOCK_TUPLE_SIZE, valueSize: 4, key: 'bpf_sock_tuple', value: 'u32', maxEntries: 8192 },
];

/** Throws (abi-mismatch) when a map an object defines under a name of section 7 differs from its table. */
export function checkReportMap(where: string, name: string, shape: MapShape): void {
  const abi = REPORT_MAPS.find((m) => m.name === name);
  if (abi) checkMapShape(where, 7, abi, shape);
}

/** Offsets in tcp_probe_info (section 7's table). */
export const TCP_PROBE_OFFSETS = {
  type: 0,
  tuple: 4,
  original: 40,
  sentBytes: 60,
  receivedBytes: 64,
  connSuccess: 68,
  direction: 72,
  state: 76,
  durationNs: 80,
  startNs: 88,
  lastReportNs: 96,
  protocol: 104,
  srttUs: 108,
  rttMin: 112,
  totalRetrans: 116,
  lostOut: 120,
  padding: 124,
} as const;

/** Tuple views inside a bpf_sock_tuple (offsets relative to the tuple). */
const VIEW = {
  inet: { saddr: 0, daddr: 4, sport: 8, dport: 10, used: 12 },
  inet6: { saddr: 0, daddr: 16, sport: 32, dport: 34, used: 36 },
} as const;
/** Original destination views relative to its 20-byte field: address, then host-order u16 port. */
const ORIGINAL = { inet: { addr: 0, port: 4, used: 6 }, inet6: { addr: 0, port: 16, used: 18 } } as const;

export const REPORT_TYPE = { inet: 0, inet6: 1 } as const;
export const REPORT_STATE = { established: 1, close: 7 } as const;
export const REPORT_DIRECTION = { inbound: 1, outbound: 2 } as const;

export type TcpProbeRecord = ProbeRecord;
export type { ReportTuple };

function check(b: Uint8Array, size: number, what: string): void {
  if (b.length !== size) throw new KmeshCheckError('codec', `a ${what} is ${size} bytes, got ${b.length}`);
}

const readPort = (b: Uint8Array, off: number) => (b[off] ?? 0) | ((b[off + 1] ?? 0) << 8);
function writePort(b: Uint8Array, off: number, port: number): void {
  if ((port & 0xffff) !== port) throw new KmeshCheckError('codec', `port must be 0..65535, got ${port}`);
  b[off] = port & 0xff;
  b[off + 1] = port >>> 8;
}

function addrBytes(family: Family, text: string): Uint8Array {
  const raw = parseAddress(text);
  const want = family === 'inet' ? 4 : 16;
  if (raw.length !== want) throw new KmeshCheckError('codec', `${text} is not an ${family === 'inet' ? 'IPv4' : 'IPv6'} address`);
  return raw;
}

const fmt = (family: Family, b: Uint8Array, off: number) => (family === 'inet' ? formatIPv4(b, off) : formatIPv6(b, off));
const familyOfType = (type: number): Family | null => (type === 0 ? 'inet' : type === 1 ? 'inet6' : null);

function nonZero(b: Uint8Array, from: number, to: number): number {
  return nonZeroAt(b, from, to).length;
}

/** The offsets of the bytes from `from` to `to` that are not 0. */
function nonZeroAt(b: Uint8Array, from: number, to: number): number[] {
  const at: number[] = [];
  for (let i = from; i < to; i++) if (b[i] !== 0) at.push(i);
  return at;
}

/** Writes a tuple at `base` (36 bytes, unused bytes zero). */
export function writeReportTuple(b: Uint8Array, base: number, t: ReportTuple): void {
  const v = VIEW[t.family];
  b.fill(0, base, base + SOCK_TUPLE_SIZE);
  b.set(addrBytes(t.family, t.client.addr), base + v.saddr);
  b.set(addrBytes(t.family, t.server.addr), base + v.daddr);
  writePort(b, base + v.sport, t.client.port);
  writePort(b, base + v.dport, t.server.port);
}

export function readReportTuple(b: Uint8Array, base: number, family: Family): ReportTuple {
  const v = VIEW[family];
  return {
    family,
    client: { addr: fmt(family, b, base + v.saddr), port: readPort(b, base + v.sport) },
    server: { addr: fmt(family, b, base + v.daddr), port: readPort(b, base + v.dport) },
  };
}

export function decodeTcpProbeInfo(b: Uint8Array): TcpProbeRecord {
  check(b, TCP_PROBE_INFO_SIZE, 'tcp_probe_info');
  const O = TCP_PROBE_OFFSETS;
  const type = readU32(b, O.type);
  const family = familyOfType(type);
  let original: SockAddr | null = null;
  let unusedAt: number[] = [];
  if (family) {
    const ov = ORIGINAL[family];
    const port = readPort(b, O.original + ov.port);
    const addr = fmt(family, b, O.original + ov.addr);
    original = port === 0 && nonZero(b, O.original, O.original + ov.port) === 0 ? null : { addr, port };
    unusedAt = [...nonZeroAt(b, O.tuple + VIEW[family].used, O.tuple + SOCK_TUPLE_SIZE), ...nonZeroAt(b, O.original + ov.used, O.original + 20)];
  }
  return {
    type,
    tuple: family ? readReportTuple(b, O.tuple, family) : null,
    original,
    sentBytes: readU32(b, O.sentBytes),
    receivedBytes: readU32(b, O.receivedBytes),
    connSuccess: readU32(b, O.connSuccess),
    direction: readU32(b, O.direction),
    state: readU32(b, O.state),
    durationNs: readU64(b, O.durationNs),
    startNs: readU64(b, O.startNs),
    lastReportNs: readU64(b, O.lastReportNs),
    protocol: readU32(b, O.protocol),
    srttUs: readU32(b, O.srttUs),
    rttMin: readU32(b, O.rttMin),
    totalRetrans: readU32(b, O.totalRetrans),
    lostOut: readU32(b, O.lostOut),
    padding: readU32(b, O.padding),
    unusedNonZero: unusedAt.length,
    ...(unusedAt.length ? { unusedAt } : {}),
  };
}

export type TcpProbeFields = Omit<TcpProbeRecord, 'unusedNonZero' | 'unusedAt' | 'tuple' | 'type'> & { readonly tuple: ReportTuple };

/** The record a correct program writes for these fields (type from the tuple's family). */
export function encodeTcpProbeInfo(r: TcpProbeFields): Uint8Array {
  const O = TCP_PROBE_OFFSETS;
  const b = new Uint8Array(TCP_PROBE_INFO_SIZE);
  writeU32(b, O.type, REPORT_TYPE[r.tuple.family]);
  writeReportTuple(b, O.tuple, r.tuple);
  if (r.original) {
    const ov = ORIGINAL[r.tuple.family];
    b.set(addrBytes(r.tuple.family, r.original.addr), O.original + ov.addr);
    writePort(b, O.original + ov.port, r.original.port);
  }
  writeU32(b, O.sentBytes, r.sentBytes);
  writeU32(b, O.receivedBytes, r.receivedBytes);
  writeU32(b, O.connSuccess, r.connSuccess);
  writeU32(b, O.direction, r.direction);
  writeU32(b, O.state, r.state);
  writeU64(b, O.durationNs, r.durationNs);
  writeU64(b, O.startNs, r.startNs);
  writeU64(b, O.lastReportNs, r.lastReportNs);
  writeU32(b, O.protocol, r.protocol);
  writeU32(b, O.srttUs, r.srttUs);
  writeU32(b, O.rttMin, r.rttMin);
  writeU32(b, O.totalRetrans, r.totalRetrans);
  writeU32(b, O.lostOut, r.lostOut);
  writeU32(b, O.padding, r.padding);
  return b;
}

// ---- km_auth_req record and km_auth_res key ---------------------------------------------------

export type AuthRequest = AuthRecord;

export function decodeAuthRequest(b: Uint8Array): AuthRequest {
  check(b, AUTH_REQUEST_SIZE, 'ringbuf_msg_type');
  const type = readU32(b, 0);
  const family = familyOfType(type);
  return {
    type,
    tuple: family ? readReportTuple(b, 4, family) : null,
    unusedNonZero: family ? nonZero(b, 4 + VIEW[family].used, AUTH_REQUEST_SIZE) : 0,
  };
}

export function encodeAuthRequest(t: ReportTuple): Uint8Array {
  const b = new Uint8Array(AUTH_REQUEST_SIZE);
  writeU32(b, 0, REPORT_TYPE[t.family]);
  writeReportTuple(b, 4, t);
  return b;
}

/** km_auth_res's key for a tuple: the request's 36 tuple bytes, unused bytes zero. */
export function encodeAuthKey(t: ReportTuple): Uint8Array {
  const b = new Uint8Array(SOCK_TUPLE_SIZE);
  writeReportTuple(b, 0, t);
  return b;
}

/** What a report executor (the kernel worker, the VM's runner) hands back: records as hex. */
export interface RawReportObservation {
  /** Per connection: the client's local address and the server's, as the sockets say, and the clock around its set-up (decimal ns, JSON holds no bigint). */
  /** Clock readings as decimal strings: `window` around the set-up, `ends` each end's connect_ns where the clock tells them apart. */
  readonly conns: ReadonlyArray<{
    readonly client: SockAddr;
    readonly server: SockAddr;
    readonly window?: readonly [string, string];
    readonly ends?: { readonly client: readonly [string, string]; readonly server: readonly [string, string] };
  }>;
  /** km_tcp_probe records in order, hex. */
  readonly probe: readonly string[];
  /** km_auth_req records in order, hex. */
  readonly auth: readonly string[];
  /** km_auth_res keys left after every close, hex. */
  readonly verdictsLeft: readonly string[];
  /** The clock moved only by the case's waits (the VM's runner). */
  readonly exactClock?: boolean;
}

/** An executor's hex records decoded into domain records (the bpf/ boundary). */
const windowOf = (w: readonly [string, string]) => ({ fromNs: BigInt(w[0]), toNs: BigInt(w[1]) });

export function decodeObservation(o: RawReportObservation): ReportObservation {
  return {
    conns: o.conns.map(({ client, server, window, ends }) => ({
      client,
      server,
      ...(window ? { window: windowOf(window) } : {}),
      ...(ends ? { ends: { client: windowOf(ends.client), server: windowOf(ends.server) } } : {}),
    })),
    probe: o.probe.map((h) => decodeTcpProbeInfo(fromHex(h))),
    auth: o.auth.map((h) => decodeAuthRequest(fromHex(h))),
    verdictsLeft: o.verdictsLeft.map((h) => {
      const b = fromHex(h);
      // An IPv4 key leaves bytes 12..35 zero.
      return readReportTuple(b, 0, b.subarray(12).every((x) => x === 0) ? 'inet' : 'inet6');
    }),
    ...(o.exactClock ? { exactClock: true } : {}),
  };
}
