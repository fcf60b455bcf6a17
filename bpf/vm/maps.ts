// Emulated BPF maps: hash (and LRU hash), array, percpu array (one CPU), prog array,
// sk_storage, sockhash, ringbuf. Values live in regions so that programs get real pointers to
// them; the userspace side (the executor) reads and writes them by key bytes.

import { Access, MemoryFault, Region } from './memory.js';
import type { MapDef } from './link.js';
import { MapType, BPF_F_RDONLY_PROG } from './link.js';
import type { ProgSlots, VmProgram } from './program.js';

export const Errno = { EPERM: 1, ENOENT: 2, E2BIG: 7, ENOMEM: 12, EBUSY: 16, EEXIST: 17, EINVAL: 22, ENOSPC: 28, EOPNOTSUPP: 95 } as const;

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** A map misuse; as a MemoryFault it becomes a fault with pc and line when a program causes it. */
export class MapError extends MemoryFault {}

/** A key as a JS Map key: u32 keys as numbers, others as strings of 16-bit units. */
export function keyOf(bytes: Uint8Array, off: number, size: number): number | string {
  if (size === 4) return ((bytes[off] as number) | ((bytes[off + 1] as number) << 8) | ((bytes[off + 2] as number) << 16) | ((bytes[off + 3] as number) << 24)) >>> 0;
  let s = '';
  let i = 0;
  for (; i + 1 < size; i += 2) s += String.fromCharCode((bytes[off + i] as number) | ((bytes[off + i + 1] as number) << 8));
  if (i < size) s += String.fromCharCode(bytes[off + i] as number);
  return s;
}

/** Anything a socket-keyed map needs to know of a socket. */
export interface SockRef {
  readonly id: number;
}

export abstract class VmMap {
  /** The region ld_imm64 map references point at: opaque, owned by the map. */
  readonly handle: Region;
  constructor(readonly def: MapDef) {
    this.handle = new Region(`map ${def.name}`, new Uint8Array(0), Access.OPAQUE, null, this);
  }
  get name(): string {
    return this.def.name;
  }
  protected checkKey(key: Uint8Array): void {
    if (key.length !== this.def.keySize) throw new MapError(`map ${this.name}: key is ${key.length} bytes, the map's key_size is ${this.def.keySize}`);
  }
  protected checkValue(value: Uint8Array): void {
    if (value.length !== this.def.valueSize) throw new MapError(`map ${this.name}: value is ${value.length} bytes, the map's value_size is ${this.def.valueSize}`);
  }
  /** Program-side lookup: the value's region, or null. */
  abstract lookup(key: Uint8Array, off: number): Region | null;
  /** Program-side update: 0 or a negative errno. */
  abstract update(key: Uint8Array, koff: number, value: Uint8Array, voff: number, flags: number): number;
  /** Program-side delete: 0 or a negative errno. */
  abstract remove(key: Uint8Array, off: number): number;
  /** Forgets every entry. */
  abstract clear(): void;
  /** Updates and deletes made by programs (userspace writes do not count). */
  programWrites = 0;
  /** The map's contents as a canonical string (for recognising equal states). */
  abstract digest(): string;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function valueAccess(def: MapDef): Access {
  return def.flags & BPF_F_RDONLY_PROG ? Access.RO : Access.RW;
}

interface HashEntry {
  readonly key: Uint8Array;
  readonly value: Region;
  /** Next entry with the same hash. */
  next: HashEntry | null;
  /** Neighbours in insertion (for LRU: use) order. */
  older: HashEntry | null;
  newer: HashEntry | null;
  /** Whether the map made the entry's key and value (not adopted from onMiss): it may reuse them. */
  readonly own: boolean;
}

/** Userspace-freed entries a map keeps for its next updates. */
const MAX_SPARE = 256;

/** dst[0..n) = src[off..off+n) (a loop rather than a subarray view: no allocation). */
function copyBytes(dst: Uint8Array, src: Uint8Array, off: number, n: number): void {
  if (off === 0 && src.length === n) dst.set(src);
  else for (let i = 0; i < n; i++) dst[i] = src[off + i]!;
}

/** 32-bit hash of key bytes (4-byte keys hash to themselves). */
export function hashKey(b: Uint8Array, off: number, size: number): number {
  if (size === 4) return (b[off] as number) | ((b[off + 1] as number) << 8) | ((b[off + 2] as number) << 16) | ((b[off + 3] as number) << 24) | 0;
  let h = 0x811c9dc5 ^ size;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    const w = (b[off + i] as number) | ((b[off + i + 1] as number) << 8) | ((b[off + i + 2] as number) << 16) | ((b[off + i + 3] as number) << 24);
    h = Math.imul(h ^ w, 0x01000193);
    h ^= h >>> 15;
  }
  for (; i < size; i++) h = Math.imul(h ^ (b[off + i] as number), 0x01000193);
  return h;
}

