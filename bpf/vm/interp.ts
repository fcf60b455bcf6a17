// The eBPF interpreter: ISA v1-v4 (ALU64/ALU32 incl. sdiv/smod/movsx, JMP/JMP32, loads and
// stores incl. sign-extending loads, byte swaps, atomics, ld_imm64, bpf-to-bpf calls with a
// 512-byte stack per frame, tail calls with the kernel's limit, exit).
//
// Registers are pairs of int32 (low and high word) in two Int32Arrays: no BigInt on the hot
// path (only 64-bit divisions with operands beyond 32 bits fall back to it). Instructions are
// pre-decoded into typed arrays, map references are resolved to pointers at bind time, and every
// memory access goes through the tagged-region check of memory.ts. A fault names the program,
// the pc, the function and the source line (BTF line info).
// The Machine runs programs either here (engine 'interp', the reference) or compiled to JavaScript
// by jit.ts (engine 'jit', the default: same semantics, several times faster per instruction).

import { Access, BIAS, Memory, MemoryFault, PTR_TAG, Region, ptrHi, ptrLo } from './memory.js';
import type { LinkedProgram } from './link.js';
import { BPF_PSEUDO_FUNC, BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE } from './link.js';
import type { LineInfo } from './btf.js';
import { disassemble } from './isa.js';
import { R64, mul64, div64, mod64, div32, mod32, bswap16, bswap32, gtu, gts } from './arith.js';
import { compile, type Compiled, type JitRuntime } from './jit.js';

export const MAX_TAIL_CALL_CNT = 33;
export const MAX_CALL_FRAMES = 8;
export const STACK_SIZE = 512;
/** Back-edges and calls allowed per run before the run is stopped as a runaway. */
export const BRANCH_BUDGET = 1_000_000;
export const HELPER_TAIL_CALL = 12;

export class VmFault extends Error {
  constructor(
    readonly program: string,
    readonly pc: number,
    readonly func: string,
    readonly line: LineInfo | null,
    readonly insn: string,
    readonly reason: string,
  ) {
    const where = line ? `, ${line.file.split('/').pop()}:${line.line}` : '';
    super(`${program}: fault at pc ${pc} (${func}${where}: ${insn}): ${reason}`);
  }
}

/** A linked program decoded for execution, with its coverage counters. */
export interface VmProgram {
  readonly name: string;
  readonly section: string;
  readonly linked: LinkedProgram;
  readonly n: number;
  readonly op: Uint8Array;
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly off: Int32Array;
  readonly imm: Int32Array;
  /** ld_imm64: the high word (resolved for map references). */
  readonly imm2: Int32Array;
  /** Times each instruction ran. */
  readonly hits: Uint32Array;
  /** Times each conditional jump was taken. */
  readonly taken: Uint32Array;
}

/** What a prog-array map must offer to tail calls. */
export interface ProgSlots {
  readonly progSlots: (VmProgram | null)[];
}

export type Helper = (m: Machine) => void;

/** Resolves ld_imm64 map references of a program: the map's handle region, its value region (global data). */
export interface MapResolver {
  handle(mapIndex: number): Region;
  value(mapIndex: number): Region;
}

const VALID = new Uint8Array(256);
for (const c of [
  // ALU64 / ALU32, K and X
  0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f, 0x87,
  0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xd7,
  0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c, 0x84,
  0x94, 0x9c, 0xa4, 0xac, 0xb4, 0xbc, 0xc4, 0xcc, 0xd4, 0xdc,
  // JMP / JMP32
  0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, 0x55, 0x5d, 0x65, 0x6d, 0x75, 0x7d, 0x85, 0x95,
  0xa5, 0xad, 0xb5, 0xbd, 0xc5, 0xcd, 0xd5, 0xdd,
  0x06, 0x16, 0x1e, 0x26, 0x2e, 0x36, 0x3e, 0x46, 0x4e, 0x56, 0x5e, 0x66, 0x6e, 0x76, 0x7e, 0xa6, 0xae,
  0xb6, 0xbe, 0xc6, 0xce, 0xd6, 0xde,
  // loads and stores
  0x18, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb,
]) VALID[c] = 1;

