// Reading instructions (RFC 9669 encoding) and a compact disassembler for fault messages; the
// opcodes themselves are named in opcodes.ts.

import { Cls, Op } from './opcodes.js';

const ALU_NAMES: Record<number, string> = {
  0x00: '+=',
  0x10: '-=',
  0x20: '*=',
  0x30: '/=',
  0x40: '|=',
  0x50: '&=',
  0x60: '<<=',
  0x70: '>>=',
  0x90: '%=',
  0xa0: '^=',
  0xb0: '=',
  0xc0: 's>>=',
};
const JMP_NAMES: Record<number, string> = {
  0x10: '==',
  0x20: '>',
  0x30: '>=',
  0x40: '&',
  0x50: '!=',
  0x60: 's>',
  0x70: 's>=',
  0xa0: '<',
  0xb0: '<=',
  0xc0: 's<',
  0xd0: 's<=',
};
const SIZE_NAMES: Record<number, string> = { 0x00: 'u32', 0x08: 'u16', 0x10: 'u8', 0x18: 'u64' };
const SSIZE_NAMES: Record<number, string> = { 0x00: 's32', 0x08: 's16', 0x10: 's8' };

export interface RawInsn {
  readonly code: number;
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

export function readInsn(bytes: Uint8Array, index: number): RawInsn {
  const v = new DataView(bytes.buffer, bytes.byteOffset + index * 8, 8);
  const regs = v.getUint8(1);
  return { code: v.getUint8(0), dst: regs & 0xf, src: regs >> 4, off: v.getInt16(2, true), imm: v.getInt32(4, true) };
}

/** One instruction in the llvm-objdump style (enough to recognise it in a fault message). */
export function disassemble(bytes: Uint8Array, index: number): string {
  const i = readInsn(bytes, index);
  const cls = i.code & 7;
  const op = i.code & 0xf0;
  const isX = (i.code & 0x08) !== 0;
  const r = (n: number, w32: boolean) => (w32 ? `w${n}` : `r${n}`);
  switch (cls) {
    case Cls.ALU:
    case Cls.ALU64: {
      const w = cls === Cls.ALU;
      if (op === 0x80) return `${r(i.dst, w)} = -${r(i.dst, w)}`;
      if (op === 0xd0) return cls === Cls.ALU64 ? `r${i.dst} = bswap${i.imm} r${i.dst}` : `r${i.dst} = ${isX ? 'be' : 'le'}${i.imm} r${i.dst}`;
      const name = (op === 0x30 || op === 0x90) && i.off === 1 ? `s${ALU_NAMES[op]}` : (ALU_NAMES[op] ?? '?');
      if (op === 0xb0 && isX && i.off !== 0) return `${r(i.dst, w)} = (s${i.off})${r(i.src, w)}`;
      return `${r(i.dst, w)} ${name} ${isX ? r(i.src, w) : String(i.imm)}`;
    }
    case Cls.JMP:
    case Cls.JMP32: {
      const w = cls === Cls.JMP32;
      if (op === 0x00) return cls === Cls.JMP32 ? `gotol ${i.imm >= 0 ? '+' : ''}${i.imm}` : `goto ${i.off >= 0 ? '+' : ''}${i.off}`;
      if (op === 0x80) return i.src === 1 ? `call pc${i.imm >= 0 ? '+' : ''}${i.imm}` : `call ${i.imm}`;
      if (op === 0x90) return 'exit';
      return `if ${r(i.dst, w)} ${JMP_NAMES[op] ?? '?'} ${isX ? r(i.src, w) : String(i.imm)} goto ${i.off >= 0 ? '+' : ''}${i.off}`;
    }
    case Cls.LD: {
      if (i.code === Op.LD_IMM64) {
        const hi = index + 1 < bytes.length / 8 ? readInsn(bytes, index + 1).imm : 0;
        const v = (BigInt(hi >>> 0) << 32n) | BigInt(i.imm >>> 0);
        return i.src ? `r${i.dst} = ld_pseudo(${i.src}, ${i.imm}, ${hi})` : `r${i.dst} = 0x${v.toString(16)} ll`;
      }
      return `ld_legacy 0x${i.code.toString(16)}`;
    }
    case Cls.LDX: {
      const mode = i.code & 0xe0;
      const sz = i.code & 0x18;
      const t = mode === 0x80 ? SSIZE_NAMES[sz] : SIZE_NAMES[sz];
      return `r${i.dst} = *(${t} *)(r${i.src} ${i.off >= 0 ? '+' : '-'} ${Math.abs(i.off)})`;
    }
    case Cls.ST:
    case Cls.STX: {
      const sz = i.code & 0x18;
      const at = `(r${i.dst} ${i.off >= 0 ? '+' : '-'} ${Math.abs(i.off)})`;
      if ((i.code & 0xe0) === 0xc0) return `atomic 0x${i.imm.toString(16)} *(${SIZE_NAMES[sz]} *)${at}, r${i.src}`;
      return `*(${SIZE_NAMES[sz]} *)${at} = ${cls === Cls.ST ? String(i.imm) : `r${i.src}`}`;
    }
  }
  return `? 0x${i.code.toString(16)}`;
}