function sameKey(k: Uint8Array, b: Uint8Array, off: number): boolean {
  for (let i = 0; i < k.length; i++) if (k[i] !== b[off + i]) return false;
  return true;
}

/** Hash and LRU hash maps (one CPU: percpu hash behaves the same). */
export class HashMap extends VmMap {
  /** Entries by hash, chained on collision: no key strings on the hot path. */
  private readonly buckets = new Map<number, HashEntry>();
  /** Insertion (for LRU: use) order, for eviction and listing: a list through the entries (a Set cost more than the rest of an update). */
  private oldest: HashEntry | null = null;
  private newest: HashEntry | null = null;
  private count = 0;
  private readonly lru: boolean;
  /**
   * Entries userspace deleted or cleared (between runs, so no program points at them), reused by
   * the next updates. What a program deletes and what an update replaces is not reused before
   * the map is cleared: pointers to it keep its bytes.
   */
  private readonly spare: HashEntry[] = [];
  /** Entries programs deleted or updates replaced: spare only once userspace clears the map, between runs. */
  private readonly retired: HashEntry[] = [];
  private readonly valueName: string;
  constructor(def: MapDef) {
    super(def);
    this.lru = def.type === MapType.LRU_HASH;
    this.valueName = `map ${def.name} value`;
  }
  get size(): number {
    return this.count;
  }
  private find(key: Uint8Array, off: number, h: number): HashEntry | null {
    let e = this.buckets.get(h) ?? null;
    while (e !== null && !sameKey(e.key, key, off)) e = e.next;
    return e;
  }
  private unlink(e: HashEntry, h: number): void {
    let head = this.buckets.get(h) ?? null;
    if (head === e) {
      if (e.next) this.buckets.set(h, e.next);
      else this.buckets.delete(h);
    } else {
      while (head !== null && head.next !== e) head = head.next;
      if (head) head.next = e.next;
    }
    this.leave(e);
  }
  private leave(e: HashEntry): void {
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    e.older = e.newer = null;
    this.count--;
  }
  private join(e: HashEntry): void {
    e.older = this.newest;
    e.newer = null;
    if (this.newest) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
    this.count++;
  }
  /** Entries oldest first. */
  private *entries(): Generator<HashEntry> {
    for (let e = this.oldest; e !== null; e = e.newer) yield e;
  }
  /**
   * Asked on a program-side miss, when set: the value to install for the key, or null. Lets
   * bounded-exhaustive exploration decide an entry when the program first reads it.
   */
  onMiss: ((key: Uint8Array) => Region | null) | null = null;
  lookup(key: Uint8Array, off: number): Region | null {
    const e = this.find(key, off, hashKey(key, off, this.def.keySize));
    if (e === null) return this.onMiss === null ? null : this.adopt(key.slice(off, off + this.def.keySize));
    if (this.lru) {
      this.leave(e);
      this.join(e);
    }
    return e.value;
  }
  private adopt(key: Uint8Array): Region | null {
    const region = this.onMiss?.(key) ?? null;
    if (region === null) return null;
    const h = hashKey(key, 0, this.def.keySize);
    const e: HashEntry = { key, value: region, next: this.buckets.get(h) ?? null, own: false, older: null, newer: null };
    this.buckets.set(h, e);
    this.join(e);
    return region;
  }
  update(key: Uint8Array, koff: number, value: Uint8Array, voff: number, flags: number): number {
    if (flags > BPF_EXIST) return -Errno.EINVAL;
    const size = this.def.keySize;
    const h = hashKey(key, koff, size);
    const old = this.find(key, koff, h);
    if (old !== null && flags === BPF_NOEXIST) return -Errno.EEXIST;
    if (old === null && flags === BPF_EXIST) return -Errno.ENOENT;
    if (old === null && this.count >= this.def.maxEntries) {
      if (!this.lru) return -Errno.E2BIG;
      const oldest = this.oldest;
      if (oldest !== null) {
        this.unlink(oldest, hashKey(oldest.key, 0, size));
        this.retire(oldest);
      }
    }
    // Like the kernel, an update installs a new element (pointers to the old value keep the old
    // bytes): a spare one, which no program of this run can point at, or a new one.
    if (old !== null) {
      this.unlink(old, h);
      this.retire(old);
    }
    let e = this.spare.pop();
    if (e !== undefined) {
      copyBytes(e.key, key, koff, size);
      copyBytes(e.value.bytes, value, voff, this.def.valueSize);
      e.next = this.buckets.get(h) ?? null;
    } else {
      const region = new Region(this.valueName, value.slice(voff, voff + this.def.valueSize), valueAccess(this.def), null, this);
      e = { key: key.slice(koff, koff + size), value: region, next: this.buckets.get(h) ?? null, own: true, older: null, newer: null };
    }
    this.buckets.set(h, e);
    this.join(e);
    return 0;
  }
  private recycle(e: HashEntry): void {
    if (e.own && this.spare.length < MAX_SPARE) this.spare.push(e);
  }
  private retire(e: HashEntry): void {
    if (e.own && this.retired.length < MAX_SPARE) this.retired.push(e);
  }
  remove(key: Uint8Array, off: number): number {
    const h = hashKey(key, off, this.def.keySize);
    const e = this.find(key, off, h);
    if (e === null) return -Errno.ENOENT;
    this.unlink(e, h);
    this.retire(e);
    return 0;
  }
  /** Forgets every entry (userspace, between runs: the entries are reused). */
  clear(): void {
    for (let e = this.oldest; e !== null; e = e.newer) this.recycle(e);
    for (const e of this.retired) this.recycle(e);
    this.retired.length = 0;
    this.buckets.clear();
    this.oldest = this.newest = null;
    this.count = 0;
  }
  // ---- userspace side ----
  get(key: Uint8Array): Uint8Array | null {
    this.checkKey(key);
    return this.find(key, 0, hashKey(key, 0, key.length))?.value.bytes.slice() ?? null;
  }
  set(key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
    this.checkKey(key);
    this.checkValue(value);
    const rc = this.update(key, 0, value, 0, flags);
    if (rc < 0) throw new MapError(`map ${this.name}: update failed with errno ${-rc}${rc === -Errno.E2BIG ? ' (map full)' : ''}`);
  }
  delete(key: Uint8Array): boolean {
    this.checkKey(key);
    const h = hashKey(key, 0, key.length);
    const e = this.find(key, 0, h);
    if (e === null) return false;
    this.unlink(e, h);
    this.recycle(e);
    return true;
  }
  /** Keys in insertion order. */
  keys(): Uint8Array[] {
    return [...this.entries()].map((e) => e.key.slice());
  }
  digest(): string {
    return [...this.entries()]
      .map((e) => `${hex(e.key)}=${hex(e.value.bytes)}`)
      .sort()
      .join(',');
  }
}