/** Decodes and checks a linked program; map references become pointers into `maps`' regions. */
export function bindProgram(linked: LinkedProgram, maps: MapResolver): VmProgram {
  const n = linked.insnCount;
  const view = new DataView(linked.insns.buffer, linked.insns.byteOffset, linked.insns.byteLength);
  const op = new Uint8Array(n), dst = new Uint8Array(n), src = new Uint8Array(n);
  const off = new Int32Array(n), imm = new Int32Array(n), imm2 = new Int32Array(n);
  const bad = (pc: number, why: string): never => {
    const l = linked.lineOf[pc];
    throw new VmFault(linked.name, pc, linked.funcOf[pc] ?? '?', l ?? null, disassemble(linked.insns, pc), `invalid program: ${why}`);
  };
  for (let pc = 0; pc < n; pc++) {
    const o = pc * 8;
    const code = view.getUint8(o);
    const regs = view.getUint8(o + 1);
    op[pc] = code; dst[pc] = regs & 0xf; src[pc] = regs >> 4;
    off[pc] = view.getInt16(o + 2, true); imm[pc] = view.getInt32(o + 4, true);
  }
  for (let pc = 0; pc < n; pc++) {
    const code = op[pc] as number;
    const d = dst[pc] as number, s = src[pc] as number;
    if (!VALID[code]) bad(pc, `unknown opcode 0x${code.toString(16)}`);
    if (d > 10 || s > 10) bad(pc, 'register number above r10');
    const cls = code & 7;
    const writesDst = cls === 4 || cls === 7 || cls === 1 || code === 0x18;
    if (writesDst && d === 10) bad(pc, 'r10 (frame pointer) is read-only');
    if (cls === 5 || cls === 6) {
      const jop = code & 0xf0;
      if (jop === 0x80) {
        if (s === 1) {
          const t = pc + (imm[pc] as number) + 1;
          if (t < 0 || t >= n) bad(pc, `call target ${t} outside the program`);
        } else if (s !== 0) {
          bad(pc, s === 2 ? 'kfunc calls are not supported' : `call with src_reg ${s}`);
        }
      } else if (jop !== 0x90) {
        const delta = code === 0x06 ? (imm[pc] as number) : (off[pc] as number);
        const t = pc + delta + 1;
        if (t < 0 || t >= n) bad(pc, `jump target ${t} outside the program`);
      }
    }
    if (code === 0x18) {
      if (pc + 1 >= n || op[pc + 1] !== 0) bad(pc, 'ld_imm64 without its second half');
      const hi = imm[pc + 1] as number;
      switch (s) {
        case 0:
          imm2[pc] = hi;
          break;
        case BPF_PSEUDO_MAP_IDX: {
          const r = maps.handle(imm[pc] as number);
          imm[pc] = ptrLo(0); imm2[pc] = ptrHi(r);
          break;
        }
        case BPF_PSEUDO_MAP_IDX_VALUE: {
          const r = maps.value(imm[pc] as number);
          imm[pc] = ptrLo(hi); imm2[pc] = ptrHi(r);
          break;
        }
        case BPF_PSEUDO_FUNC:
          bad(pc, 'function pointers (callbacks) are not supported');
          break;
        default:
          bad(pc, `ld_imm64 with src_reg ${s} is not supported (link with link.ts: map references use PSEUDO_MAP_IDX)`);
      }
      op[pc + 1] = 0; // second half is never executed
      pc++;
    }
  }
  return {
    name: linked.name, section: linked.section, linked, n, op, dst, src, off, imm, imm2,
    hits: new Uint32Array(n), taken: new Uint32Array(n),
  };
}

// ---- the machine -----------------------------------------------------------------------------

export class Machine {
  readonly L = new Int32Array(11);
  readonly H = new Int32Array(11);
  readonly helpers: (Helper | undefined)[] = [];
  readonly stacks: Region[] = [];
  /** Tail calls done in the current run (the kernel's tail_call_cnt). */
  tailCalls = 0;
  /** @internal Offset computed by the last address check. */
  ao = 0;
  private readonly frameProg: (VmProgram | null)[] = new Array<VmProgram | null>(MAX_CALL_FRAMES).fill(null);
  private readonly frameRet = new Int32Array(MAX_CALL_FRAMES);
  private readonly frameSaved = new Int32Array(MAX_CALL_FRAMES * 10);
  /** The program running now (after tail calls, the last one entered). */
  current: VmProgram | null = null;
  /**
   * Called at every tail call that happens, before the target starts (with r1, the context,
   * as it is passed on). Exploration uses it to recognise states it has already explored.
   */
  onTailCall: ((target: VmProgram, ctx: Region | null) => void) | null = null;

  constructor(readonly mem: Memory) {
    this.rt = this.makeRuntime();
    for (let i = 0; i < MAX_CALL_FRAMES; i++) {
      this.stacks.push(mem.addFixed(new Region(`stack of frame ${i}`, new Uint8Array(STACK_SIZE), Access.RW)));
    }
  }

  /** Starts a new run: forgets the previous run's regions. Build the context after this. */
  beginRun(): void {
    this.mem.newRun();
  }

  /** A region's pointer as (lo, hi) into register r. */
  setPointer(r: number, region: Region, offset = 0): void {
    this.mem.attach(region);
    this.L[r] = ptrLo(offset);
    this.H[r] = ptrHi(region);
  }

  setScalar(r: number, lo: number, hi = 0): void {
    this.L[r] = lo | 0;
    this.H[r] = hi | 0;
  }

  /** The region and offset a pointer register refers to, checked for `size` bytes; for helpers. */
  resolve(r: number, size: number, write: boolean, what: string): Region {
    const hi = this.H[r] as number;
    const region = this.mem.regionOf(hi);
    if (!region) throw new MemoryFault(`${what}: r${r} is not a pointer (0x${(hi >>> 0).toString(16)}${((this.L[r] as number) >>> 0).toString(16).padStart(8, '0')})`);
    const o = (this.L[r] as number) - BIAS;
    if (o < 0 || o + size > region.bytes.length) {
      throw new MemoryFault(`${what}: ${size} bytes at offset ${o} of ${region.name} (${region.bytes.length} bytes) are out of bounds`);
    }
    if (region.access === Access.OPAQUE) throw new MemoryFault(`${what}: ${region.name} cannot be read or written`);
    if (write && region.access !== Access.RW) throw new MemoryFault(`${what}: ${region.name} is read-only`);
    this.ao = o;
    return region;
  }

  /** Offset found by the last resolve(). */
  get lastOffset(): number {
    return this.ao;
  }

  /** @internal */
  rloc(reg: number, off: number, size: number): DataView {
    const hi = this.H[reg] as number;
    const r = (hi & PTR_TAG) === PTR_TAG ? this.mem.regions[hi & 0xffff] : undefined;
    const o = (this.L[reg] as number) - BIAS + off;
    if (r === undefined || o < 0 || o + size > r.bytes.length || r.access > Access.RO) return this.rslow(r, reg, o, size);
    this.ao = o;
    return r.view;
  }

