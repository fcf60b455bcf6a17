// Byte-exact encode/decode of every map key and value (kmesh-dataplane.md section 2), from domain
// values (model/domain.ts) to the little-endian, packed bytes the kernel maps hold and back.
// Offsets come from the ABI table in abi.ts.

import { textMemo } from '../../shared/memo.js';
import { ipAddrBytes, ipAddrFromBytes, formatIPv4, formatIPv6, parseAddress } from '../../model/address.js';
import type { Backend, Endpoint, Family, Frontend, IpAddr, Service, SockAddr, StorageView, Waypoint } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { PORT_SLOTS, PRIO_GROUPS, SERVICES_PER_BACKEND, STRUCTS, offsetOf } from './abi.js';

// ---- scalars ---------------------------------------------------------------------------------

function codecError(what: string): KmeshCheckError {
  return new KmeshCheckError('codec', what);
}

// Checks are cheap predicates; messages are built only on failure (this runs for every case).
const isU32 = (v: number): boolean => v >>> 0 === v;
const isPort = (p: number): boolean => (p & 0xffff) === p;

function checkU32(v: number, what: string): number {
  if (!isU32(v)) throw codecError(`${what} must be a u32, got ${v}`);
  return v;
}

function checkPort(p: number, what: string): number {
  if (!isPort(p)) throw codecError(`${what} must be a port 0..65535, got ${p}`);
  return p;
}

/** A u32 field of entity `kind` `id` (e.g. "service 7"; no closure: this runs for every entity of every case), array slot `i` or -1. */
function u32Field(v: number, kind: string, id: number, field: string, i = -1): number {
  if (!isU32(v)) throw codecError(`${kind} ${id} ${field}${i >= 0 ? `[${i}]` : ''} must be a u32, got ${v}`);
  return v;
}

/** A map port (domain.ts MapPort): the port in the low 16 bits, in raw states an upper half too. */
function portField(p: number, kind: string, id: number, field: string, i = -1): number {
  if (!isU32(p)) throw codecError(`${kind} ${id} ${field}${i >= 0 ? `[${i}]` : ''} must be a port 0..65535, or a u32 with the port in its low 16 bits, got ${p}`);
  return p;
}

export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

export function readU32(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) | ((b[off + 1] ?? 0) << 8) | ((b[off + 2] ?? 0) << 16) | ((b[off + 3] ?? 0) << 24)) >>> 0;
}

export function writeU64(b: Uint8Array, off: number, v: bigint): void {
  for (let i = 0; i < 8; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

export function readU64(b: Uint8Array, off: number): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i] ?? 0);
  return v;
}

/**
 * A map port: u32 whose low 16 bits hold the port in network order, so port 80 is the bytes
 * 00 50 00 00. Returned as the u32 value a little-endian host reads (0x5000 for port 80).
 */
export function portToU32(port: number): number {
  checkPort(port, 'port');
  return ((port & 0xff) << 8) | (port >>> 8);
}

/** The host-order port held in a map port u32 (the upper 16 bits are ignored, as the kernel does). */
export function portFromU32(v: number): number {
  return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
}

/** A map port: the port in network order in the u32's low 16 bits (its first two bytes), then the upper half as a host-order u16. */
function writePort(b: Uint8Array, off: number, port: number): void {
  b[off] = (port >>> 8) & 0xff;
  b[off + 1] = port & 0xff;
  b[off + 2] = (port >>> 16) & 0xff;
  b[off + 3] = port >>> 24;
}

function readPort(b: Uint8Array, off: number): number {
  return (((b[off] ?? 0) << 8) | (b[off + 1] ?? 0)) + ((b[off + 2] ?? 0) | ((b[off + 3] ?? 0) << 8)) * 0x10000;
}

const ipAddrBytesCached: (addr: IpAddr) => Uint8Array = textMemo(ipAddrBytes);

function writeIpAddr(b: Uint8Array, off: number, addr: IpAddr): void {
  b.set(ipAddrBytesCached(addr), off);
}

function checkLength(bytes: Uint8Array, size: number, what: string): void {
  if (bytes.length !== size) throw codecError(`${what} must be ${size} bytes, got ${bytes.length}`);
}