export class ArrayMap extends VmMap {
  readonly values: Region[];
  constructor(def: MapDef, initial?: Uint8Array) {
    super(def);
    if (def.keySize !== 4) throw new MapError(`map ${def.name}: array maps need 4-byte keys, not ${def.keySize}`);
    this.values = [];
    for (let i = 0; i < def.maxEntries; i++) {
      const bytes = new Uint8Array(def.valueSize);
      if (i === 0 && initial) bytes.set(initial);
      this.values.push(new Region(def.internal ? `${def.internal.section}` : `map ${def.name}[${i}]`, bytes, valueAccess(def), null, this));
    }
  }
  private index(key: Uint8Array, off: number): number {
    return ((key[off] as number) | ((key[off + 1] as number) << 8) | ((key[off + 2] as number) << 16) | ((key[off + 3] as number) << 24)) >>> 0;
  }
  lookup(key: Uint8Array, off: number): Region | null {
    return this.values[this.index(key, off)] ?? null;
  }
  update(key: Uint8Array, koff: number, value: Uint8Array, voff: number, flags: number): number {
    if (flags > BPF_EXIST) return -Errno.EINVAL;
    const r = this.values[this.index(key, koff)];
    if (!r) return -Errno.E2BIG;
    if (flags === BPF_NOEXIST) return -Errno.EEXIST;
    r.bytes.set(value.subarray(voff, voff + this.def.valueSize));
    return 0;
  }
  remove(): number {
    return -Errno.EINVAL;
  }
  clear(): void {
    for (const r of this.values) r.bytes.fill(0);
  }
  get(index: number): Uint8Array | null {
    return this.values[index]?.bytes.slice() ?? null;
  }
  digest(): string {
    return this.values.map((r) => hex(r.bytes)).join(',');
  }
  set(index: number, value: Uint8Array): void {
    this.checkValue(value);
    const r = this.values[index];
    if (!r) throw new MapError(`map ${this.name}: index ${index} is beyond max_entries ${this.def.maxEntries}`);
    r.bytes.set(value);
  }
}