  private rslow(r: Region | undefined, reg: number, o: number, size: number): DataView {
    if (r === undefined) throw new MemoryFault(`read of ${size} bytes through r${reg}, which is not a valid pointer`);
    if (o < 0 || o + size > r.bytes.length) throw new MemoryFault(`read of ${size} bytes at offset ${o} of ${r.name} (${r.bytes.length} bytes) is out of bounds`);
    if (r.access === Access.RULES && r.rules && ((r.rules.read[o] ?? 0) & size) !== 0) {
      this.ao = o;
      return r.view;
    }
    if (r.access === Access.RULES) throw new MemoryFault(`${r.name}: ${size}-byte read of ${r.rules?.fieldAt(o) ?? `offset ${o}`} is not allowed`);
    throw new MemoryFault(`${r.name} cannot be read`);
  }

  /** @internal Address for a store; a context field gets a scratch buffer that commitCtx() stores with the field's width. */
  wloc(reg: number, off: number, size: number): DataView {
    const hi = this.H[reg] as number;
    const r = (hi & PTR_TAG) === PTR_TAG ? this.mem.regions[hi & 0xffff] : undefined;
    const o = (this.L[reg] as number) - BIAS + off;
    if (r === undefined || o < 0 || o + size > r.bytes.length || r.access !== Access.RW) return this.wslow(r, reg, o, size);
    this.ao = o;
    return r.view;
  }

  private scratch = new DataView(new ArrayBuffer(8));
  /** @internal */
  pendingCtx: Region | null = null;
  private pendingSize = 0;

  private wslow(r: Region | undefined, reg: number, o: number, size: number): DataView {
    if (r === undefined) throw new MemoryFault(`write of ${size} bytes through r${reg}, which is not a valid pointer`);
    if (o < 0 || o + size > r.bytes.length) throw new MemoryFault(`write of ${size} bytes at offset ${o} of ${r.name} (${r.bytes.length} bytes) is out of bounds`);
    if (r.access === Access.RULES && r.rules && ((r.rules.write[o] ?? 0) & size) !== 0) {
      // Written to a scratch buffer first, then committed with the field's real width.
      this.pendingCtx = r;
      this.pendingSize = size;
      this.ctxOff = o;
      this.ao = 0;
      return this.scratch;
    }
    if (r.access === Access.RULES) throw new MemoryFault(`${r.name}: ${size}-byte write to ${r.rules?.fieldAt(o) ?? `offset ${o}`} is not allowed`);
    throw new MemoryFault(`${r.name} is read-only`);
  }

  private ctxOff = 0;

  /** @internal */
  commitCtx(): void {
    const r = this.pendingCtx as Region;
    const o = this.ctxOff;
    const size = this.pendingSize;
    const width = r.rules?.storeWidth[o] || size;
    for (let i = 0; i < size; i++) r.bytes[o + i] = i < width ? this.scratch.getUint8(i) : 0;
    this.pendingCtx = null;
  }

  /** @internal */
  fault(prog: VmProgram, pc: number, reason: string): VmFault {
    const l = prog.linked.lineOf[pc] ?? null;
    return new VmFault(prog.name, pc, prog.linked.funcOf[pc] ?? '?', l, disassemble(prog.linked.insns, pc), reason);
  }

  /** 'jit' compiles programs to JavaScript (fast); 'interp' is the reference interpreter. */
  engine: 'jit' | 'interp' = 'jit';

  /**
   * Runs `entry` with r1 = a pointer to `ctx` and returns r0's low word as unsigned.
   * Call beginRun() first and build the context regions after it.
   */
  run(entry: VmProgram, ctx: Region): number {
    return this.engine === 'jit' ? this.runJit(entry, ctx) : this.runInterp(entry, ctx);
  }

  // ---- compiled execution ----------------------------------------------------------------------

  private readonly compiled = new Map<VmProgram, Compiled>();
  private readonly rt: JitRuntime;

  /** The compiled form of a program (compiled on first use). */
  compiledOf(prog: VmProgram): Compiled {
    let c = this.compiled.get(prog);
    if (!c) {
      c = compile(prog, this.rt);
      this.compiled.set(prog, c);
    }
    return c;
  }

  /** Compiled programs, for coverage. */
  compiledPrograms(): ReadonlyMap<VmProgram, Compiled> {
    return this.compiled;
  }

