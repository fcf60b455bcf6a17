// Hash and LRU hash maps for the VM (maps.ts has the other kinds): entries by hash, chained on
// collision, kept in insertion (LRU: use) order, and entries userspace freed reused between runs.

import { Region } from './memory.js';
import type { MapDef } from './link.js';
import { MapType } from './link.js';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, Errno, MapError, VmMap, bytesText, valueAccess } from './map-base.js';

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

/** The bucket table's first length (it doubles as entries come). */
const MIN_TABLE = 64;

/** Userspace-freed entries a map keeps for its next updates. */
const MAX_SPARE = 256;

/** dst[0..n) = src[off..off+n) (a loop rather than a subarray view: no allocation). */
function copyBytes(dst: Uint8Array, src: Uint8Array, off: number, n: number): void {
  if (off === 0 && src.length === n) dst.set(src);
  else for (let i = 0; i < n; i++) dst[i] = src[off + i]!;
}

/** Byte-wise order of two byte strings of the same length. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
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
  /**
   * Entries by the low bits of their hash, chained: no key strings on the hot path, and an array
   * rather than a Map (whose hashing of the numbers, half of them outside small-integer range, was
   * most of an update). Its length is a power of two, at least the entry count.
   */
  private table: (HashEntry | null)[] = new Array<HashEntry | null>(MIN_TABLE).fill(null);
  private mask = MIN_TABLE - 1;
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
    let e = this.table[h & this.mask] ?? null;
    while (e !== null && !sameKey(e.key, key, off)) e = e.next;
    return e;
  }
  private unlink(e: HashEntry, h: number): void {
    const i = h & this.mask;
    let head = this.table[i] ?? null;
    if (head === e) {
      this.table[i] = e.next;
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
  /** Puts `e` at the head of its bucket (hash `h`), growing the table when the entries outnumber its buckets. */
  private place(e: HashEntry, h: number): void {
    if (this.count >= this.table.length) this.grow();
    const i = h & this.mask;
    e.next = this.table[i] ?? null;
    this.table[i] = e;
  }
  private grow(): void {
    const size = this.table.length * 2;
    this.table = new Array<HashEntry | null>(size).fill(null);
    this.mask = size - 1;
    const n = this.def.keySize;
    for (let e = this.oldest; e !== null; e = e.newer) {
      const i = hashKey(e.key, 0, n) & this.mask;
      e.next = this.table[i] ?? null;
      this.table[i] = e;
    }
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
    const e: HashEntry = { key, value: region, next: null, own: false, older: null, newer: null };
    this.place(e, h);
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
    } else {
      const region = new Region(this.valueName, value.slice(voff, voff + this.def.valueSize), valueAccess(this.def), null, this);
      e = { key: key.slice(koff, koff + size), value: region, next: null, own: true, older: null, newer: null };
    }
    this.place(e, h);
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
    // A table grown for many more entries than it holds now is emptied bucket by bucket, not whole.
    const few = this.count * 4 < this.table.length;
    for (let e = this.oldest; e !== null; e = e.newer) {
      if (few) this.table[hashKey(e.key, 0, this.def.keySize) & this.mask] = null;
      this.recycle(e);
    }
    if (!few) this.table.fill(null);
    for (const e of this.retired) this.recycle(e);
    this.retired.length = 0;
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
  /**
   * set() with BPF_ANY, for a writer that runs only between program runs (the case runner), when
   * no program points at any entry: an entry the map made takes the new bytes in place and
   * becomes the newest, as if freed (like delete()) and reused at once, without the new element
   * set() installs for pointers a running program keeps. Adopted entries keep their own regions.
   */
  setBetweenRuns(key: Uint8Array, value: Uint8Array): void {
    this.checkKey(key);
    this.checkValue(value);
    const e = this.find(key, 0, hashKey(key, 0, key.length));
    if (e === null || !e.own) return this.set(key, value);
    e.value.bytes.set(value);
    this.leave(e);
    this.join(e);
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
    // Key then value of each entry in key order (keys are unique), back to back: fixed sizes need
    // no separators. One buffer and one string, where a string per entry and a sort of strings
    // were a tenth of an exploration's time.
    const entries: HashEntry[] = [];
    let size = 0;
    for (let e = this.oldest; e !== null; e = e.newer) {
      entries.push(e);
      size += e.key.length + e.value.bytes.length;
    }
    if (entries.length > 1) entries.sort((a, b) => compareBytes(a.key, b.key));
    const out = new Uint8Array(size);
    let at = 0;
    for (const e of entries) {
      out.set(e.key, at);
      out.set(e.value.bytes, at + e.key.length);
      at += e.key.length + e.value.bytes.length;
    }
    return bytesText(out);
  }
}
