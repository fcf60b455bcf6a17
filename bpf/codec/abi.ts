// The byte-level ABI of kmesh-dataplane.md section 2, written once as data. The codecs read their
// offsets from here, the kernel loader checks every map against MAPS before load, and docs can be
// generated from the same tables. Host is little-endian (x86-64); routing structs are packed.

import { KmeshCheckError } from '../../shared/errors.js';

/** The programs of the ABI by role, and which of the three objects holds each. */
export const PROGRAMS = {
  connect4: 'cgroup_connect4_prog',
  connect6: 'cgroup_connect6_prog',
  sockops: 'sockops_prog',
  sendmsg: 'sendmsg_prog',
} as const;
export type ProgramRole = keyof typeof PROGRAMS;
export const OBJECT_OF_PROGRAM: Readonly<Record<ProgramRole, 'connect' | 'sockops' | 'sendmsg'>> = {
  connect4: 'connect',
  connect6: 'connect',
  sockops: 'sockops',
  sendmsg: 'sendmsg',
};

/**
 * The optional DNS hooks (DNS over UDP sends), found by ELF section in whatever objects are
 * given, not by name: an object set without them is checked without them.
 */
export const DNS_HOOK_SECTIONS = { sendmsg4: 'cgroup/sendmsg4', recvmsg4: 'cgroup/recvmsg4', recvmsg6: 'cgroup/recvmsg6' } as const;
export type DnsHook = keyof typeof DNS_HOOK_SECTIONS;

/** The u32 global (.data, default 1) of the sockops and cgroup_skb objects that gates connection reports (section 7). */
export const ENABLE_MONITORING = 'enable_monitoring';

/** enable_monitoring's bytes: 1 on, 0 off (host order). */
export function monitoringBytes(on: boolean): Uint8Array {
  return new Uint8Array([on ? 1 : 0, 0, 0, 0]);
}

/** Kernel map type numbers (enum bpf_map_type) of the maps the data path uses. */
export const BPF_MAP_TYPE = {
  hash: 1,
  array: 2,
  prog_array: 3,
  sockhash: 18,
  sk_storage: 24,
  ringbuf: 27,
} as const;
export type MapTypeName = keyof typeof BPF_MAP_TYPE;

/** Every kernel map type by number (enum bpf_map_type), to name the one an object has instead. */
const KERNEL_MAP_TYPES = [
  'unspec',
  'hash',
  'array',
  'prog_array',
  'perf_event_array',
  'percpu_hash',
  'percpu_array',
  'stack_trace',
  'cgroup_array',
  'lru_hash',
  'lru_percpu_hash',
  'lpm_trie',
  'array_of_maps',
  'hash_of_maps',
  'devmap',
  'sockmap',
  'cpumap',
  'xskmap',
  'sockhash',
  'cgroup_storage',
  'reuseport_sockarray',
  'percpu_cgroup_storage',
  'queue',
  'stack',
  'sk_storage',
  'devmap_hash',
  'struct_ops',
  'ringbuf',
  'inode_storage',
  'task_storage',
  'bloom_filter',
  'user_ringbuf',
  'cgrp_storage',
  'arena',
] as const;

/** BPF_F_NO_PREALLOC of a map's flags: a hash map whose elements are allocated as they are added. */
export const BPF_F_NO_PREALLOC = 1;

export function mapTypeName(id: number): string {
  const name = KERNEL_MAP_TYPES[id];
  return name && id > 0 ? name : `unknown type ${id}`;
}

/**
 * What a section's table says of a map: its type, key and value sizes (struct names where it
 * names them), capacity (max_entries; a ring buffer's size in bytes) where it gives one, and
 * whether it says the map is not preallocated.
 */
export interface MapShapeAbi {
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly key?: string;
  readonly value?: string;
  readonly maxEntries?: number;
  readonly noPrealloc?: boolean;
}

/** A map as an object defines it (libbpf's view before load, the VM's linked definition). */
export interface MapShape {
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
}

/**
 * Throws (abi-mismatch, one line naming `where` and the section) when a map differs from its
 * table in type, sizes, capacity, or in the no-prealloc flag where the table names it. A
 * capacity is part of the contract too: user space sizes its writes by it, and a smaller map
 * refuses entries the table promises room for.
 */
