// The eBPF ISA (v1-v4) on both engines, against an independent BigInt reference of the RFC 9669
// semantics: ALU64/ALU32 (incl. sdiv/smod, movsx), byte swaps, JMP/JMP32, loads and stores
// (incl. sign-extending loads), atomics, ld_imm64, bpf-to-bpf calls and their stack frames.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Alu,
  Atomic,
  aluK,
  aluX,
  assemble,
  atomic,
  callLocal,
  endian,
  exit,
  gotol,
  ja,
  jmpK,
  jmpX,
  ldImm64,
  ldx,
  ldxs,
  mov64,
  movReg,
  st,
  stx,
  type AluOp,
  type JmpOp,
  type Insn,
} from '../support/asm.js';
import { runRaw } from '../fixtures/vm/helpers.js';
import { STACK_POISON, VmFault, bindProgram } from '../../bpf/vm/program.js';

const M64 = (1n << 64n) - 1n;
const M32 = (1n << 32n) - 1n;
const s64 = (x: bigint) => BigInt.asIntN(64, x);
const s32 = (x: bigint) => BigInt.asIntN(32, x);
const u64 = (x: bigint) => BigInt.asUintN(64, x);
const u32 = (x: bigint) => BigInt.asUintN(32, x);
const sext = (x: bigint, bits: number) => BigInt.asIntN(bits, x);

const ENGINES = ['interp', 'jit'] as const;

function ref64(op: AluOp, a: bigint, b: bigint, off: number): bigint {
  switch (op) {
    case 'add':
      return u64(a + b);
    case 'sub':
      return u64(a - b);
    case 'mul':
      return u64(a * b);
    case 'div':
      return b === 0n ? 0n : off === 1 ? u64(s64(a) / s64(b)) : a / b;
    case 'mod':
      return b === 0n ? a : off === 1 ? u64(s64(a) % s64(b)) : a % b;
    case 'or':
      return a | b;
    case 'and':
      return a & b;
    case 'xor':
      return a ^ b;
    case 'lsh':
      return u64(a << (b & 63n));
    case 'rsh':
      return a >> (b & 63n);
    case 'arsh':
      return u64(s64(a) >> (b & 63n));
    case 'neg':
      return u64(-a);
    case 'mov':
      return off === 0 ? b : u64(sext(b, off));
    default:
      throw new Error(op);
  }
}

function ref32(op: AluOp, a0: bigint, b0: bigint, off: number): bigint {
  const a = u32(a0),
    b = u32(b0);
  switch (op) {
    case 'add':
      return u32(a + b);
    case 'sub':
      return u32(a - b);
    case 'mul':
      return u32(a * b);
    case 'div':
      return b === 0n ? 0n : off === 1 ? u32(s32(a) / s32(b)) : a / b;
    case 'mod':
      return b === 0n ? a : off === 1 ? u32(s32(a) % s32(b)) : a % b;
    case 'or':
      return a | b;
    case 'and':
      return a & b;
    case 'xor':
      return a ^ b;
    case 'lsh':
      return u32(a << (b & 31n));
    case 'rsh':
      return a >> (b & 31n);
    case 'arsh':
      return u32(s32(a) >> (b & 31n));
    case 'neg':
      return u32(-a);
    case 'mov':
      return off === 0 ? b : u32(sext(b, off));
    default:
      throw new Error(op);
  }
}

function refJmp(op: JmpOp, wide: boolean, a0: bigint, b0: bigint): boolean {
  const a = wide ? a0 : u32(a0),
    b = wide ? b0 : u32(b0);
  const sa = wide ? s64(a) : s32(a),
    sb = wide ? s64(b) : s32(b);
  switch (op) {
    case 'jeq':
      return a === b;
    case 'jne':
      return a !== b;
    case 'jgt':
      return a > b;
    case 'jge':
      return a >= b;
    case 'jlt':
      return a < b;
    case 'jle':
      return a <= b;
    case 'jsgt':
      return sa > sb;
    case 'jsge':
      return sa >= sb;
    case 'jslt':
      return sa < sb;
    case 'jsle':
      return sa <= sb;
    case 'jset':
      return (a & b) !== 0n;
    default:
      throw new Error(op);
  }
}