// Offsets read once from the ABI table (the hot path encodes every case's state).
const O = {
  frontendAddr: offsetOf('frontend_key', 'addr'),
  upstreamId: offsetOf('frontend_value', 'upstream_id'),
  serviceId: offsetOf('service_key', 'service_id'),
  counts: offsetOf('service_value', 'prio_endpoint_count'),
  lbPolicy: offsetOf('service_value', 'lb_policy'),
  servicePort: offsetOf('service_value', 'service_port'),
  targetPort: offsetOf('service_value', 'target_port'),
  svcWpAddr: offsetOf('service_value', 'wp_addr'),
  svcWpPort: offsetOf('service_value', 'waypoint_port'),
  epService: offsetOf('endpoint_key', 'service_id'),
  epPrio: offsetOf('endpoint_key', 'prio'),
  epIndex: offsetOf('endpoint_key', 'backend_index'),
  epUid: offsetOf('endpoint_value', 'backend_uid'),
  beUid: offsetOf('backend_key', 'backend_uid'),
  beAddr: offsetOf('backend_value', 'addr'),
  beCount: offsetOf('backend_value', 'service_count'),
  beServices: offsetOf('backend_value', 'service'),
  beWpAddr: offsetOf('backend_value', 'wp_addr'),
  beWpPort: offsetOf('backend_value', 'waypoint_port'),
} as const;

// Every encodeX(value, out?) writes into `out` when given (cleared first), else a new array. The
// encoders pass their struct's size (read once here), not its name: a lookup in STRUCTS by a name
// that differs between callers was a tenth of the state encoding's time.
function zeroed(size: number, out?: Uint8Array): Uint8Array {
  return out ? out.fill(0, 0, size) : new Uint8Array(size);
}

const SIZE = {
  frontendKey: STRUCTS.frontend_key.size,
  frontendValue: STRUCTS.frontend_value.size,
  serviceKey: STRUCTS.service_key.size,
  serviceValue: STRUCTS.service_value.size,
  endpointKey: STRUCTS.endpoint_key.size,
  endpointValue: STRUCTS.endpoint_value.size,
  backendKey: STRUCTS.backend_key.size,
  backendValue: STRUCTS.backend_value.size,
} as const;

/** The structs that are one u32 (ids and uids). */
function encodeU32Struct(size: number, off: number, v: number, what: string, out?: Uint8Array): Uint8Array {
  const b = zeroed(size, out);
  writeU32(b, off, checkU32(v, what));
  return b;
}

function decodeU32Struct(struct: keyof typeof STRUCTS, off: number, b: Uint8Array): number {
  checkLength(b, STRUCTS[struct].size, struct);
  return readU32(b, off);
}

// ---- frontend ---------------------------------------------------------------------------------

export function encodeFrontendKey(addr: IpAddr, out?: Uint8Array): Uint8Array {
  const b = zeroed(SIZE.frontendKey, out);
  writeIpAddr(b, O.frontendAddr, addr);
  return b;
}

export function decodeFrontendKey(b: Uint8Array): IpAddr {
  checkLength(b, STRUCTS.frontend_key.size, 'frontend_key');
  return ipAddrFromBytes(b, O.frontendAddr);
}

export function encodeFrontendValue(upstreamId: number, out?: Uint8Array): Uint8Array {
  return encodeU32Struct(SIZE.frontendValue, O.upstreamId, upstreamId, 'frontend upstream_id', out);
}

export function decodeFrontendValue(b: Uint8Array): number {
  return decodeU32Struct('frontend_value', O.upstreamId, b);
}

export function decodeFrontend(key: Uint8Array, value: Uint8Array): Frontend {
  return { addr: decodeFrontendKey(key), upstreamId: decodeFrontendValue(value) };
}

// ---- service ----------------------------------------------------------------------------------

export function encodeServiceKey(id: number, out?: Uint8Array): Uint8Array {
  return encodeU32Struct(SIZE.serviceKey, O.serviceId, id, 'service id', out);
}

export function decodeServiceKey(b: Uint8Array): number {
  return decodeU32Struct('service_key', O.serviceId, b);
}

function checkArray(a: readonly number[], n: number, kind: string, id: number, field: string): void {
  if (a.length !== n) throw codecError(`${kind} ${id} ${field} must have exactly ${n} entries, got ${a.length}`);
}

