// Memory as tagged regions. A pointer is a 64-bit value whose high word is TAG | region id and
// whose low word is BIAS + offset, so pointer arithmetic is ordinary 64-bit arithmetic, NULL is 0,
// small negative offsets stay in the same region, and every load or store finds its region (and
// so its bounds, its access rules and its provenance) from the pointer's high word alone.
// Regions that live across runs (stack frames, global data, the map handles) get fixed ids;
// regions handed out during a run (map values, socket storage, message data) get ids from a
// per-run range that is recycled when the next run starts.

export const Access = {
  /** Plain memory, readable and writable. */
  RW: 0,
  /** Plain memory, readable only (.rodata, read-only map values). */
  RO: 1,
  /** Context-like memory: every access is checked against per-offset rules. */
  RULES: 2,
  /** A handle (map, function): it may be passed to helpers but never dereferenced. */
  OPAQUE: 3,
} as const;
export type Access = (typeof Access)[keyof typeof Access];

/** High word of every pointer: 0xffff in the upper half, the region id in the lower half. */
export const PTR_TAG = -65536; // 0xffff0000 as int32
export const BIAS = 0x40000000;
/** Region id 0xffff is never used: -1 and other small negatives decode to it. */
export const MAX_REGIONS = 0xffff;

/** Allowed access sizes per offset: bit 1, 2, 4, 8 for 1-, 2-, 4-, 8-byte accesses. */
export interface AccessRules {
  readonly read: Uint8Array;
  readonly write: Uint8Array;
  /** Bytes actually stored by a write at an offset (0 = as many as written): narrower kernel fields. */
  readonly storeWidth: Uint8Array;
  /** Field name per offset, for fault messages. */
  readonly fieldAt: (off: number) => string;
}

export class Region {
  id = -1;
  epoch = -1;
  readonly view: DataView;
  constructor(
    /** For fault messages (a pooled socket's regions are renamed when it is reused). */
    public name: string,
    readonly bytes: Uint8Array,
    public access: Access,
    public rules: AccessRules | null = null,
    /** What the region stands for (a map, a socket, ...), for helpers. */
    public owner: unknown = null,
    /**
     * A program's context: accessed only through its pointer as given, plus the instruction's
     * constant offset. The kernel's verifier rejects a context pointer moved first ("dereference
     * of modified ctx ptr"), so the VM faults on one rather than run what would never load.
     */
    readonly fixedBase = false,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get size(): number {
    return this.bytes.length;
  }
}

export class MemoryFault extends Error {}

export class Memory {
  readonly regions: (Region | undefined)[] = [];
  count = 1; // id 0 is never a region, so TAG|0 pointers are invalid too
  private fixedCount = 1;
  epoch = 0;

  /** Adds a region that keeps its id for the memory's lifetime. Call before any run. */
  addFixed(r: Region): Region {
    if (this.count !== this.fixedCount) throw new Error('fixed regions must be added between runs');
    r.id = this.count++;
    r.epoch = Infinity;
    this.regions[r.id] = r;
    this.fixedCount = this.count;
    return r;
  }

  /** Gives a region an id valid for the current run (reusing it when it already has one). */
  attach(r: Region): number {
    if (r.epoch === this.epoch || r.epoch === Infinity) return r.id;
    if (this.count >= MAX_REGIONS) throw new MemoryFault('too many memory regions in one run');
    r.id = this.count++;
    r.epoch = this.epoch;
    this.regions[r.id] = r;
    return r.id;
  }

  /** Forgets the regions of the previous run. */
  newRun(): void {
    for (let i = this.fixedCount; i < this.count; i++) this.regions[i] = undefined;
    this.count = this.fixedCount;
    this.epoch++;
  }

  /** The region a pointer's high word names, or null. */
  regionOf(hi: number): Region | null {
    if ((hi & PTR_TAG) !== PTR_TAG) return null;
    const id = hi & 0xffff;
    if (id >= this.count) return null;
    return this.regions[id] ?? null;
  }
}

export function ptrHi(r: Region): number {
  return PTR_TAG | r.id;
}

export function ptrLo(offset: number): number {
  return (BIAS + offset) | 0;
}

/** Builds access rules from field descriptions (offset, size, allowed read/write sizes). */
export interface FieldRule {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  /** Access sizes allowed for reads at any naturally aligned offset inside the field. */
  readonly read: readonly number[];
  /** Access sizes allowed for writes (at the field's start or aligned inside). */
  readonly write?: readonly number[];
  /** Bytes a write really stores (the kernel field is narrower than the uapi one). */
  readonly storeWidth?: number;
}

export function buildRules(size: number, fields: readonly FieldRule[]): AccessRules {
  const read = new Uint8Array(size);
  const write = new Uint8Array(size);
  const storeWidth = new Uint8Array(size);
  const names: string[] = new Array<string>(size).fill('');
  for (const f of fields) {
    for (let o = f.offset; o < f.offset + f.size; o++) names[o] = f.name;
    for (const s of f.read) {
      for (let o = f.offset; o + s <= f.offset + f.size; o += s) read[o] = (read[o] ?? 0) | s;
    }
    for (const s of f.write ?? []) {
      for (let o = f.offset; o + s <= f.offset + f.size; o += s) {
        write[o] = (write[o] ?? 0) | s;
        if (f.storeWidth) storeWidth[o] = f.storeWidth;
      }
    }
  }
  return { read, write, storeWidth, fieldAt: (off) => names[off] || `offset ${off}` };
}