function bswap(x: bigint, bits: number): bigint {
  let out = 0n;
  for (let i = 0; i < bits / 8; i++) out = (out << 8n) | ((x >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** Values near the edges (0, ±1, INT_MIN/MAX of both widths) mixed with random ones. */
const interesting = fc.oneof(
  fc.constantFrom(0n, 1n, 2n, 31n, 32n, 63n, 64n, M64, M64 - 1n, 1n << 63n, (1n << 63n) - 1n, M32, 1n << 31n, (1n << 31n) - 1n, 0xffffffff80000000n, 0x1234567890abcdefn),
  fc.bigInt({ min: 0n, max: M64 }),
  fc.bigInt({ min: 0n, max: 0xffffn }),
);
const imm32 = fc.oneof(fc.constantFrom(0, 1, -1, 2, 31, 32, 63, 0x7fffffff, -0x80000000, 7), fc.integer({ min: -0x80000000, max: 0x7fffffff }));
const aluOps: AluOp[] = ['add', 'sub', 'mul', 'div', 'mod', 'or', 'and', 'xor', 'lsh', 'rsh', 'arsh', 'neg', 'mov'];
const jmpOps: JmpOp[] = ['jeq', 'jne', 'jgt', 'jge', 'jlt', 'jle', 'jsgt', 'jsge', 'jslt', 'jsle', 'jset'];

function offsFor(op: AluOp, wide: boolean, isX: boolean): number[] {
  if (op === 'div' || op === 'mod') return [0, 1];
  if (op === 'mov' && isX) return wide ? [0, 8, 16, 32] : [0, 8, 16];
  return [0];
}

const run = (engine: 'jit' | 'interp', insns: (Insn | Insn[])[]) => runRaw(assemble('t', insns), engine).r0;

describe.each(ENGINES)('ISA on the %s engine', (engine) => {
  it('ALU64 and ALU32 with register operands match the reference', () => {
    fc.assert(
      fc.property(fc.constantFrom(...aluOps), fc.boolean(), interesting, interesting, fc.nat(3), (op, wide, a, b, pick) => {
        const offs = offsFor(op, wide, true);
        const off = offs[pick % offs.length] as number;
        // neg has no register form (BPF_NEG | BPF_X is not an instruction)
        const insn = op === 'neg' ? aluK(wide, op, 0, 0) : aluX(wide, op, 0, 1, off);
        const got = run(engine, [ldImm64(0, a), ldImm64(1, b), insn, exit()]);
        const want = wide ? ref64(op, a, b, off) : ref32(op, a, b, off);
        expect(got, `${wide ? 'alu64' : 'alu32'} ${op} off=${off} a=0x${a.toString(16)} b=0x${b.toString(16)}`).toBe(want);
      }),
      { numRuns: 400, seed: 4242 },
    );
  });

  it('ALU64 and ALU32 with immediates match the reference (imm sign-extended to 64 bits)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...aluOps), fc.boolean(), interesting, imm32, fc.nat(1), (op, wide, a, k, pick) => {
        const offs = offsFor(op, wide, false);
        const off = offs[pick % offs.length] as number;
        const got = run(engine, [ldImm64(0, a), aluK(wide, op, 0, k, off), exit()]);
        const b = u64(BigInt(k));
        const want = wide ? ref64(op, a, b, off) : ref32(op, a, b, off);
        expect(got, `${wide ? 'alu64' : 'alu32'} ${op}K off=${off} a=0x${a.toString(16)} k=${k}`).toBe(want);
      }),
      { numRuns: 400, seed: 99 },
    );
  });

  it('ALU edge cases: every op, width and variant over a grid of boundary values', () => {
    const edges = [0n, 1n, 2n, 63n, 64n, M64, 1n << 63n, (1n << 63n) - 1n, M32, 1n << 31n, 0xffffffff80000000n, 0x100000000n];
    for (const op of aluOps) {
      for (const wide of [true, false]) {
        for (const off of offsFor(op, wide, true)) {
          for (const a of edges) {
            for (const b of edges) {
              const insn = op === 'neg' ? aluK(wide, op, 0, 0) : aluX(wide, op, 0, 1, off);
              const got = run(engine, [ldImm64(0, a), ldImm64(1, b), insn, exit()]);
              const want = wide ? ref64(op, a, b, off) : ref32(op, a, b, off);
              if (got !== want) expect(got, `${wide ? 'alu64' : 'alu32'} ${op} off=${off} a=0x${a.toString(16)} b=0x${b.toString(16)}`).toBe(want);
            }
          }
        }
      }
    }
  });

  it('the same register as source and destination', () => {
    fc.assert(
      fc.property(fc.constantFrom(...aluOps), fc.boolean(), interesting, (op, wide, a) => {
        const got = run(engine, [ldImm64(3, a), op === 'neg' ? aluK(wide, op, 3, 0) : aluX(wide, op, 3, 3), movReg(0, 3), exit()]);
        expect(got).toBe(wide ? ref64(op, a, a, 0) : ref32(op, a, a, 0));
      }),
      { numRuns: 150, seed: 7 },
    );
  });

  it('byte swaps: le, be and v4 bswap of 16, 32, 64 bits', () => {
    fc.assert(
      fc.property(interesting, fc.constantFrom(16, 32, 64) as fc.Arbitrary<16 | 32 | 64>, fc.constantFrom('le', 'be', 'bswap') as fc.Arbitrary<'le' | 'be' | 'bswap'>, (a, bits, kind) => {
        const got = run(engine, [ldImm64(0, a), endian(kind, 0, bits), exit()]);
        const low = a & ((1n << BigInt(bits)) - 1n);
        expect(got).toBe(kind === 'le' ? low : bswap(low, bits));
      }),
      { numRuns: 200, seed: 11 },
    );
  });

  it('JMP and JMP32 conditions, register and immediate forms', () => {
    fc.assert(
      fc.property(fc.constantFrom(...jmpOps), fc.boolean(), fc.boolean(), interesting, interesting, imm32, (op, wide, useK, a, b0, k) => {
        const b = useK ? u64(BigInt(k)) : b0;
        const j = useK ? jmpK(wide, op, 1, k, 1) : jmpX(wide, op, 1, 2, 1);
        const got = run(engine, [ldImm64(1, a), ldImm64(2, b0), mov64(0, 0), j, exit(), mov64(0, 1), exit()]);
        expect(got, `${wide ? 'jmp' : 'jmp32'} ${op} a=0x${a.toString(16)} b=0x${b.toString(16)}`).toBe(refJmp(op, wide, a, b) ? 1n : 0n);
      }),
      { numRuns: 500, seed: 5 },
    );
  });

  it('ja, gotol (v4) and a backward loop', () => {
    expect(run(engine, [mov64(0, 1), ja(1), mov64(0, 2), exit()])).toBe(1n);
    expect(run(engine, [mov64(0, 1), gotol(1), mov64(0, 2), exit()])).toBe(1n);
    // r0 = sum 1..10 with a backward conditional jump
    expect(run(engine, [mov64(0, 0), mov64(1, 10), aluX(true, 'add', 0, 1), aluK(true, 'sub', 1, 1), jmpK(true, 'jne', 1, 0, -3), exit()])).toBe(55n);
  });

  it('loads and stores of every size, zero- and sign-extending, on the stack and the context', () => {
    fc.assert(
      fc.property(interesting, fc.constantFrom('b', 'h', 'w', 'dw') as fc.Arbitrary<'b' | 'h' | 'w' | 'dw'>, fc.integer({ min: 1, max: 63 }), fc.boolean(), (v, size, slot, signed) => {
        const bytes = { b: 1, h: 2, w: 4, dw: 8 }[size];
        const off = -8 * slot;
        const load = signed && size !== 'dw' ? ldxs(size, 0, 10, off) : ldx(size, 0, 10, off);
        const got = run(engine, [ldImm64(1, v), stx(size, 10, off, 1), load, exit()]);
        const low = v & ((1n << BigInt(8 * bytes)) - 1n);
        expect(got).toBe(signed && size !== 'dw' ? u64(sext(low, 8 * bytes)) : low);
        // store-immediate: imm sign-extended, truncated to the size
        const gotImm = run(engine, [st(size, 10, off, -2), ldx(size, 0, 10, off), exit()]);
        expect(gotImm).toBe(u64(-2n) & ((1n << BigInt(8 * bytes)) - 1n));
      }),
      { numRuns: 200, seed: 3 },
    );
    const ctx = new Uint8Array(64);
    ctx.set([1, 2, 3, 4, 5, 6, 7, 8], 16);
    const r = runRaw(assemble('t', [ldx('dw', 0, 1, 16), stx('w', 1, 40, 0), exit()]), engine, ctx);
    expect(r.r0).toBe(0x0807060504030201n);
    expect([...ctx.subarray(40, 44)]).toEqual([1, 2, 3, 4]);
  });

  it('atomics: add/or/and/xor with and without fetch, xchg, cmpxchg, 32 and 64 bit', () => {
    const cases: Array<{ kind: number; wide: boolean; mem: bigint; src: bigint; r0?: bigint; memAfter: bigint; srcAfter: bigint; r0After?: bigint }> = [];
    const mem = 0xf0f0f0f0_0000000fn,
      src = 0x0f0f0f0f_00000031n;
    for (const wide of [true, false]) {
      const mask = wide ? M64 : M32;
      const m = mem & mask,
        s = src & mask;
      for (const [name, f] of [
        ['add', (x: bigint, y: bigint) => (x + y) & mask],
        ['or', (x: bigint, y: bigint) => x | y],
        ['and', (x: bigint, y: bigint) => x & y],
        ['xor', (x: bigint, y: bigint) => x ^ y],
      ] as const) {
        const kind = Atomic[name];
        cases.push({ kind, wide, mem: m, src, memAfter: f(m, s), srcAfter: src });
        cases.push({ kind: kind | Atomic.fetch, wide, mem: m, src, memAfter: f(m, s), srcAfter: m });
      }
      cases.push({ kind: Atomic.xchg, wide, mem: m, src, memAfter: s, srcAfter: m });
      cases.push({ kind: Atomic.cmpxchg, wide, mem: m, src, r0: m, memAfter: s, srcAfter: src, r0After: m });
      cases.push({ kind: Atomic.cmpxchg, wide, mem: m, src, r0: 5n, memAfter: m, srcAfter: src, r0After: m });
    }
    for (const c of cases) {
      const size = c.wide ? 'dw' : 'w';
      const prog = [
        ldImm64(2, c.mem),
        stx('dw', 10, -8, 2),
        ldImm64(3, c.src),
        ldImm64(0, c.r0 ?? 0n),
        atomic(c.wide, c.kind, 10, -8, 3),
        stx('dw', 10, -16, 0),
        ldx(size, 0, 10, -8),
        stx('dw', 10, -24, 3),
        exit(),
      ];
      const r = runRaw(assemble('t', prog), engine);
      expect(r.r0, `atomic 0x${c.kind.toString(16)} ${size}: memory`).toBe(c.memAfter);
      const stack = r.machine.stacks[0]!.view;
      expect(stack.getBigUint64(512 - 24, true), `atomic 0x${c.kind.toString(16)} ${size}: src register`).toBe(c.srcAfter);
      if (c.r0After !== undefined) expect(stack.getBigUint64(512 - 16, true) & (c.wide ? M64 : M32)).toBe(c.r0After);
    }
  });

  it('bpf-to-bpf calls: arguments, r6-r9 preserved, a fresh 512-byte stack per frame, nesting', () => {
    // main: r6 = 100; *(fp-8) = 7; r1 = 5; call f; r0 += r6; r0 += *(fp-8); exit
    // f:    r6 = 1000; *(fp-8) = 99; r1 *= 2; call g; r0 += r1 ... g: r0 = r1 + 1
    const prog = [
      mov64(6, 100),
      st('dw', 10, -8, 7),
      mov64(1, 5),
      callLocal(4),
      aluX(true, 'add', 0, 6),
      ldx('dw', 2, 10, -8),
      aluX(true, 'add', 0, 2),
      exit(),
      // f at 8
      mov64(6, 1000),
      st('dw', 10, -8, 99),
      aluK(true, 'mul', 1, 2),
      callLocal(3),
      ldx('dw', 2, 10, -8),
      aluX(true, 'add', 0, 2),
      exit(),
      // g at 15
      movReg(0, 1),
      aluK(true, 'add', 0, 1),
      exit(),
    ];
    // g: 11; f: 11 + 99 = 110; main: 110 + 100 + 7 = 217
    expect(run(engine, prog)).toBe(217n);
  });

  it("a stack byte the program never wrote reads as STACK_POISON (the kernel clears no stack), in the entry frame and in a callee's own", () => {
    const poison = BigInt(`0x${STACK_POISON.toString(16).padStart(2, '0').repeat(8)}`);
    expect(run(engine, [ldx('b', 0, 10, -1), exit()])).toBe(poison & 0xffn);
    // main writes its fp-8 and calls f (pc 3), which reads its own fp-8: not main's, never written.
    expect(run(engine, [st('dw', 10, -8, 7), callLocal(1), exit(), ldx('dw', 0, 10, -8), exit()])).toBe(poison);
  });

  it('recursion beyond 8 frames faults with the pc of the call', () => {
    const prog = [callLocal(-1), exit()];
    const bound = () => runRaw(assemble('deep', prog), engine);
    expect(bound).toThrow(VmFault);
    expect(bound).toThrow(/deep: fault at pc 0 .*call depth exceeds 8 frames/);
  });

  it('ld_imm64 loads all 64 bits', () => {
    fc.assert(
      fc.property(interesting, (v) => {
        expect(run(engine, [ldImm64(0, v), exit()])).toBe(v);
      }),
      { numRuns: 50, seed: 1 },
    );
  });
});

