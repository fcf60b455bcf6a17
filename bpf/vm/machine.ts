// The VM's machine: registers (pairs of int32 in two Int32Arrays: no BigInt on the hot path),
// call frames with a 512-byte stack each, tail calls with the kernel's limit, helpers, the
// tagged-region memory checks of memory.ts, and atomics. It runs programs either in the reference
// interpreter (interp.ts, engine 'interp') or compiled to JavaScript by jit.ts (engine 'jit', the
// default: same semantics, several times faster per instruction). A fault names the program,
// the pc, the function and the source line (BTF line info).

import { Access, BIAS, Memory, MemoryFault, PTR_TAG, Region, ptrHi, ptrLo } from './memory.js';
import { disassemble } from './isa.js';
import { R64, mul64, div64, mod64, div32, mod32, bswap16, bswap32, gtu, gts } from './arith.js';
import { compile, type Compiled, type JitRuntime } from './jit.js';
import { interpret } from './interp.js';
import { AtomicOp } from './opcodes.js';
import { BRANCH_BUDGET, MAX_CALL_FRAMES, MAX_TAIL_CALL_CNT, STACK_POISON, STACK_SIZE, VmFault, type ProgSlots, type VmProgram } from './program.js';

export type Helper = (m: Machine) => void;

/** The fault of an access to a context through a pointer moved by `low - BIAS` bytes first. */
function modifiedBase(r: Region, low: number): MemoryFault {
  return new MemoryFault(`${r.name}: dereference of a modified context pointer (moved by ${low - BIAS} bytes before the access), which the kernel's verifier rejects`);
}

/** Throws modifiedBase unless the pointer (its low word `low`) is the context's own. */
function checkBase(r: Region, low: number): void {
  if (low !== BIAS) throw modifiedBase(r, low);
}