export function checkMapShape(where: string, section: number, abi: MapShapeAbi, shape: MapShape): void {
  const named = (n: string | undefined) => (n ? ` (${n})` : '');
  const table = `kmesh-dataplane.md section ${section}`;
  if (shape.type !== abi.type) throw new KmeshCheckError('abi-mismatch', `${where}: type ${mapTypeName(shape.type)} (${shape.type}), expected ${mapTypeName(abi.type)} (${abi.type}) (${table})`);
  if (shape.keySize !== abi.keySize) throw new KmeshCheckError('abi-mismatch', `${where}: key size ${shape.keySize} B, expected ${abi.keySize} B${named(abi.key)}`);
  if (shape.valueSize !== abi.valueSize) throw new KmeshCheckError('abi-mismatch', `${where}: value size ${shape.valueSize} B, expected ${abi.valueSize} B${named(abi.value)}`);
  if (abi.maxEntries !== undefined && shape.maxEntries !== abi.maxEntries)
    throw new KmeshCheckError('abi-mismatch', `${where}: max_entries ${shape.maxEntries}, expected ${abi.maxEntries} (${table})`);
  if (abi.noPrealloc && (shape.flags & BPF_F_NO_PREALLOC) === 0)
    throw new KmeshCheckError('abi-mismatch', `${where}: preallocated (no BPF_F_NO_PREALLOC in its map_flags), expected no prealloc (${table})`);
}

export type MapName = 'km_frontend' | 'km_service' | 'km_endpoint' | 'km_backend' | 'km_manage' | 'km_sockstorage' | 'km_cgr_tailcall' | 'km_cgr_tail6' | 'km_socket';

export interface MapAbi {
  readonly name: MapName;
  readonly type: MapTypeName;
  /** Struct (or scalar) name of the key and value, as in the document. */
  readonly key: string;
  readonly value: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly noPrealloc?: boolean;
  readonly note: string;
}

export const MAPS: readonly MapAbi[] = [
  { name: 'km_frontend', type: 'hash', key: 'frontend_key', value: 'frontend_value', keySize: 16, valueSize: 4, maxEntries: 105000, noPrealloc: true, note: 'no prealloc' },
  { name: 'km_service', type: 'hash', key: 'service_key', value: 'service_value', keySize: 4, valueSize: 132, maxEntries: 5000, note: '' },
  { name: 'km_endpoint', type: 'hash', key: 'endpoint_key', value: 'endpoint_value', keySize: 12, valueSize: 4, maxEntries: 105000, note: '' },
  { name: 'km_backend', type: 'hash', key: 'backend_key', value: 'backend_value', keySize: 4, valueSize: 80, maxEntries: 100000, note: '' },
  { name: 'km_manage', type: 'hash', key: 'manager_key', value: 'u32', keySize: 16, valueSize: 4, maxEntries: 8192, note: 'value always 0' },
  { name: 'km_sockstorage', type: 'sk_storage', key: 'int', value: 'sock_storage_data', keySize: 4, valueSize: 64, maxEntries: 0, note: 'key is a socket fd from userspace' },
  { name: 'km_cgr_tailcall', type: 'prog_array', key: 'u32', value: 'prog fd', keySize: 4, valueSize: 4, maxEntries: 8, note: 'slot 0 = connect4' },
  { name: 'km_cgr_tail6', type: 'prog_array', key: 'u32', value: 'prog fd', keySize: 4, valueSize: 4, maxEntries: 8, note: 'slot 1 = connect6' },
  { name: 'km_socket', type: 'sockhash', key: 'bpf_sock_tuple', value: 'u32', keySize: 36, valueSize: 4, maxEntries: 8192, note: 'sendmsg_prog attached as msg_verdict' },
];

export const MAP_BY_NAME: ReadonlyMap<MapName, MapAbi> = new Map(MAPS.map((m) => [m.name, m]));

/** The routing maps a MapState fills. */
export const ROUTING_MAPS = ['km_frontend', 'km_service', 'km_endpoint', 'km_backend'] as const;
export type RoutingMapName = (typeof ROUTING_MAPS)[number];

/** How a field's bytes are read. `port` is a u32 whose low 16 bits hold the port in network order. */
export type FieldKind = 'u8' | 'bool' | 'u32' | 'u64' | 'port' | 'ip_addr' | 'ip4' | 'ip6' | 'port16';