export class ProgArrayMap extends VmMap implements ProgSlots {
  readonly progSlots: (VmProgram | null)[];
  constructor(def: MapDef) {
    super(def);
    this.progSlots = new Array<VmProgram | null>(def.maxEntries).fill(null);
  }
  lookup(): Region | null {
    throw new MapError(`map ${this.name}: programs cannot look up a prog array`);
  }
  update(): number {
    throw new MapError(`map ${this.name}: programs cannot update a prog array`);
  }
  remove(): number {
    throw new MapError(`map ${this.name}: programs cannot delete from a prog array`);
  }
  clear(): void {
    this.progSlots.fill(null);
  }
  digest(): string {
    return this.progSlots.map((p) => p?.name ?? '-').join(',');
  }
  set(index: number, prog: VmProgram | null): void {
    if (index < 0 || index >= this.progSlots.length) throw new MapError(`map ${this.name}: slot ${index} is beyond max_entries ${this.progSlots.length}`);
    this.progSlots[index] = prog;
  }
}

/** Per-socket storage: one value per socket, created by bpf_sk_storage_get(F_CREATE). */
export class SkStorageMap extends VmMap {
  readonly values = new Map<number, Region>();
  /** Regions of closed sockets, reused (creating a region and its DataView is most of a create). */
  private readonly free: Region[] = [];
  lookup(): Region | null {
    throw new MapError(`map ${this.name}: use bpf_sk_storage_get, not bpf_map_lookup_elem`);
  }
  update(): number {
    throw new MapError(`map ${this.name}: use bpf_sk_storage_get, not bpf_map_update_elem`);
  }
  remove(): number {
    throw new MapError(`map ${this.name}: use bpf_sk_storage_delete, not bpf_map_delete_elem`);
  }
  clear(): void {
    this.values.clear();
  }
  storageOf(sock: SockRef): Region | null {
    return this.values.get(sock.id) ?? null;
  }
  create(sock: SockRef, init: Uint8Array | null): Region {
    let r = this.free.pop();
    if (r) r.bytes.fill(0);
    else r = new Region(`map ${this.name} storage`, new Uint8Array(this.def.valueSize), Access.RW, null, this);
    if (init) r.bytes.set(init.subarray(0, this.def.valueSize));
    this.values.set(sock.id, r);
    return r;
  }
  /**
   * Forgets a socket's storage. `recycle` only between runs (a socket closed by userspace):
   * within a run a program may still hold a pointer to it.
   */
  drop(sock: SockRef, recycle = false): boolean {
    const r = this.values.get(sock.id);
    if (!r) return false;
    this.values.delete(sock.id);
    if (recycle && this.free.length < 1024) this.free.push(r);
    return true;
  }
  get(sock: SockRef): Uint8Array | null {
    return this.values.get(sock.id)?.bytes.slice() ?? null;
  }
  digest(): string {
    return [...this.values]
      .map(([id, r]) => `${id}=${hex(r.bytes)}`)
      .sort()
      .join(',');
  }
}