describe('program validation', () => {
  const bind = (insns: (Insn | Insn[])[]) =>
    bindProgram(assemble('bad', insns), {
      handle: () => {
        throw new Error('no');
      },
      value: () => {
        throw new Error('no');
      },
    });
  it('rejects unknown opcodes, writes to r10, jumps outside, and half ld_imm64', () => {
    expect(() => bind([{ code: 0xff, dst: 0, src: 0, off: 0, imm: 0 }, exit()])).toThrow(/unknown opcode 0xff/);
    expect(() => bind([mov64(10, 1), exit()])).toThrow(/r10 \(frame pointer\) is read-only/);
    expect(() => bind([ja(5), exit()])).toThrow(/jump target 6 outside the program/);
    expect(() => bind([ldImm64(0, 1n)[0] as Insn])).toThrow(/ld_imm64 without its second half/);
    expect(() => bind([{ code: 0x85, dst: 0, src: 2, off: 0, imm: 1 }, exit()])).toThrow(/kfunc calls are not supported/);
  });
  it('sdiv/smod and movsx are distinguished by the offset field', () => {
    expect(Alu.div).toBe(0x30);
    const r = runRaw(assemble('t', [mov64(0, -7), aluK(true, 'div', 0, 2, 1), exit()]), 'interp').r0;
    expect(s64(r)).toBe(-3n);
  });
});