export function encodeServiceValue(s: Service, out?: Uint8Array): Uint8Array {
  const who = 'service',
    id = s.id;
  checkArray(s.endpointCounts, PRIO_GROUPS, who, id, 'endpointCounts');
  checkArray(s.servicePorts, PORT_SLOTS, who, id, 'servicePorts');
  checkArray(s.targetPorts, PORT_SLOTS, who, id, 'targetPorts');
  const b = zeroed(SIZE.serviceValue, out);
  const counts = O.counts;
  for (let i = 0; i < PRIO_GROUPS; i++) writeU32(b, counts + 4 * i, u32Field(s.endpointCounts[i]!, who, id, 'count', i));
  writeU32(b, O.lbPolicy, u32Field(s.lbPolicy, who, id, 'lb_policy'));
  const sp = O.servicePort;
  const tp = O.targetPort;
  for (let i = 0; i < PORT_SLOTS; i++) {
    writePort(b, sp + 4 * i, portField(s.servicePorts[i]!, who, id, 'service_port', i));
    writePort(b, tp + 4 * i, portField(s.targetPorts[i]!, who, id, 'target_port', i));
  }
  writeIpAddr(b, O.svcWpAddr, s.waypoint.addr);
  writePort(b, O.svcWpPort, portField(s.waypoint.port, who, id, 'waypoint_port'));
  return b;
}

function decodeWaypoint(b: Uint8Array, addrOff: number, portOff: number): Waypoint {
  return { addr: ipAddrFromBytes(b, addrOff), port: readPort(b, portOff) };
}

export function decodeServiceValue(id: number, b: Uint8Array): Service {
  checkLength(b, STRUCTS.service_value.size, 'service_value');
  const counts = O.counts;
  const sp = O.servicePort;
  const tp = O.targetPort;
  return {
    id,
    endpointCounts: Array.from({ length: PRIO_GROUPS }, (_, i) => readU32(b, counts + 4 * i)),
    lbPolicy: readU32(b, O.lbPolicy),
    servicePorts: Array.from({ length: PORT_SLOTS }, (_, i) => readPort(b, sp + 4 * i)),
    targetPorts: Array.from({ length: PORT_SLOTS }, (_, i) => readPort(b, tp + 4 * i)),
    waypoint: decodeWaypoint(b, O.svcWpAddr, O.svcWpPort),
  };
}

export function decodeService(key: Uint8Array, value: Uint8Array): Service {
  return decodeServiceValue(decodeServiceKey(key), value);
}

// ---- endpoint ---------------------------------------------------------------------------------

export function encodeEndpointKey(e: Pick<Endpoint, 'serviceId' | 'prio' | 'index'>, out?: Uint8Array): Uint8Array {
  const b = zeroed(SIZE.endpointKey, out);
  writeU32(b, O.epService, checkU32(e.serviceId, 'endpoint service_id'));
  writeU32(b, O.epPrio, checkU32(e.prio, 'endpoint prio'));
  writeU32(b, O.epIndex, checkU32(e.index, 'endpoint backend_index'));
  return b;
}

export function encodeEndpointValue(backendUid: number, out?: Uint8Array): Uint8Array {
  return encodeU32Struct(SIZE.endpointValue, O.epUid, backendUid, 'endpoint backend_uid', out);
}

export function decodeEndpoint(key: Uint8Array, value: Uint8Array): Endpoint {
  checkLength(key, STRUCTS.endpoint_key.size, 'endpoint_key');
  checkLength(value, STRUCTS.endpoint_value.size, 'endpoint_value');
  return {
    serviceId: readU32(key, O.epService),
    prio: readU32(key, O.epPrio),
    index: readU32(key, O.epIndex),
    backendUid: readU32(value, O.epUid),
  };
}

// ---- backend ----------------------------------------------------------------------------------

export function encodeBackendKey(uid: number, out?: Uint8Array): Uint8Array {
  return encodeU32Struct(SIZE.backendKey, O.beUid, uid, 'backend uid', out);
}

export function encodeBackendValue(be: Backend, out?: Uint8Array): Uint8Array {
  const who = 'backend',
    id = be.uid;
  if (be.services.length > SERVICES_PER_BACKEND) {
    throw codecError(`${who} ${id} has ${be.services.length} services; at most ${SERVICES_PER_BACKEND} fit`);
  }
  const b = zeroed(SIZE.backendValue, out);
  writeIpAddr(b, O.beAddr, be.addr);
  writeU32(b, O.beCount, be.services.length);
  const sv = O.beServices;
  for (let i = 0; i < be.services.length; i++) writeU32(b, sv + 4 * i, u32Field(be.services[i]!, who, id, 'service', i));
  writeIpAddr(b, O.beWpAddr, be.waypoint.addr);
  writePort(b, O.beWpPort, portField(be.waypoint.port, who, id, 'waypoint_port'));
  return b;
}