  private makeRuntime(): JitRuntime {
    const m = this;
    const wrap = (prog: VmProgram, pc: number, e: unknown): Error => {
      if (e instanceof MemoryFault) return m.jitFault(prog, pc, e.message);
      return e as Error;
    };
    const rt: JitRuntime = {
      regions: this.mem.regions,
      L: this.L,
      H: this.H,
      FS: new Int32Array(MAX_CALL_FRAMES * 10),
      FR: new Int32Array(MAX_CALL_FRAMES),
      R64, mul64, div64, mod64, div32, mod32, bswap16, bswap32, gtu, gts,
      ldHi: 0,
      budget: BRANCH_BUDGET,
      next: null,
      ld(prog, h, l, off, size, signed, pc) {
        // Slow path: contexts (read by their rules) first, then faults with the interpreter's checks.
        const g = (h & PTR_TAG) === PTR_TAG ? m.mem.regions[h & 0xffff] : undefined;
        const at = l - BIAS + off;
        if (g !== undefined && g.access === Access.RULES && at >= 0 && at + size <= g.bytes.length && g.rules !== null && ((g.rules.read[at] as number) & size) !== 0) {
          const v = g.view;
          let lo: number;
          if (size === 8) { rt.ldHi = v.getInt32(at + 4, true); return v.getInt32(at, true); }
          if (size === 4) lo = v.getInt32(at, true); else if (size === 2) lo = signed ? v.getInt16(at, true) : v.getUint16(at, true); else lo = signed ? v.getInt8(at) : v.getUint8(at);
          rt.ldHi = signed ? lo >> 31 : 0;
          return lo;
        }
        try {
          const saveL = m.L[0] as number, saveH = m.H[0] as number;
          m.L[0] = l; m.H[0] = h;
          let v: DataView;
          try { v = m.rloc(0, off, size); } finally { m.L[0] = saveL; m.H[0] = saveH; }
          const o = m.ao;
          let lo: number, hi: number;
          if (size === 8) { lo = v.getInt32(o, true); hi = v.getInt32(o + 4, true); } else if (size === 4) { lo = v.getInt32(o, true); hi = signed ? lo >> 31 : 0; } else if (size === 2) { lo = signed ? v.getInt16(o, true) : v.getUint16(o, true); hi = signed ? lo >> 31 : 0; } else { lo = signed ? v.getInt8(o) : v.getUint8(o); hi = signed ? lo >> 31 : 0; }
          rt.ldHi = hi;
          return lo;
        } catch (e) { throw wrap(prog, pc, e); }
      },
      st(prog, h, l, off, size, lo, hi, pc) {
        // Slow path: context fields writable by their rules (stored with the field's real width), then faults.
        const g = (h & PTR_TAG) === PTR_TAG ? m.mem.regions[h & 0xffff] : undefined;
        const at = l - BIAS + off;
        if (g !== undefined && g.access === Access.RULES && at >= 0 && at + size <= g.bytes.length && g.rules !== null && ((g.rules.write[at] as number) & size) !== 0) {
          const v = g.view;
          const width = (g.rules.storeWidth[at] as number) || size;
          if (size === 8) { v.setInt32(at, lo, true); v.setInt32(at + 4, hi, true); } else if (size === 4) v.setInt32(at, lo, true); else if (size === 2) v.setInt16(at, lo, true); else v.setInt8(at, lo);
          if (width < size) g.bytes.fill(0, at + width, at + size);
          return;
        }
        try {
          const saveL = m.L[0] as number, saveH = m.H[0] as number;
          m.L[0] = l; m.H[0] = h;
          let v: DataView;
          try { v = m.wloc(0, off, size); } finally { m.L[0] = saveL; m.H[0] = saveH; }
          const o = m.ao;
          if (size === 8) { v.setInt32(o, lo, true); v.setInt32(o + 4, hi, true); } else if (size === 4) v.setInt32(o, lo, true); else if (size === 2) v.setInt16(o, lo, true); else v.setInt8(o, lo);
          if (m.pendingCtx !== null) m.commitCtx();
        } catch (e) { m.pendingCtx = null; throw wrap(prog, pc, e); }
      },
      helper(prog, id, pc) {
        const h = m.helpers[id];
        if (h === undefined) throw m.jitFault(prog, pc, `helper ${id} is not supported by the VM`);
        m.current = prog;
        try { h(m); } catch (e) { throw wrap(prog, pc, e); }
      },
      tail(prog, pc) {
        try { return m.tailCallTarget(); } catch (e) { throw wrap(prog, pc, e); }
      },
      nested(target, depth) {
        return m.driveJit(target, depth);
      },
      atomic(prog, dw, d, s, off, kind, pc) {
        try { m.atomic(dw, d, s, off, kind); } catch (e) { m.pendingCtx = null; throw wrap(prog, pc, e); }
      },
      frame(depth) {
        const stack = m.stacks[depth] as Region;
        stack.bytes.fill(0);
        m.mem.attach(stack);
        return ptrHi(stack);
      },
      fault(prog, pc, reason) {
        return m.jitFault(prog, pc, reason);
      },
    };
    return rt;
  }

  /** A fault in compiled code: corrects the block counts of the instructions that did not run. */
  private jitFault(prog: VmProgram, pc: number, reason: string): VmFault {
    const c = this.compiled.get(prog);
    if (c) {
      const b = c.blockOf[pc];
      for (let i = pc + 1; i < prog.n && c.blockOf[i] === b; i++) c.adj[i] = (c.adj[i] as number) - 1;
    }
    return this.fault(prog, pc, reason);
  }

  private driveJit(entry: VmProgram, base: number): number {
    let prog = entry;
    for (;;) {
      this.current = prog;
      const r = this.compiledOf(prog).fn(base);
      if (r >= 0) return r;
      prog = this.rt.next as VmProgram;
      this.rt.next = null;
    }
  }

  private runJit(entry: VmProgram, ctx: Region): number {
    const L = this.L, H = this.H;
    L.fill(0); H.fill(0);
    this.setPointer(1, ctx, 0);
    this.stacks[0]?.bytes.fill(0);
    this.setPointer(10, this.stacks[0] as Region, STACK_SIZE);
    this.tailCalls = 0;
    this.pendingCtx = null;
    this.rt.budget = BRANCH_BUDGET;
    return this.driveJit(entry, 0);
  }

  // ---- interpretation ----------------------------------------------------------------------------

