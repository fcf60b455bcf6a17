// What every emulated BPF map shares (maps.ts): errno values and update flags, the map errors,
// the base class whose handle region programs get pointers to, and the key and value helpers.

import { Access, MemoryFault, Region } from './memory.js';
import type { MapDef } from './link.js';
import { BPF_F_RDONLY_PROG } from './link.js';

export const Errno = { EPERM: 1, ENOENT: 2, E2BIG: 7, ENOMEM: 12, EBUSY: 16, EEXIST: 17, EINVAL: 22, ENOSPC: 28, EOPNOTSUPP: 95 } as const;

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** A map misuse; as a MemoryFault it becomes a fault with pc and line when a program causes it. */
export class MapError extends MemoryFault {}

/** The 16-bit units of a key being made, by unit count (reused: keys are made on every socket lookup). */
const UNITS: Uint16Array[] = [];

/** A key as a JS Map key: u32 keys as numbers, others as strings of 16-bit units (made at once, not by appending unit by unit). */
export function keyOf(bytes: Uint8Array, off: number, size: number): number | string {
  if (size === 4) return ((bytes[off] as number) | ((bytes[off + 1] as number) << 8) | ((bytes[off + 2] as number) << 16) | ((bytes[off + 3] as number) << 24)) >>> 0;
  const n = (size + 1) >> 1;
  const units = (UNITS[n] ??= new Uint16Array(n));
  let i = 0;
  for (; i + 1 < size; i += 2) units[i >> 1] = (bytes[off + i] as number) | ((bytes[off + i + 1] as number) << 8);
  if (i < size) units[i >> 1] = bytes[off + i] as number;
  return String.fromCharCode.apply(null, units as unknown as number[]);
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

/** A map's bytes as text for digests: one character per byte (latin1), exact and half hex's length. */
export const bytesText = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export function valueAccess(def: MapDef): Access {
  return def.flags & BPF_F_RDONLY_PROG ? Access.RO : Access.RW;
}