export interface FieldAbi {
  readonly name: string;
  readonly offset: number;
  readonly kind: FieldKind;
  /** Array length for array fields (e.g. service_port[10]); 1 otherwise. */
  readonly count: number;
}

export interface StructAbi {
  readonly name: string;
  readonly size: number;
  readonly fields: readonly FieldAbi[];
}

const f = (name: string, offset: number, kind: FieldKind, count = 1): FieldAbi => ({ name, offset, kind, count });

export const PRIO_GROUPS = 7;
export const PORT_SLOTS = 10;
export const SERVICES_PER_BACKEND = 10;

/** Struct layouts. Union members share offset 0 (ip_addr, manager_key). */
export const STRUCTS = {
  ip_addr: { name: 'ip_addr', size: 16, fields: [f('ip4', 0, 'u32'), f('ip6', 0, 'u32', 4)] },
  frontend_key: { name: 'frontend_key', size: 16, fields: [f('addr', 0, 'ip_addr')] },
  frontend_value: { name: 'frontend_value', size: 4, fields: [f('upstream_id', 0, 'u32')] },
  service_key: { name: 'service_key', size: 4, fields: [f('service_id', 0, 'u32')] },
  service_value: {
    name: 'service_value',
    size: 132,
    fields: [
      f('prio_endpoint_count', 0, 'u32', PRIO_GROUPS),
      f('lb_policy', 28, 'u32'),
      f('service_port', 32, 'port', PORT_SLOTS),
      f('target_port', 72, 'port', PORT_SLOTS),
      f('wp_addr', 112, 'ip_addr'),
      f('waypoint_port', 128, 'port'),
    ],
  },
  endpoint_key: {
    name: 'endpoint_key',
    size: 12,
    fields: [f('service_id', 0, 'u32'), f('prio', 4, 'u32'), f('backend_index', 8, 'u32')],
  },
  endpoint_value: { name: 'endpoint_value', size: 4, fields: [f('backend_uid', 0, 'u32')] },
  backend_key: { name: 'backend_key', size: 4, fields: [f('backend_uid', 0, 'u32')] },
  backend_value: {
    name: 'backend_value',
    size: 80,
    fields: [f('addr', 0, 'ip_addr'), f('service_count', 16, 'u32'), f('service', 20, 'u32', SERVICES_PER_BACKEND), f('wp_addr', 60, 'ip_addr'), f('waypoint_port', 76, 'port')],
  },
  manager_key: { name: 'manager_key', size: 16, fields: [f('netns_cookie', 0, 'u64'), f('addr', 0, 'ip_addr')] },
  bpf_sock_tuple: {
    name: 'bpf_sock_tuple',
    size: 36,
    fields: [
      f('ipv4.saddr', 0, 'ip4'),
      f('ipv4.daddr', 4, 'ip4'),
      f('ipv4.sport', 8, 'port16'),
      f('ipv4.dport', 10, 'port16'),
      f('ipv6.saddr', 0, 'ip6'),
      f('ipv6.daddr', 16, 'ip6'),
      f('ipv6.sport', 32, 'port16'),
      f('ipv6.dport', 34, 'port16'),
    ],
  },
  sock_storage_data: {
    name: 'sock_storage_data',
    size: 64,
    fields: [
      f('connect_ns', 0, 'u64'),
      f('last_report_ns', 8, 'u64'),
      f('direction', 16, 'u8'),
      f('connect_success', 17, 'u8'),
      f('via_waypoint', 18, 'bool'),
      f('has_encoded', 19, 'bool'),
      f('has_set_ip', 20, 'bool'),
      f('sk_tuple', 24, 'u8', 36),
    ],
  },
} as const satisfies Record<string, StructAbi>;

export type StructName = keyof typeof STRUCTS;

/** Offset of a field in a struct, from the table (throws on a typo so tests cannot pass vacuously). */
export function offsetOf(struct: StructName, field: string): number {
  const s: StructAbi = STRUCTS[struct];
  const hit = s.fields.find((x) => x.name === field);
  if (!hit) throw new Error(`no field ${field} in ${struct}`);
  return hit.offset;
}

/** Original-destination TLV (section 4): type, big-endian length, address, port, end marker. */
export const TLV = {
  typeOrigDst: 0x01,
  typeEnd: 0xfe,
  inet: { size: 16, length: 6, addrBytes: 4 },
  inet6: { size: 28, length: 18, addrBytes: 16 },
} as const;
