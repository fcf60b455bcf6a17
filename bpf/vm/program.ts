// A linked program decoded for execution: the checks that make a byte string a program the VM
// can run (every opcode known, registers in range, jumps and calls inside it, ld_imm64 whole,
// map references resolved to pointers), the decoded form both engines run, and the VM's limits.

import { TAIL_CALL_LIMIT } from '../../model/domain.js';
import type { LineInfo } from './btf.js';
import { disassemble } from './isa.js';
import type { LinkedProgram } from './link.js';
import { BPF_PSEUDO_FUNC, BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE } from './link.js';
import type { Region } from './memory.js';
import { ptrHi, ptrLo } from './memory.js';
import { Cls, JmpOp, OP_MASK, OPCODES, Op } from './opcodes.js';

/** The kernel's MAX_TAIL_CALL_CNT (model/domain.ts). */
export const MAX_TAIL_CALL_CNT = TAIL_CALL_LIMIT;
export const MAX_CALL_FRAMES = 8;
export const STACK_SIZE = 512;
/**
 * What a frame's stack holds before the program writes it. The kernel does not clear the stack
 * (a privileged program may read bytes it never wrote: old kernel stack); a zeroed one would hide
 * a key or record built with holes, which the kernel then misses at random. Like ring-buffer
 * memory (maps.ts RINGBUF_POISON), a fixed non-zero pattern shows such reads every time.
 */
export const STACK_POISON = 0x5a;
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

/** Resolves ld_imm64 map references of a program: the map's handle region, its value region (global data). */
export interface MapResolver {
  handle(mapIndex: number): Region;
  value(mapIndex: number): Region;
}

const VALID = new Uint8Array(256);
for (const c of OPCODES) VALID[c] = 1;

/** Decodes and checks a linked program; map references become pointers into `maps`' regions. */
export function bindProgram(linked: LinkedProgram, maps: MapResolver): VmProgram {
  const n = linked.insnCount;
  const view = new DataView(linked.insns.buffer, linked.insns.byteOffset, linked.insns.byteLength);
  const op = new Uint8Array(n),
    dst = new Uint8Array(n),
    src = new Uint8Array(n);
  const off = new Int32Array(n),
    imm = new Int32Array(n),
    imm2 = new Int32Array(n);
  const bad = (pc: number, why: string): never => {
    const l = linked.lineOf[pc];
    throw new VmFault(linked.name, pc, linked.funcOf[pc] ?? '?', l ?? null, disassemble(linked.insns, pc), `invalid program: ${why}`);
  };
  for (let pc = 0; pc < n; pc++) {
    const o = pc * 8;
    const code = view.getUint8(o);
    const regs = view.getUint8(o + 1);
    op[pc] = code;
    dst[pc] = regs & 0xf;
    src[pc] = regs >> 4;
    off[pc] = view.getInt16(o + 2, true);
    imm[pc] = view.getInt32(o + 4, true);
  }
  for (let pc = 0; pc < n; pc++) {
    const code = op[pc] as number;
    const d = dst[pc] as number,
      s = src[pc] as number;
    if (!VALID[code]) bad(pc, `unknown opcode 0x${code.toString(16)}`);
    if (d > 10 || s > 10) bad(pc, 'register number above r10');
    const cls = code & 7;
    const writesDst = cls === Cls.ALU || cls === Cls.ALU64 || cls === Cls.LDX || code === Op.LD_IMM64;
    if (writesDst && d === 10) bad(pc, 'r10 (frame pointer) is read-only');
    if (cls === Cls.JMP || cls === Cls.JMP32) {
      const jop = code & OP_MASK;
      if (jop === JmpOp.CALL) {
        if (s === 1) {
          const t = pc + (imm[pc] as number) + 1;
          if (t < 0 || t >= n) bad(pc, `call target ${t} outside the program`);
        } else if (s !== 0) {
          bad(pc, s === 2 ? 'kfunc calls are not supported' : `call with src_reg ${s}`);
        }
      } else if (jop !== JmpOp.EXIT) {
        const delta = code === Op.JA32 ? (imm[pc] as number) : (off[pc] as number);
        const t = pc + delta + 1;
        if (t < 0 || t >= n) bad(pc, `jump target ${t} outside the program`);
      }
    }
    if (code === Op.LD_IMM64) {
      if (pc + 1 >= n || op[pc + 1] !== 0) bad(pc, 'ld_imm64 without its second half');
      const hi = imm[pc + 1] as number;
      switch (s) {
        case 0:
          imm2[pc] = hi;
          break;
        case BPF_PSEUDO_MAP_IDX: {
          const r = maps.handle(imm[pc] as number);
          imm[pc] = ptrLo(0);
          imm2[pc] = ptrHi(r);
          break;
        }
        case BPF_PSEUDO_MAP_IDX_VALUE: {
          const r = maps.value(imm[pc] as number);
          imm[pc] = ptrLo(hi);
          imm2[pc] = ptrHi(r);
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
    name: linked.name,
    section: linked.section,
    linked,
    n,
    op,
    dst,
    src,
    off,
    imm,
    imm2,
    hits: new Uint32Array(n),
    taken: new Uint32Array(n),
  };
}