export class Machine {
  readonly L = new Int32Array(11);
  readonly H = new Int32Array(11);
  readonly helpers: (Helper | undefined)[] = [];
  readonly stacks: Region[] = [];
  /** Tail calls done in the current run (the kernel's tail_call_cnt). */
  tailCalls = 0;
  /** Program entries so far, runs and tail calls: one per pass (draws are counted per pass, executor.ts). */
  entries = 0;
  /** @internal Offset computed by the last address check. */
  ao = 0;
  /** @internal */
  readonly frameProg: (VmProgram | null)[] = new Array<VmProgram | null>(MAX_CALL_FRAMES).fill(null);
  /** @internal */
  readonly frameRet = new Int32Array(MAX_CALL_FRAMES);
  /** @internal */
  readonly frameSaved = new Int32Array(MAX_CALL_FRAMES * 10);
  /** The program running now (after tail calls, the last one entered). */
  current: VmProgram | null = null;
  /**
   * Called at every tail call that happens, before the target starts (with r1, the context,
   * as it is passed on). Exploration uses it to recognise states it has already explored.
   */
  onTailCall: ((target: VmProgram, ctx: Region | null) => void) | null = null;
  /** Called at every tail call that falls through (the caller goes on), with the slot and why. */
  onTailCallMiss: ((index: number, why: string) => void) | null = null;

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
      if (r.fixedBase) checkBase(r, this.L[reg] as number);
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
      if (r.fixedBase) checkBase(r, this.L[reg] as number);
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
    if (this.onContextStore !== null) this.onContextStore(r);
  }

  /** Told of every store into a context field once it is made (the tracer, bpf/vm/trace.ts). */
  onContextStore: ((ctx: Region) => void) | null = null;

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
    return this.engine === 'jit' ? this.runJit(entry, ctx) : interpret(this, entry, ctx);
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
    // The JIT runtime's closures capture the machine once (they run per instruction).
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const m = this;
    const wrap = (prog: VmProgram, pc: number, e: unknown): Error => {
      if (e instanceof MemoryFault) return m.jitFault(prog, pc, e.message);
      return e as Error;
    };
    // The slow paths resolve a pointer through the interpreter's own checks by lending it register 0.
    const locate = (h: number, l: number, off: number, size: number, write: boolean): DataView => {
      const saveL = m.L[0] as number,
        saveH = m.H[0] as number;
      m.L[0] = l;
      m.H[0] = h;
      try {
        return write ? m.wloc(0, off, size) : m.rloc(0, off, size);
      } finally {
        m.L[0] = saveL;
        m.H[0] = saveH;
      }
    };
    const rt: JitRuntime = {
      regions: this.mem.regions,
      L: this.L,
      H: this.H,
      FS: new Int32Array(MAX_CALL_FRAMES * 10),
      FR: new Int32Array(MAX_CALL_FRAMES),
      R64,
      mul64,
      div64,
      mod64,
      div32,
      mod32,
      bswap16,
      bswap32,
      gtu,
      gts,
      ldHi: 0,
      budget: BRANCH_BUDGET,
      next: null,
      ld(prog, h, l, off, size, signed, pc) {
        // Slow path: contexts (read by their rules) first, then faults with the interpreter's checks.
        const g = (h & PTR_TAG) === PTR_TAG ? m.mem.regions[h & 0xffff] : undefined;
        const at = l - BIAS + off;
        if (g !== undefined && g.access === Access.RULES && at >= 0 && at + size <= g.bytes.length && g.rules !== null && ((g.rules.read[at] as number) & size) !== 0) {
          if (g.fixedBase && l !== BIAS) throw wrap(prog, pc, modifiedBase(g, l));
          const v = g.view;
          let lo: number;
          if (size === 8) {
            rt.ldHi = v.getInt32(at + 4, true);
            return v.getInt32(at, true);
          }
          if (size === 4) lo = v.getInt32(at, true);
          else if (size === 2) lo = signed ? v.getInt16(at, true) : v.getUint16(at, true);
          else lo = signed ? v.getInt8(at) : v.getUint8(at);
          rt.ldHi = signed ? lo >> 31 : 0;
          return lo;
        }
        try {
          const v = locate(h, l, off, size, false);
          const o = m.ao;
          let lo: number, hi: number;
          if (size === 8) {
            lo = v.getInt32(o, true);
            hi = v.getInt32(o + 4, true);
          } else if (size === 4) {
            lo = v.getInt32(o, true);
            hi = signed ? lo >> 31 : 0;
          } else if (size === 2) {
            lo = signed ? v.getInt16(o, true) : v.getUint16(o, true);
            hi = signed ? lo >> 31 : 0;
          } else {
            lo = signed ? v.getInt8(o) : v.getUint8(o);
            hi = signed ? lo >> 31 : 0;
          }
          rt.ldHi = hi;
          return lo;
        } catch (e) {
          throw wrap(prog, pc, e);
        }
      },
      st(prog, h, l, off, size, lo, hi, pc) {
        // Slow path: context fields writable by their rules (stored with the field's real width), then faults.
        const g = (h & PTR_TAG) === PTR_TAG ? m.mem.regions[h & 0xffff] : undefined;
        const at = l - BIAS + off;
        if (g !== undefined && g.access === Access.RULES && at >= 0 && at + size <= g.bytes.length && g.rules !== null && ((g.rules.write[at] as number) & size) !== 0) {
          if (g.fixedBase && l !== BIAS) throw wrap(prog, pc, modifiedBase(g, l));
          const v = g.view;
          const width = (g.rules.storeWidth[at] as number) || size;
          if (size === 8) {
            v.setInt32(at, lo, true);
            v.setInt32(at + 4, hi, true);
          } else if (size === 4) v.setInt32(at, lo, true);
          else if (size === 2) v.setInt16(at, lo, true);
          else v.setInt8(at, lo);
          if (width < size) g.bytes.fill(0, at + width, at + size);
          return;
        }
        try {
          const v = locate(h, l, off, size, true);
          const o = m.ao;
          if (size === 8) {
            v.setInt32(o, lo, true);
            v.setInt32(o + 4, hi, true);
          } else if (size === 4) v.setInt32(o, lo, true);
          else if (size === 2) v.setInt16(o, lo, true);
          else v.setInt8(o, lo);
          if (m.pendingCtx !== null) m.commitCtx();
        } catch (e) {
          m.pendingCtx = null;
          throw wrap(prog, pc, e);
        }
      },
      helper(prog, id, pc) {
        const h = m.helpers[id];
        if (h === undefined) throw m.jitFault(prog, pc, `helper ${id} is not supported by the VM`);
        m.current = prog;
        try {
          h(m);
        } catch (e) {
          throw wrap(prog, pc, e);
        }
      },
      tail(prog, pc) {
        try {
          return m.tailCallTarget();
        } catch (e) {
          throw wrap(prog, pc, e);
        }
      },
      nested(target, depth) {
        return m.driveJit(target, depth);
      },
      atomic(prog, dw, d, s, off, kind, pc) {
        try {
          m.atomic(dw, d, s, off, kind);
        } catch (e) {
          m.pendingCtx = null;
          throw wrap(prog, pc, e);
        }
      },
      frame(depth) {
        const stack = m.stacks[depth] as Region;
        stack.bytes.fill(STACK_POISON);
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
    const L = this.L,
      H = this.H;
    L.fill(0);
    H.fill(0);
    this.setPointer(1, ctx, 0);
    this.stacks[0]?.bytes.fill(STACK_POISON);
    this.setPointer(10, this.stacks[0] as Region, STACK_SIZE);
    this.tailCalls = 0;
    this.entries++;
    this.pendingCtx = null;
    this.rt.budget = BRANCH_BUDGET;
    return this.driveJit(entry, 0);
  }

  /** bpf_tail_call(ctx, prog_array, index): the target, or null when the call falls through. */
  /** @internal */
  tailCallTarget(): VmProgram | null {
    const mapRegion = this.mem.regionOf(this.H[2] as number);
    const slots = (mapRegion?.owner as Partial<ProgSlots> | null)?.progSlots;
    if (!slots) throw new MemoryFault('bpf_tail_call: r2 is not a prog array');
    const index = (this.L[3] as number) >>> 0;
    if (index >= slots.length) return this.tailCallMissed(index, `past the array's ${slots.length} slots`);
    if (this.tailCalls >= MAX_TAIL_CALL_CNT) return this.tailCallMissed(index, `the limit of ${MAX_TAIL_CALL_CNT} tail calls reached`);
    this.tailCalls++;
    this.entries++;
    const target = slots[index] ?? null;
    if (target === null) return this.tailCallMissed(index, 'no program in that slot');
    if (this.onTailCall !== null) this.onTailCall(target, this.mem.regionOf(this.H[1] as number));
    return target;
  }

  private tailCallMissed(index: number, why: string): null {
    this.onTailCallMiss?.(index, why);
    return null;
  }

  /** @internal */
  atomic(dw: boolean, d: number, s: number, off: number, kind: number): void {
    const L = this.L,
      H = this.H;
    const size = dw ? 8 : 4;
    const v = this.wloc(d, off, size);
    if (this.pendingCtx !== null) {
      this.pendingCtx = null;
      throw new MemoryFault('atomic operation on a context');
    }
    const o = this.ao;
    const oldLo = v.getInt32(o, true);
    const oldHi = dw ? v.getInt32(o + 4, true) : 0;
    const sLo = L[s] as number,
      sHi = dw ? (H[s] as number) : 0;
    let nLo: number, nHi: number;
    switch (kind & ~AtomicOp.FETCH) {
      case AtomicOp.ADD: {
        nLo = (oldLo + sLo) | 0;
        nHi = dw ? (oldHi + sHi + (nLo >>> 0 < oldLo >>> 0 ? 1 : 0)) | 0 : 0;
        break;
      }
      case AtomicOp.OR:
        nLo = oldLo | sLo;
        nHi = oldHi | sHi;
        break;
      case AtomicOp.AND:
        nLo = oldLo & sLo;
        nHi = oldHi & sHi;
        break;
      case AtomicOp.XOR:
        nLo = oldLo ^ sLo;
        nHi = oldHi ^ sHi;
        break;
      case AtomicOp.XCHG & ~AtomicOp.FETCH: {
        if (kind !== AtomicOp.XCHG) throw new MemoryFault(`atomic operation 0x${kind.toString(16)} is not defined`);
        nLo = sLo;
        nHi = sHi;
        break;
      }
      case AtomicOp.CMPXCHG & ~AtomicOp.FETCH: {
        // compare with r0, r0 gets the old value
        if (kind !== AtomicOp.CMPXCHG) throw new MemoryFault(`atomic operation 0x${kind.toString(16)} is not defined`);
        const eq = dw ? oldLo === L[0] && oldHi === H[0] : oldLo === L[0];
        nLo = eq ? sLo : oldLo;
        nHi = eq ? sHi : oldHi;
        v.setInt32(o, nLo, true);
        if (dw) v.setInt32(o + 4, nHi, true);
        L[0] = oldLo;
        H[0] = oldHi;
        return;
      }
      default:
        throw new MemoryFault(`atomic operation 0x${kind.toString(16)} is not defined`);
    }
    v.setInt32(o, nLo, true);
    if (dw) v.setInt32(o + 4, nHi, true);
    if (kind & AtomicOp.FETCH) {
      L[s] = oldLo;
      H[s] = oldHi;
    } // fetch variants (and xchg) return the old value
  }
}