  private runInterp(entry: VmProgram, ctx: Region): number {
    const L = this.L, H = this.H;
    L.fill(0); H.fill(0);
    this.setPointer(1, ctx, 0);
    this.stacks[0]?.bytes.fill(0);
    this.setPointer(10, this.stacks[0] as Region, STACK_SIZE);
    this.tailCalls = 0;
    this.pendingCtx = null;
    let prog = entry;
    let pc = 0;
    let depth = 0;
    let budget = BRANCH_BUDGET;
    let op = prog.op, dst = prog.dst, src = prog.src, offs = prog.off, imms = prog.imm, hits = prog.hits, taken = prog.taken;
    this.current = prog;
    try {
      for (;;) {
        hits[pc] = (hits[pc] as number) + 1;
        const code = op[pc] as number;
        const d = dst[pc] as number;
        switch (code) {
          // ---- ALU64 ------------------------------------------------------------------------
          case 0x07: case 0x0f: {
            const blo = code === 0x07 ? (imms[pc] as number) : (L[src[pc] as number] as number);
            const bhi = code === 0x07 ? blo >> 31 : (H[src[pc] as number] as number);
            const a = L[d] as number;
            const r = (a + blo) | 0;
            H[d] = ((H[d] as number) + bhi + ((r >>> 0) < (a >>> 0) ? 1 : 0)) | 0;
            L[d] = r;
            break;
          }
          case 0x17: case 0x1f: {
            const blo = code === 0x17 ? (imms[pc] as number) : (L[src[pc] as number] as number);
            const bhi = code === 0x17 ? blo >> 31 : (H[src[pc] as number] as number);
            const a = L[d] as number;
            H[d] = ((H[d] as number) - bhi - ((a >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
            L[d] = (a - blo) | 0;
            break;
          }
          case 0x27: case 0x2f: {
            const blo = code === 0x27 ? (imms[pc] as number) : (L[src[pc] as number] as number);
            const bhi = code === 0x27 ? blo >> 31 : (H[src[pc] as number] as number);
            L[d] = mul64(L[d] as number, H[d] as number, blo, bhi); H[d] = R64.hi;
            break;
          }
          case 0x37: case 0x3f: {
            const blo = code === 0x37 ? (imms[pc] as number) : (L[src[pc] as number] as number);
            const bhi = code === 0x37 ? blo >> 31 : (H[src[pc] as number] as number);
            L[d] = div64(L[d] as number, H[d] as number, blo, bhi, offs[pc] === 1); H[d] = R64.hi;
            break;
          }
          case 0x97: case 0x9f: {
            const blo = code === 0x97 ? (imms[pc] as number) : (L[src[pc] as number] as number);
            const bhi = code === 0x97 ? blo >> 31 : (H[src[pc] as number] as number);
            L[d] = mod64(L[d] as number, H[d] as number, blo, bhi, offs[pc] === 1); H[d] = R64.hi;
            break;
          }
          case 0x47: { const k = imms[pc] as number; L[d] = (L[d] as number) | k; H[d] = (H[d] as number) | (k >> 31); break; }
          case 0x4f: { const s = src[pc] as number; L[d] = (L[d] as number) | (L[s] as number); H[d] = (H[d] as number) | (H[s] as number); break; }
          case 0x57: { const k = imms[pc] as number; L[d] = (L[d] as number) & k; H[d] = (H[d] as number) & (k >> 31); break; }
          case 0x5f: { const s = src[pc] as number; L[d] = (L[d] as number) & (L[s] as number); H[d] = (H[d] as number) & (H[s] as number); break; }
          case 0xa7: { const k = imms[pc] as number; L[d] = (L[d] as number) ^ k; H[d] = (H[d] as number) ^ (k >> 31); break; }
          case 0xaf: { const s = src[pc] as number; L[d] = (L[d] as number) ^ (L[s] as number); H[d] = (H[d] as number) ^ (H[s] as number); break; }
          case 0x67: case 0x6f: {
            const n = (code === 0x67 ? (imms[pc] as number) : (L[src[pc] as number] as number)) & 63;
            if (n === 0) break;
            const lo = L[d] as number;
            if (n < 32) { H[d] = ((H[d] as number) << n) | (lo >>> (32 - n)); L[d] = lo << n; } else { H[d] = lo << (n - 32); L[d] = 0; }
            break;
          }
          case 0x77: case 0x7f: {
            const n = (code === 0x77 ? (imms[pc] as number) : (L[src[pc] as number] as number)) & 63;
            if (n === 0) break;
            const hi = H[d] as number;
            if (n < 32) { L[d] = ((L[d] as number) >>> n) | (hi << (32 - n)); H[d] = hi >>> n; } else { L[d] = hi >>> (n - 32); H[d] = 0; }
            break;
          }
          case 0xc7: case 0xcf: {
            const n = (code === 0xc7 ? (imms[pc] as number) : (L[src[pc] as number] as number)) & 63;
            if (n === 0) break;
            const hi = H[d] as number;
            if (n < 32) { L[d] = ((L[d] as number) >>> n) | (hi << (32 - n)); H[d] = hi >> n; } else { L[d] = hi >> (n - 32); H[d] = hi >> 31; }
            break;
          }
          case 0x87: {
            const lo = L[d] as number;
            H[d] = (-(H[d] as number) - (lo !== 0 ? 1 : 0)) | 0;
            L[d] = -lo | 0;
            break;
          }
          case 0xb7: { const k = imms[pc] as number; L[d] = k; H[d] = k >> 31; break; }
          case 0xbf: {
            const s = src[pc] as number;
            const o = offs[pc] as number;
            if (o === 0) { L[d] = L[s] as number; H[d] = H[s] as number; break; }
            const v = L[s] as number;
            const r = o === 8 ? (v << 24) >> 24 : o === 16 ? (v << 16) >> 16 : v;
            L[d] = r; H[d] = r >> 31;
            break;
          }
          case 0xd7: {
            const w = imms[pc] as number;
            const lo = L[d] as number;
            if (w === 16) { L[d] = bswap16(lo); H[d] = 0; } else if (w === 32) { L[d] = bswap32(lo); H[d] = 0; } else { L[d] = bswap32(H[d] as number); H[d] = bswap32(lo); }
            break;
          }
          // ---- ALU32 ------------------------------------------------------------------------
          case 0x04: L[d] = ((L[d] as number) + (imms[pc] as number)) | 0; H[d] = 0; break;
          case 0x0c: L[d] = ((L[d] as number) + (L[src[pc] as number] as number)) | 0; H[d] = 0; break;
          case 0x14: L[d] = ((L[d] as number) - (imms[pc] as number)) | 0; H[d] = 0; break;
          case 0x1c: L[d] = ((L[d] as number) - (L[src[pc] as number] as number)) | 0; H[d] = 0; break;
          case 0x24: L[d] = Math.imul(L[d] as number, imms[pc] as number); H[d] = 0; break;
          case 0x2c: L[d] = Math.imul(L[d] as number, L[src[pc] as number] as number); H[d] = 0; break;
          case 0x34: L[d] = div32(L[d] as number, imms[pc] as number, offs[pc] === 1); H[d] = 0; break;
          case 0x3c: L[d] = div32(L[d] as number, L[src[pc] as number] as number, offs[pc] === 1); H[d] = 0; break;
          case 0x94: L[d] = mod32(L[d] as number, imms[pc] as number, offs[pc] === 1); H[d] = 0; break;
          case 0x9c: L[d] = mod32(L[d] as number, L[src[pc] as number] as number, offs[pc] === 1); H[d] = 0; break;
          case 0x44: L[d] = (L[d] as number) | (imms[pc] as number); H[d] = 0; break;
          case 0x4c: L[d] = (L[d] as number) | (L[src[pc] as number] as number); H[d] = 0; break;
          case 0x54: L[d] = (L[d] as number) & (imms[pc] as number); H[d] = 0; break;
          case 0x5c: L[d] = (L[d] as number) & (L[src[pc] as number] as number); H[d] = 0; break;
          case 0xa4: L[d] = (L[d] as number) ^ (imms[pc] as number); H[d] = 0; break;
          case 0xac: L[d] = (L[d] as number) ^ (L[src[pc] as number] as number); H[d] = 0; break;
          case 0x64: L[d] = (L[d] as number) << ((imms[pc] as number) & 31); H[d] = 0; break;
          case 0x6c: L[d] = (L[d] as number) << ((L[src[pc] as number] as number) & 31); H[d] = 0; break;
          case 0x74: L[d] = (L[d] as number) >>> ((imms[pc] as number) & 31) | 0; H[d] = 0; break;
          case 0x7c: L[d] = (L[d] as number) >>> ((L[src[pc] as number] as number) & 31) | 0; H[d] = 0; break;
          case 0xc4: L[d] = (L[d] as number) >> ((imms[pc] as number) & 31); H[d] = 0; break;
          case 0xcc: L[d] = (L[d] as number) >> ((L[src[pc] as number] as number) & 31); H[d] = 0; break;
          case 0x84: L[d] = -(L[d] as number) | 0; H[d] = 0; break;
          case 0xb4: L[d] = imms[pc] as number; H[d] = 0; break;
          case 0xbc: {
            const v = L[src[pc] as number] as number;
            const o = offs[pc] as number;
            L[d] = o === 8 ? (v << 24) >> 24 : o === 16 ? (v << 16) >> 16 : v;
            H[d] = 0;
            break;
          }
          case 0xd4: { // to little endian = truncate on this little-endian machine
            const w = imms[pc] as number;
            if (w === 16) { L[d] = (L[d] as number) & 0xffff; H[d] = 0; } else if (w === 32) { H[d] = 0; }
            break;
          }
          case 0xdc: { // to big endian
            const w = imms[pc] as number;
            const lo = L[d] as number;
            if (w === 16) { L[d] = bswap16(lo); H[d] = 0; } else if (w === 32) { L[d] = bswap32(lo); H[d] = 0; } else { L[d] = bswap32(H[d] as number); H[d] = bswap32(lo); }
            break;
          }
          // ---- JMP --------------------------------------------------------------------------
          case 0x05: { const o = offs[pc] as number; if (o < 0 && --budget < 0) throw new MemoryFault('branch budget exhausted (runaway loop)'); pc += o; break; }
          case 0x06: { const o = imms[pc] as number; if (o < 0 && --budget < 0) throw new MemoryFault('branch budget exhausted (runaway loop)'); pc += o; break; }
          case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d: case 0x45: case 0x4d:
          case 0x55: case 0x5d: case 0x65: case 0x6d: case 0x75: case 0x7d: case 0xa5: case 0xad:
          case 0xb5: case 0xbd: case 0xc5: case 0xcd: case 0xd5: case 0xdd: {
            const alo = L[d] as number, ahi = H[d] as number;
            let blo: number, bhi: number;
            if (code & 0x08) { const s = src[pc] as number; blo = L[s] as number; bhi = H[s] as number; } else { blo = imms[pc] as number; bhi = blo >> 31; }
            let c: boolean;
            switch (code & 0xf0) {
              case 0x10: c = alo === blo && ahi === bhi; break;
              case 0x50: c = alo !== blo || ahi !== bhi; break;
              case 0x20: c = gtu(alo, ahi, blo, bhi); break;
              case 0x30: c = !gtu(blo, bhi, alo, ahi); break;
              case 0xa0: c = gtu(blo, bhi, alo, ahi); break;
              case 0xb0: c = !gtu(alo, ahi, blo, bhi); break;
              case 0x60: c = gts(alo, ahi, blo, bhi); break;
              case 0x70: c = !gts(blo, bhi, alo, ahi); break;
              case 0xc0: c = gts(blo, bhi, alo, ahi); break;
              case 0xd0: c = !gts(alo, ahi, blo, bhi); break;
              default: c = ((alo & blo) | (ahi & bhi)) !== 0; break; // 0x40 jset
            }
            if (c) {
              taken[pc] = (taken[pc] as number) + 1;
              const o = offs[pc] as number;
              if (o < 0 && --budget < 0) throw new MemoryFault('branch budget exhausted (runaway loop)');
              pc += o;
            }
            break;
          }
          case 0x16: case 0x1e: case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x46: case 0x4e:
          case 0x56: case 0x5e: case 0x66: case 0x6e: case 0x76: case 0x7e: case 0xa6: case 0xae:
          case 0xb6: case 0xbe: case 0xc6: case 0xce: case 0xd6: case 0xde: {
            const a = L[d] as number;
            const b = code & 0x08 ? (L[src[pc] as number] as number) : (imms[pc] as number);
            let c: boolean;
            switch (code & 0xf0) {
              case 0x10: c = a === b; break;
              case 0x50: c = a !== b; break;
              case 0x20: c = (a >>> 0) > (b >>> 0); break;
              case 0x30: c = (a >>> 0) >= (b >>> 0); break;
              case 0xa0: c = (a >>> 0) < (b >>> 0); break;
              case 0xb0: c = (a >>> 0) <= (b >>> 0); break;
              case 0x60: c = a > b; break;
              case 0x70: c = a >= b; break;
              case 0xc0: c = a < b; break;
              case 0xd0: c = a <= b; break;
              default: c = (a & b) !== 0; break;
            }
            if (c) {
              taken[pc] = (taken[pc] as number) + 1;
              const o = offs[pc] as number;
              if (o < 0 && --budget < 0) throw new MemoryFault('branch budget exhausted (runaway loop)');
              pc += o;
            }
            break;
          }
          case 0x85: {
            const s = src[pc] as number;
            if (s === 1) {
              if (depth + 1 >= MAX_CALL_FRAMES) throw new MemoryFault(`call depth exceeds ${MAX_CALL_FRAMES} frames`);
              if (--budget < 0) throw new MemoryFault('branch budget exhausted (runaway recursion)');
              const base = depth * 10;
              const fs = this.frameSaved;
              for (let i = 0; i < 5; i++) { fs[base + 2 * i] = L[6 + i] as number; fs[base + 2 * i + 1] = H[6 + i] as number; }
              this.frameProg[depth] = prog;
              this.frameRet[depth] = pc + 1;
              depth++;
              const stack = this.stacks[depth] as Region;
              stack.bytes.fill(0);
              this.setPointer(10, stack, STACK_SIZE);
              pc += imms[pc] as number;
              break;
            }
            const id = imms[pc] as number;
            if (id === HELPER_TAIL_CALL) {
              const target = this.tailCallTarget();
              if (target !== null) {
                prog = target;
                this.current = prog;
                op = prog.op; dst = prog.dst; src = prog.src; offs = prog.off; imms = prog.imm; hits = prog.hits; taken = prog.taken;
                pc = 0;
                continue;
              }
              L[0] = 0; H[0] = 0; // a tail call that does not happen falls through
              break;
            }
            const h = this.helpers[id];
            if (h === undefined) throw new MemoryFault(`helper ${id} is not supported by the VM`);
            h(this);
            break;
          }
          case 0x95: {
            if (depth === 0) return (L[0] as number) >>> 0;
            depth--;
            const base = depth * 10;
            const fs = this.frameSaved;
            for (let i = 0; i < 5; i++) { L[6 + i] = fs[base + 2 * i] as number; H[6 + i] = fs[base + 2 * i + 1] as number; }
            prog = this.frameProg[depth] as VmProgram;
            this.current = prog;
            op = prog.op; dst = prog.dst; src = prog.src; offs = prog.off; imms = prog.imm; hits = prog.hits; taken = prog.taken;
            pc = (this.frameRet[depth] as number) - 1;
            break;
          }
          // ---- ld_imm64 ---------------------------------------------------------------------
          case 0x18: L[d] = imms[pc] as number; H[d] = prog.imm2[pc] as number; pc++; break;
          // ---- loads ------------------------------------------------------------------------
          case 0x61: { const v = this.rloc(src[pc] as number, offs[pc] as number, 4); L[d] = v.getInt32(this.ao, true); H[d] = 0; break; }
          case 0x69: { const v = this.rloc(src[pc] as number, offs[pc] as number, 2); L[d] = v.getUint16(this.ao, true); H[d] = 0; break; }
          case 0x71: { const v = this.rloc(src[pc] as number, offs[pc] as number, 1); L[d] = v.getUint8(this.ao); H[d] = 0; break; }
          case 0x79: { const v = this.rloc(src[pc] as number, offs[pc] as number, 8); const o = this.ao; L[d] = v.getInt32(o, true); H[d] = v.getInt32(o + 4, true); break; }
          case 0x81: { const v = this.rloc(src[pc] as number, offs[pc] as number, 4); const x = v.getInt32(this.ao, true); L[d] = x; H[d] = x >> 31; break; }
          case 0x89: { const v = this.rloc(src[pc] as number, offs[pc] as number, 2); const x = v.getInt16(this.ao, true); L[d] = x; H[d] = x >> 31; break; }
          case 0x91: { const v = this.rloc(src[pc] as number, offs[pc] as number, 1); const x = v.getInt8(this.ao); L[d] = x; H[d] = x >> 31; break; }
          // ---- stores -----------------------------------------------------------------------
          case 0x62: case 0x63: {
            const v = this.wloc(d, offs[pc] as number, 4);
            v.setInt32(this.ao, code === 0x62 ? (imms[pc] as number) : (L[src[pc] as number] as number), true);
            if (this.pendingCtx !== null) this.commitCtx();
            break;
          }
          case 0x6a: case 0x6b: {
            const v = this.wloc(d, offs[pc] as number, 2);
            v.setInt16(this.ao, code === 0x6a ? (imms[pc] as number) : (L[src[pc] as number] as number), true);
            if (this.pendingCtx !== null) this.commitCtx();
            break;
          }
          case 0x72: case 0x73: {
            const v = this.wloc(d, offs[pc] as number, 1);
            v.setInt8(this.ao, code === 0x72 ? (imms[pc] as number) : (L[src[pc] as number] as number));
            if (this.pendingCtx !== null) this.commitCtx();
            break;
          }
          case 0x7a: case 0x7b: {
            const v = this.wloc(d, offs[pc] as number, 8);
            const o = this.ao;
            if (code === 0x7a) { const k = imms[pc] as number; v.setInt32(o, k, true); v.setInt32(o + 4, k >> 31, true); } else {
              const s = src[pc] as number;
              v.setInt32(o, L[s] as number, true); v.setInt32(o + 4, H[s] as number, true);
            }
            if (this.pendingCtx !== null) this.commitCtx();
            break;
          }
          case 0xc3: case 0xdb:
            this.atomic(code === 0xdb, d, src[pc] as number, offs[pc] as number, imms[pc] as number);
            break;
          default:
            throw new MemoryFault(`opcode 0x${code.toString(16)} is not executable`);
        }
        pc++;
      }
    } catch (e) {
      if (e instanceof MemoryFault) throw this.fault(prog, pc, e.message);
      throw e;
    }
  }

  /** bpf_tail_call(ctx, prog_array, index): the target, or null when the call falls through. */
  /** @internal */
  tailCallTarget(): VmProgram | null {
    const mapRegion = this.mem.regionOf(this.H[2] as number);
    const slots = (mapRegion?.owner as Partial<ProgSlots> | null)?.progSlots;
    if (!slots) throw new MemoryFault('bpf_tail_call: r2 is not a prog array');
    const index = (this.L[3] as number) >>> 0;
    if (index >= slots.length) return null;
    if (this.tailCalls >= MAX_TAIL_CALL_CNT) return null;
    this.tailCalls++;
    const target = slots[index] ?? null;
    if (target !== null && this.onTailCall !== null) this.onTailCall(target, this.mem.regionOf(this.H[1] as number));
    return target;
  }

  /** @internal */
  atomic(dw: boolean, d: number, s: number, off: number, kind: number): void {
    const L = this.L, H = this.H;
    const size = dw ? 8 : 4;
    const v = this.wloc(d, off, size);
    if (this.pendingCtx !== null) { this.pendingCtx = null; throw new MemoryFault('atomic operation on a context'); }
    const o = this.ao;
    const oldLo = v.getInt32(o, true);
    const oldHi = dw ? v.getInt32(o + 4, true) : 0;
    const sLo = L[s] as number, sHi = dw ? (H[s] as number) : 0;
    let nLo: number, nHi: number;
    switch (kind & ~1) {
      case 0x00: { nLo = (oldLo + sLo) | 0; nHi = dw ? (oldHi + sHi + ((nLo >>> 0) < (oldLo >>> 0) ? 1 : 0)) | 0 : 0; break; }
      case 0x40: nLo = oldLo | sLo; nHi = oldHi | sHi; break;
      case 0x50: nLo = oldLo & sLo; nHi = oldHi & sHi; break;
      case 0xa0: nLo = oldLo ^ sLo; nHi = oldHi ^ sHi; break;
      case 0xe0: { // xchg (0xe1)
        if (kind !== 0xe1) throw new MemoryFault(`atomic operation 0x${kind.toString(16)} is not defined`);
        nLo = sLo; nHi = sHi;
        break;
      }
      case 0xf0: { // cmpxchg (0xf1): compare with r0, r0 gets the old value
        if (kind !== 0xf1) throw new MemoryFault(`atomic operation 0x${kind.toString(16)} is not defined`);
        const eq = dw ? oldLo === L[0] && oldHi === H[0] : oldLo === L[0];
        nLo = eq ? sLo : oldLo; nHi = eq ? sHi : oldHi;
        v.setInt32(o, nLo, true);
        if (dw) v.setInt32(o + 4, nHi, true);
        L[0] = oldLo; H[0] = oldHi;
        return;
      }
      default:
        throw new MemoryFault(`atomic operation 0x${kind.toString(16)} is not defined`);
    }
    v.setInt32(o, nLo, true);
    if (dw) v.setInt32(o + 4, nHi, true);
    if (kind & 1) { L[s] = oldLo; H[s] = oldHi; } // fetch variants (and xchg) return the old value
  }
}