/** Decodes a backend; a raw service_count above 10 is clipped to the 10 slots that exist. */
export function decodeBackend(key: Uint8Array, value: Uint8Array): Backend {
  checkLength(key, STRUCTS.backend_key.size, 'backend_key');
  checkLength(value, STRUCTS.backend_value.size, 'backend_value');
  const count = Math.min(readU32(value, O.beCount), SERVICES_PER_BACKEND);
  const sv = O.beServices;
  return {
    uid: readU32(key, O.beUid),
    addr: ipAddrFromBytes(value, O.beAddr),
    services: Array.from({ length: count }, (_, i) => readU32(value, sv + 4 * i)),
    waypoint: decodeWaypoint(value, O.beWpAddr, O.beWpPort),
  };
}

// ---- manager key ------------------------------------------------------------------------------

/** km_manage key of a network namespace: the u64 cookie, bytes 8..15 zero. */
export function encodeManagerKeyCookie(cookie: bigint): Uint8Array {
  if (cookie < 0n || cookie > 0xffffffffffffffffn) throw codecError(`netns cookie must be a u64, got ${cookie}`);
  const b = new Uint8Array(STRUCTS.manager_key.size);
  writeU64(b, offsetOf('manager_key', 'netns_cookie'), cookie);
  return b;
}

/** km_manage key of a pod IP: the 16-byte ip_addr. */
export function encodeManagerKeyAddr(addr: IpAddr): Uint8Array {
  const b = new Uint8Array(STRUCTS.manager_key.size);
  writeIpAddr(b, offsetOf('manager_key', 'addr'), addr);
  return b;
}

/** Both readings of a km_manage key: the union cannot say which one was written. */
export function decodeManagerKey(b: Uint8Array): { cookie: bigint; addr: IpAddr } {
  checkLength(b, STRUCTS.manager_key.size, 'manager_key');
  return { cookie: readU64(b, offsetOf('manager_key', 'netns_cookie')), addr: ipAddrFromBytes(b, offsetOf('manager_key', 'addr')) };
}

// ---- bpf_sock_tuple ---------------------------------------------------------------------------

export interface SockTuple {
  readonly family: Family;
  readonly src: SockAddr;
  readonly dst: SockAddr;
}

function writePort16(b: Uint8Array, off: number, port: number): void {
  checkPort(port, 'tuple port');
  b[off] = port >>> 8;
  b[off + 1] = port & 0xff;
}

/** Address bytes by text, parsed once (shared: never written to). */
const parsedAddress: (text: string) => Uint8Array = textMemo(parseAddress);

function addrBytes(family: Family, text: string): Uint8Array {
  const raw = parsedAddress(text);
  const want = family === 'inet' ? 4 : 16;
  if (raw.length !== want) throw codecError(`a ${family} tuple needs ${want}-byte addresses, got ${text}`);
  return raw;
}

/** Field offsets of bpf_sock_tuple, by family (read once: tuples are encoded per connect). */
const TUPLE_VIEW = {
  inet: {
    saddr: offsetOf('bpf_sock_tuple', 'ipv4.saddr'),
    daddr: offsetOf('bpf_sock_tuple', 'ipv4.daddr'),
    sport: offsetOf('bpf_sock_tuple', 'ipv4.sport'),
    dport: offsetOf('bpf_sock_tuple', 'ipv4.dport'),
  },
  inet6: {
    saddr: offsetOf('bpf_sock_tuple', 'ipv6.saddr'),
    daddr: offsetOf('bpf_sock_tuple', 'ipv6.daddr'),
    sport: offsetOf('bpf_sock_tuple', 'ipv6.sport'),
    dport: offsetOf('bpf_sock_tuple', 'ipv6.dport'),
  },
} as const;

/** 36 bytes; the ipv4 view (12 bytes, rest zero) for 'inet', the ipv6 view for 'inet6'. */
export function encodeSockTuple(t: SockTuple, out?: Uint8Array): Uint8Array {
  const b = out ?? new Uint8Array(STRUCTS.bpf_sock_tuple.size);
  b.fill(0, 0, STRUCTS.bpf_sock_tuple.size);
  const o = TUPLE_VIEW[t.family];
  b.set(addrBytes(t.family, t.src.addr), o.saddr);
  b.set(addrBytes(t.family, t.dst.addr), o.daddr);
  writePort16(b, o.sport, t.src.port);
  writePort16(b, o.dport, t.dst.port);
  return b;
}

