// A small eBPF assembler: instruction constructors and a LinkedProgram built from them, for
// programs written by hand (ISA tests, v4 instructions clang 14 cannot emit, fault cases).

import type { LinkedProgram } from '../../bpf/vm/link.js';

export interface Insn {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

export const Alu = { add: 0x00, sub: 0x10, mul: 0x20, div: 0x30, or: 0x40, and: 0x50, lsh: 0x60, rsh: 0x70, neg: 0x80, mod: 0x90, xor: 0xa0, mov: 0xb0, arsh: 0xc0, end: 0xd0 } as const;
export const Jmp = { ja: 0x00, jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40, jne: 0x50, jsgt: 0x60, jsge: 0x70, call: 0x80, exit: 0x90, jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0 } as const;
export const Size = { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 } as const;
export const Atomic = { add: 0x00, or: 0x40, and: 0x50, xor: 0xa0, fetch: 0x01, xchg: 0xe1, cmpxchg: 0xf1 } as const;

export type AluOp = keyof typeof Alu;
export type JmpOp = keyof typeof Jmp;
export type SizeName = keyof typeof Size;

const ins = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm: imm | 0 });

/** ALU64 (`wide`) or ALU32 with an immediate; `off` selects sdiv/smod (1). */
export function aluK(wide: boolean, op: AluOp, dst: number, imm: number, off = 0): Insn {
  return ins((wide ? 0x07 : 0x04) | Alu[op], dst, 0, off, imm);
}

/** ALU64 or ALU32 with a source register; `off` selects sdiv/smod (1) or movsx width (8/16/32). */
export function aluX(wide: boolean, op: AluOp, dst: number, src: number, off = 0): Insn {
  return ins((wide ? 0x07 : 0x04) | Alu[op] | 0x08, dst, src, off, 0);
}

/** Byte swaps: to little endian (le), to big endian (be), or unconditional (bswap, v4). */
export function endian(kind: 'le' | 'be' | 'bswap', dst: number, bits: 16 | 32 | 64): Insn {
  if (kind === 'bswap') return ins(0xd7, dst, 0, 0, bits);
  return ins(kind === 'le' ? 0xd4 : 0xdc, dst, 0, 0, bits);
}

export function jmpK(wide: boolean, op: JmpOp, dst: number, imm: number, off: number): Insn {
  return ins((wide ? 0x05 : 0x06) | Jmp[op], dst, 0, off, imm);
}

export function jmpX(wide: boolean, op: JmpOp, dst: number, src: number, off: number): Insn {
  return ins((wide ? 0x05 : 0x06) | Jmp[op] | 0x08, dst, src, off, 0);
}

export function ja(off: number): Insn {
  return ins(0x05, 0, 0, off, 0);
}

/** gotol (v4): JMP32 | JA with a 32-bit offset in imm. */
export function gotol(imm: number): Insn {
  return ins(0x06, 0, 0, 0, imm);
}

export function call(helper: number): Insn {
  return ins(0x85, 0, 0, 0, helper);
}

/** bpf-to-bpf call, `rel` instructions after the next one. */
export function callLocal(rel: number): Insn {
  return ins(0x85, 0, 1, 0, rel);
}

export function exit(): Insn {
  return ins(0x95);
}

export function mov64(dst: number, imm: number): Insn {
  return aluK(true, 'mov', dst, imm);
}

export function movReg(dst: number, src: number): Insn {
  return aluX(true, 'mov', dst, src);
}

/** ld_imm64: two instructions. `src` != 0 makes a pseudo load (map references). */
export function ldImm64(dst: number, value: bigint, src = 0): Insn[] {
  const u = BigInt.asUintN(64, value);
  return [ins(0x18, dst, src, 0, Number(u & 0xffffffffn) | 0), ins(0x00, 0, 0, 0, Number(u >> 32n) | 0)];
}

export function ldx(size: SizeName, dst: number, src: number, off: number): Insn {
  return ins(0x61 | Size[size], dst, src, off, 0);
}

/** Sign-extending load (v4); no 64-bit form. */
export function ldxs(size: Exclude<SizeName, 'dw'>, dst: number, src: number, off: number): Insn {
  return ins(0x81 | Size[size], dst, src, off, 0);
}

export function st(size: SizeName, dst: number, off: number, imm: number): Insn {
  return ins(0x62 | Size[size], dst, 0, off, imm);
}

export function stx(size: SizeName, dst: number, off: number, src: number): Insn {
  return ins(0x63 | Size[size], dst, src, off, 0);
}

export function atomic(wide: boolean, kind: number, dst: number, off: number, src: number): Insn {
  return ins(wide ? 0xdb : 0xc3, dst, src, off, kind);
}

export function encode(list: readonly (Insn | readonly Insn[])[]): Uint8Array {
  const flat = list.flat() as Insn[];
  const out = new Uint8Array(flat.length * 8);
  const v = new DataView(out.buffer);
  flat.forEach((i, n) => {
    v.setUint8(n * 8, i.code);
    v.setUint8(n * 8 + 1, ((i.src & 0xf) << 4) | (i.dst & 0xf));
    v.setInt16(n * 8 + 2, i.off, true);
    v.setInt32(n * 8 + 4, i.imm, true);
  });
  return out;
}

/** A program made of the given instructions, as if linked (no maps, no line info). */
export function assemble(name: string, list: readonly (Insn | readonly Insn[])[], section = 'raw'): LinkedProgram {
  const insns = encode(list);
  const n = insns.length / 8;
  return { name, section, insnCount: n, insns, funcOf: new Array<string>(n).fill(name), lineOf: new Array(n).fill(null) };
}
