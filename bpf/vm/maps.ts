// Emulated BPF maps: hash (and LRU hash, hash-map.ts), array, percpu array (one CPU), prog array,
// sk_storage, sockhash, ringbuf. Values live in regions so that programs get real pointers to
// them; the userspace side (the executor) reads and writes them by key bytes.

import { Access, Region } from './memory.js';
import type { MapDef } from './link.js';
import { MapType } from './link.js';
import type { ProgSlots, VmProgram } from './program.js';
import { BPF_EXIST, BPF_NOEXIST, Errno, MapError, VmMap, bytesText, keyOf, valueAccess, type SockRef } from './map-base.js';
import { HashMap } from './hash-map.js';

export * from './map-base.js';
export { HashMap, hashKey } from './hash-map.js';

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
    return this.values.map((r) => bytesText(r.bytes)).join(',');
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
      .map(([id, r]) => `${id}=${bytesText(r.bytes)}`)
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
      .map((e) => `${bytesText(e.key)}=${e.sock.id}`)
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
    // Map.clear allocates a new table even when empty; most cases write no records.
    if (this.pending.size > 0) this.pending.clear();
    if (this.placed.size > 0) this.placed.clear();
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
    // Records vary in length: each is prefixed by its own.
    return `${this.records.map((r) => `${r.length}:${bytesText(r)}`).join(',')}/${this.pending.size}`;
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