/** Sockets by key; only bpf_sock_hash_update inserts. */
export class SockHashMap extends VmMap {
  readonly socks = new Map<number | string, { readonly key: Uint8Array; readonly sock: SockRef & { sockRegion: Region } }>();
  lookup(key: Uint8Array, off: number): Region | null {
    return this.socks.get(keyOf(key, off, this.def.keySize))?.sock.sockRegion ?? null;
  }
  update(): number {
    throw new MapError(`map ${this.name}: programs insert sockets with bpf_sock_hash_update`);
  }
  remove(key: Uint8Array, off: number): number {
    return this.socks.delete(keyOf(key, off, this.def.keySize)) ? 0 : -Errno.ENOENT;
  }
  clear(): void {
    this.socks.clear();
  }
  insert(key: Uint8Array, koff: number, sock: SockRef & { sockRegion: Region }, flags: number): number {
    if (flags > BPF_EXIST) return -Errno.EINVAL;
    const k = keyOf(key, koff, this.def.keySize);
    const old = this.socks.get(k);
    if (old && flags === BPF_NOEXIST) return -Errno.EEXIST;
    if (!old && flags === BPF_EXIST) return -Errno.ENOENT;
    if (!old && this.socks.size >= this.def.maxEntries) return -Errno.E2BIG;
    this.socks.set(k, { key: key.slice(koff, koff + this.def.keySize), sock });
    return 0;
  }
  /** Removes every entry of a socket (a closing socket leaves the map). */
  dropSocket(sock: SockRef): void {
    for (const [k, e] of this.socks) if (e.sock.id === sock.id) this.socks.delete(k);
  }
  /** The socket under a key (what bpf_msg_redirect_hash finds), or null. */
  sockAt(key: Uint8Array, off: number): SockRef | null {
    return this.socks.get(keyOf(key, off, this.def.keySize))?.sock ?? null;
  }
  has(sock: SockRef): boolean {
    for (const e of this.socks.values()) if (e.sock.id === sock.id) return true;
    return false;
  }
  digest(): string {
    return [...this.socks.values()]
      .map((e) => `${hex(e.key)}=${e.sock.id}`)
      .sort()
      .join(',');
  }
}

/** A ring buffer: reserved records become visible when submitted. */
/** What a ring buffer's memory holds before any record is written (kernel memory is not cleared). */
export const RINGBUF_POISON = 0xa5;