function readPort16(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) << 8) | (b[off + 1] ?? 0);
}

/** The destination half of a tuple view (the original destination in sock_storage_data). */
export function decodeSockTupleDst(b: Uint8Array, family: Family, base = 0): SockAddr {
  const o = TUPLE_VIEW[family];
  return { addr: family === 'inet' ? formatIPv4(b, base + o.daddr) : formatIPv6(b, base + o.daddr), port: readPort16(b, base + o.dport) };
}

export function decodeSockTuple(b: Uint8Array, family: Family, base = 0): SockTuple {
  const o = TUPLE_VIEW[family];
  const fmt = family === 'inet' ? formatIPv4 : formatIPv6;
  return {
    family,
    src: { addr: fmt(b, base + o.saddr), port: readPort16(b, base + o.sport) },
    dst: decodeSockTupleDst(b, family, base),
  };
}

// ---- sock_storage_data ------------------------------------------------------------------------

export interface SockStorage {
  readonly connectNs: bigint;
  readonly lastReportNs: bigint;
  readonly direction: number;
  readonly connectSuccess: number;
  /** Raw bytes of the three flags (the C side tests them for non-zero). */
  readonly viaWaypoint: number;
  readonly hasEncoded: number;
  readonly hasSetIp: number;
  /** The 36 raw bytes of sk_tuple. */
  readonly skTuple: Uint8Array;
}

export function decodeSockStorage(b: Uint8Array): SockStorage {
  checkLength(b, STRUCTS.sock_storage_data.size, 'sock_storage_data');
  const t = offsetOf('sock_storage_data', 'sk_tuple');
  return {
    connectNs: readU64(b, offsetOf('sock_storage_data', 'connect_ns')),
    lastReportNs: readU64(b, offsetOf('sock_storage_data', 'last_report_ns')),
    direction: b[offsetOf('sock_storage_data', 'direction')] ?? 0,
    connectSuccess: b[offsetOf('sock_storage_data', 'connect_success')] ?? 0,
    viaWaypoint: b[offsetOf('sock_storage_data', 'via_waypoint')] ?? 0,
    hasEncoded: b[offsetOf('sock_storage_data', 'has_encoded')] ?? 0,
    hasSetIp: b[offsetOf('sock_storage_data', 'has_set_ip')] ?? 0,
    skTuple: b.slice(t, t + STRUCTS.bpf_sock_tuple.size),
  };
}

export function encodeSockStorage(s: SockStorage): Uint8Array {
  const b = new Uint8Array(STRUCTS.sock_storage_data.size);
  writeU64(b, offsetOf('sock_storage_data', 'connect_ns'), s.connectNs);
  writeU64(b, offsetOf('sock_storage_data', 'last_report_ns'), s.lastReportNs);
  b[offsetOf('sock_storage_data', 'direction')] = s.direction;
  b[offsetOf('sock_storage_data', 'connect_success')] = s.connectSuccess;
  b[offsetOf('sock_storage_data', 'via_waypoint')] = s.viaWaypoint;
  b[offsetOf('sock_storage_data', 'has_encoded')] = s.hasEncoded;
  b[offsetOf('sock_storage_data', 'has_set_ip')] = s.hasSetIp;
  if (s.skTuple.length !== STRUCTS.bpf_sock_tuple.size) throw codecError('sk_tuple must be 36 bytes');
  b.set(s.skTuple, offsetOf('sock_storage_data', 'sk_tuple'));
  return b;
}

/**
 * The checked view of a socket's storage (docs/interpretation.md item 10): flags, and the original
 * destination read from the daddr/dport of the socket family's view of sk_tuple.
 */
const SV = {
  via: offsetOf('sock_storage_data', 'via_waypoint'),
  encoded: offsetOf('sock_storage_data', 'has_encoded'),
  setIp: offsetOf('sock_storage_data', 'has_set_ip'),
  tuple: offsetOf('sock_storage_data', 'sk_tuple'),
} as const;

export function storageView(b: Uint8Array, family: Family): StorageView {
  checkLength(b, STRUCTS.sock_storage_data.size, 'sock_storage_data');
  const hasSetIp = b[SV.setIp] !== 0;
  let original: SockAddr | null = null;
  if (hasSetIp) original = decodeSockTupleDst(b, family, SV.tuple);
  return { viaWaypoint: b[SV.via] !== 0, hasSetIp, hasEncoded: b[SV.encoded] !== 0, original };
}