export class RingBufMap extends VmMap {
  readonly records: Uint8Array[] = [];
  private used = 0;
  readonly pending = new Set<Region>();
  /**
   * The ring's data area. Like the kernel's, a reserved record starts with whatever the ring holds
   * at its place (the poison, or bytes of an earlier record), so a byte a program does not write
   * shows up in the record.
   */
  private ring: Uint8Array | null = null;
  private head = 0;
  /** Bytes of the ring written since the last clear: [0, dirty) (records are placed from 0 on, wrapping marks all). */
  private dirty = 0;
  private readonly placed = new Map<Region, number>();
  private area(): Uint8Array {
    this.ring ??= new Uint8Array(Math.max(8, this.def.maxEntries)).fill(RINGBUF_POISON);
    return this.ring;
  }
  private leftover(size: number): Uint8Array {
    const ring = this.area();
    const start = (this.head + 8) % ring.length;
    if (start + size <= ring.length) return ring.slice(start, start + size);
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) out[i] = ring[(start + i) % ring.length]!;
    return out;
  }
  private keep(bytes: Uint8Array, start: number): void {
    const ring = this.area();
    const n = bytes.length;
    if (start + n <= ring.length) {
      ring.set(bytes, start);
      this.dirty = Math.max(this.dirty, start + n);
    } else {
      for (let i = 0; i < n; i++) ring[(start + i) % ring.length] = bytes[i]!;
      this.dirty = ring.length;
    }
  }
  lookup(): Region | null {
    throw new MapError(`map ${this.name}: ring buffers have no lookup`);
  }
  update(): number {
    throw new MapError(`map ${this.name}: ring buffers have no update`);
  }
  remove(): number {
    throw new MapError(`map ${this.name}: ring buffers have no delete`);
  }
  clear(): void {
    this.records.length = 0;
    this.used = 0;
    this.pending.clear();
    this.placed.clear();
    // Back to the poison, so that a case replays alike whatever ran before it (only the bytes
    // written: refilling a 256 KiB ring for every case was most of a case's cost).
    this.ring?.fill(RINGBUF_POISON, 0, this.dirty);
    this.dirty = 0;
    this.head = 0;
  }
  /** Header (8 bytes) plus the record rounded to 8, as the kernel accounts it. */
  private cost(size: number): number {
    return 8 + ((size + 7) & ~7);
  }
  reserve(size: number): Region | null {
    if (size <= 0 || this.used + this.cost(size) > this.def.maxEntries) return null;
    this.used += this.cost(size);
    const r = new Region(`ringbuf ${this.name} record`, this.leftover(size), Access.RW, null, this);
    this.placed.set(r, (this.head + 8) % this.area().length);
    this.head = (this.head + this.cost(size)) % this.area().length;
    this.pending.add(r);
    return r;
  }
  commit(r: Region, discard: boolean): void {
    if (!this.pending.delete(r)) throw new MapError(`ringbuf ${this.name}: record submitted twice or never reserved`);
    this.keep(r.bytes, this.placed.get(r) ?? 0);
    this.placed.delete(r);
    if (discard) this.used -= this.cost(r.bytes.length);
    else this.records.push(r.bytes.slice());
  }
  /** reserve, fill with `data`, submit: without the record's region (the record is all `data`). */
  output(data: Uint8Array): boolean {
    const size = data.length;
    if (size <= 0 || this.used + this.cost(size) > this.def.maxEntries) return false;
    this.used += this.cost(size);
    const ring = this.area();
    const start = (this.head + 8) % ring.length;
    this.head = (this.head + this.cost(size)) % ring.length;
    this.keep(data, start);
    this.records.push(data.slice());
    return true;
  }
  digest(): string {
    return `${this.records.map(hex).join(',')}/${this.pending.size}`;
  }
  /** Userspace consumes the records (and frees their space). */
  drain(): Uint8Array[] {
    const out = this.records.splice(0);
    for (const b of out) this.used -= this.cost(b.length);
    return out;
  }
}

export function createMap(def: MapDef): VmMap {
  switch (def.type) {
    case MapType.HASH:
    case MapType.LRU_HASH:
    case MapType.PERCPU_HASH:
      return new HashMap(def);
    case MapType.ARRAY:
    case MapType.PERCPU_ARRAY:
      return new ArrayMap(def, def.internal?.initial);
    case MapType.PROG_ARRAY:
      return new ProgArrayMap(def);
    case MapType.SK_STORAGE:
      return new SkStorageMap(def);
    case MapType.SOCKHASH:
      return new SockHashMap(def);
    case MapType.RINGBUF:
      return new RingBufMap(def);
    default:
      throw new MapError(`map ${def.name}: map type ${def.type} is not supported by the VM`);
  }
}
