// Compiles a bound program to a JavaScript function with the interpreter's exact semantics:
// registers become local variables (int32 pairs), constants are folded into the code, basic blocks
// are laid out in order in a dispatch loop whose switch has a `case` only where structured control
// flow cannot reach (jit-layout.ts: forward jumps are labelled breaks, a jump to a short exit block
// runs a copy of it), memory accesses call small checked accessors (the tagged-region check of
// memory.ts, then a slow path for contexts and faults) so that large programs stay within what V8
// optimises, and helpers, atomics and wide divisions go through the machine. Coverage is counted
// per basic block (plus the taken count of every conditional jump); a fault corrects the counts of
// the instructions after it in its block. The interpreter (interp.ts) stays the reference; both
// switch on the names of opcodes.ts: the tests run both engines on the same programs and compare.

import { BIAS, PTR_TAG } from './memory.js';
import { layout } from './jit-layout.js';
import { jumpCondition } from './jit-cond.js';
import type { VmProgram } from './program.js';
import { HELPER_TAIL_CALL, MAX_CALL_FRAMES, STACK_SIZE } from './program.js';
import { AluOp, Cls, JmpOp, MODE_MASK, MODE_MEMSX, OP_MASK, Op, SIZE_BYTES, SIZE_MASK, SRC_X } from './opcodes.js';

/** What the generated code calls back into (implemented by the Machine). */
export interface JitRuntime {
  readonly regions: unknown[];
  readonly L: Int32Array;
  readonly H: Int32Array;
  /** Saved r6..r10 per absolute frame depth, and return pcs. */
  readonly FS: Int32Array;
  readonly FR: Int32Array;
  readonly R64: { hi: number };
  mul64(a: number, ah: number, b: number, bh: number): number;
  div64(a: number, ah: number, b: number, bh: number, signed: boolean): number;
  mod64(a: number, ah: number, b: number, bh: number, signed: boolean): number;
  div32(a: number, b: number, signed: boolean): number;
  mod32(a: number, b: number, signed: boolean): number;
  bswap16(x: number): number;
  bswap32(x: number): number;
  gtu(a: number, ah: number, b: number, bh: number): boolean;
  gts(a: number, ah: number, b: number, bh: number): boolean;
  /** Slow-path load (contexts, faults): returns the low word, high word in ldHi. */
  ld(prog: VmProgram, h: number, l: number, off: number, size: number, signed: boolean, pc: number): number;
  ldHi: number;
  st(prog: VmProgram, h: number, l: number, off: number, size: number, lo: number, hi: number, pc: number): void;
  helper(prog: VmProgram, id: number, pc: number): void;
  /** Tail-call target or null (the call falls through). */
  tail(prog: VmProgram, pc: number): VmProgram | null;
  /** Runs a tail-call target in place of the subprogram frame at `depth`; returns its r0. */
  nested(target: VmProgram, depth: number): number;
  atomic(prog: VmProgram, dw: boolean, d: number, s: number, off: number, kind: number, pc: number): void;
  /** Zeroes and attaches the stack of frame `depth`; returns its pointer's high word. */
  frame(depth: number): number;
  fault(prog: VmProgram, pc: number, reason: string): Error;
  budget: number;
  next: VmProgram | null;
}

export interface Compiled {
  /** Runs from pc 0 with registers from rt.L/rt.H; returns r0 (u32), or -1 after a tail call (target in rt.next). */
  readonly fn: (base: number) => number;
  /** Block index of every instruction. */
  readonly blockOf: Int32Array;
  /** Times each block was entered. */
  readonly blocks: Uint32Array;
  /** Per-instruction corrections (faults in the middle of a block). */
  readonly adj: Int32Array;
  /** Generated source, for debugging. */
  readonly source: string;
}

function isJump(code: number): boolean {
  const cls = code & 7;
  return (cls === Cls.JMP || cls === Cls.JMP32) && (code & OP_MASK) !== JmpOp.CALL && (code & OP_MASK) !== JmpOp.EXIT;
}

/**
 * The memory accesses of the generated code: the tagged-region check of memory.ts inline, with
 * the machine's slow path (contexts, faults) behind it. Small functions of the factory's scope,
 * so that a large program's code stays small enough for V8 to optimise (and they get inlined).
 * Loads return the low word; ld8 leaves the high word in rt.ldHi, the narrower ones let the
 * caller derive it (0, or the sign for the signed forms, as rt.ld does).
 */
const MEM_ACCESSORS = (() => {
  const fast = (sz: number, cmp: string) => `const g=regions[h&65535],o=l-${BIAS}+off;if((h&${PTR_TAG})===${PTR_TAG}&&g!==undefined&&o>=0&&o+${sz}<=g.bytes.length&&g.access${cmp})`;
  const ld = (name: string, sz: number, signed: boolean, read: string) => `function ${name}(h,l,off,pc){${fast(sz, '<=1')}{${read}}return rt.ld(P,h,l,off,${sz},${signed},pc);}`;
  const st = (sz: number, write: string) => `function st${sz}(h,l,off,lo,hi,pc){${fast(sz, '===0')}{${write}return;}rt.st(P,h,l,off,${sz},lo,hi,pc);}`;
  return [
    ld('ld8', 8, false, 'rt.ldHi=g.view.getInt32(o+4,true);return g.view.getInt32(o,true);'),
    ld('ld4u', 4, false, 'return g.view.getInt32(o,true);'),
    ld('ld4s', 4, true, 'return g.view.getInt32(o,true);'),
    ld('ld2u', 2, false, 'return g.view.getUint16(o,true);'),
    ld('ld2s', 2, true, 'return g.view.getInt16(o,true);'),
    ld('ld1u', 1, false, 'return g.bytes[o];'),
    ld('ld1s', 1, true, 'return g.view.getInt8(o);'),
    st(8, 'g.view.setInt32(o,lo,true);g.view.setInt32(o+4,hi,true);'),
    st(4, 'g.view.setInt32(o,lo,true);'),
    st(2, 'g.view.setInt16(o,lo,true);'),
    st(1, 'g.bytes[o]=lo;'),
  ].join('\n');
})();

type Factory = (rt: JitRuntime, P: VmProgram, B: Uint32Array, T: Uint32Array) => (base: number) => number;
const FACTORIES = new Map<string, Factory>();

/** Compiles `prog` against a runtime. */
export function compile(prog: VmProgram, rt: JitRuntime): Compiled {
  const { n, op, dst, src, off, imm, imm2 } = prog;
  const leader = new Uint8Array(n + 1);
  leader[0] = 1;
  const jumps: [number, number][] = [];
  const calls = [0];
  // The second slot of an ld_imm64 starts no code: a jump there reaches the switch's default (a fault).
  const half = (t: number) => t > 0 && op[t - 1] === Op.LD_IMM64;
  for (let pc = 0; pc < n; pc++) {
    const code = op[pc] as number;
    if (code === Op.LD_IMM64) {
      pc++;
      continue;
    }
    if (isJump(code)) {
      const delta = code === Op.JA32 ? (imm[pc] as number) : (off[pc] as number);
      leader[pc + 1 + delta] = 1;
      leader[pc + 1] = 1;
      if (!half(pc + 1 + delta)) jumps.push([pc, pc + 1 + delta]);
    } else if (code === Op.EXIT) {
      leader[pc + 1] = 1;
    } else if (code === Op.CALL) {
      if (src[pc] === 1) {
        const target = pc + 1 + (imm[pc] as number);
        leader[target] = 1;
        if (!half(target)) calls.push(target);
        calls.push(pc + 1);
      }
      leader[pc + 1] = 1; // return point, or after a tail call that did not happen
    }
  }
  // Jumps to a short block that ends the program run a copy of it (no case needed for them).
  const dupEnd = new Map<number, number>();
  for (const [, t] of jumps) {
    for (let i = t; i >= 0 && i < n && i < t + 4 && (i === t || !leader[i]); i++) {
      const c = op[i] as number;
      if (c === Op.EXIT) dupEnd.set(t, i);
      if (c === Op.EXIT || isJump(c) || c === Op.CALL || c === Op.LD_IMM64 || c === Op.ATOMIC_W || c === Op.ATOMIC_DW) break;
    }
  }
  const { entry, label, local } = layout(
    n,
    jumps.filter(([, t]) => !dupEnd.has(t)),
    calls,
  );
  const blockOf = new Int32Array(n);
  let nb = -1;
  for (let pc = 0; pc < n; pc++) {
    if (leader[pc]) nb++;
    blockOf[pc] = nb;
  }
  const blocks = new Uint32Array(nb + 1);
  const adj = new Int32Array(n);

  const lines: string[] = [];
  let out = lines;
  const emit = (s: string) => out.push(s);
  const copies = new Map<number, string>();
  const copyOf = (t: number): string => {
    let code = copies.get(t);
    if (code === undefined) {
      const saved = out;
      out = [`B[${blockOf[t]}]++;`];
      for (let pc = t; pc <= (dupEnd.get(t) as number); pc++) gen(pc);
      code = out.join('');
      out = saved;
      copies.set(t, code);
    }
    return code;
  };
  const syncArgs = 'L[1]=l1;H[1]=h1;L[2]=l2;H[2]=h2;L[3]=l3;H[3]=h3;L[4]=l4;H[4]=h4;L[5]=l5;H[5]=h5;';
  const syncAll = Array.from({ length: 11 }, (_, i) => `L[${i}]=l${i};H[${i}]=h${i};`).join('');
  const loadAll = Array.from({ length: 11 }, (_, i) => `l${i}=L[${i}];h${i}=H[${i}];`).join('');
  const exitFrame = 'depth--;{const k=depth*10;l6=FS[k];h6=FS[k+1];l7=FS[k+2];h7=FS[k+3];l8=FS[k+4];h8=FS[k+5];l9=FS[k+6];h9=FS[k+7];l10=FS[k+8];h10=FS[k+9];}pc=FR[depth];continue;';

  const jumpTo = (pc: number, target: number, counted: boolean) => {
    const budget = target <= pc ? `if(--rt.budget<0)throw rt.fault(P,${pc},'branch budget exhausted (runaway loop)');` : '';
    const go = half(target) || !(dupEnd.has(target) || local(pc, target)) ? `pc=${target};continue;` : dupEnd.has(target) ? copyOf(target) : `break L${target};`;
    return `${counted ? `T[${pc}]++;` : ''}${budget}${go}`;
  };

  /** Emits the code of the instruction at pc; returns the pc of its last slot. */
  function gen(pc: number): number {
    const code = op[pc] as number;
    const d = dst[pc] as number,
      s = src[pc] as number;
    const o = off[pc] as number,
      k = imm[pc] as number;
    const kh = k >> 31;
    const lD = `l${d}`,
      hD = `h${d}`,
      lS = `l${s}`,
      hS = `h${s}`;
    const isX = (code & SRC_X) !== 0;
    const bl = isX ? lS : `(${k})`,
      bh = isX ? hS : `(${kh})`;
    switch (code) {
      // ---- ALU64 ----
      case Op.ADD64_K:
      case Op.ADD64_X:
        emit(`{const a=${lD},bl=${bl},bh=${bh};${lD}=(a+bl)|0;${hD}=(${hD}+bh+((${lD}>>>0)<(a>>>0)?1:0))|0;}`);
        break;
      case Op.SUB64_K:
      case Op.SUB64_X:
        emit(`{const a=${lD},bl=${bl},bh=${bh};${lD}=(a-bl)|0;${hD}=(${hD}-bh-((a>>>0)<(bl>>>0)?1:0))|0;}`);
        break;
      case Op.MUL64_K:
      case Op.MUL64_X:
        emit(`{const r=mul64(${lD},${hD},${bl},${bh});${hD}=R64.hi;${lD}=r;}`);
        break;
      case Op.DIV64_K:
      case Op.DIV64_X:
        emit(`{const r=div64(${lD},${hD},${bl},${bh},${o === 1});${hD}=R64.hi;${lD}=r;}`);
        break;
      case Op.MOD64_K:
      case Op.MOD64_X:
        emit(`{const r=mod64(${lD},${hD},${bl},${bh},${o === 1});${hD}=R64.hi;${lD}=r;}`);
        break;
      case Op.OR64_K:
      case Op.OR64_X:
        emit(`${lD}|=${bl};${hD}|=${bh};`);
        break;
      case Op.AND64_K:
      case Op.AND64_X:
        emit(`${lD}&=${bl};${hD}&=${bh};`);
        break;
      case Op.XOR64_K:
      case Op.XOR64_X:
        emit(`${lD}^=${bl};${hD}^=${bh};`);
        break;
      case Op.LSH64_K:
      case Op.LSH64_X:
      case Op.RSH64_K:
      case Op.RSH64_X:
      case Op.ARSH64_K:
      case Op.ARSH64_X: {
        const kind = code & OP_MASK;
        const body = (n: string) =>
          kind === AluOp.LSH
            ? `if(${n}<32){${hD}=(${hD}<<${n})|(${lD}>>>(32-${n}));${lD}=${lD}<<${n};}else{${hD}=${lD}<<(${n}-32);${lD}=0;}`
            : kind === AluOp.RSH
              ? `if(${n}<32){${lD}=(${lD}>>>${n})|(${hD}<<(32-${n}));${hD}=(${hD}>>>${n})|0;}else{${lD}=(${hD}>>>(${n}-32))|0;${hD}=0;}`
              : `if(${n}<32){${lD}=(${lD}>>>${n})|(${hD}<<(32-${n}));${hD}=${hD}>>${n};}else{${lD}=${hD}>>(${n}-32);${hD}=${hD}>>31;}`;
        if (isX) emit(`{const n=${lS}&63;if(n!==0){${body('n')}}}`);
        else if ((k & 63) !== 0) emit(`{${body(String(k & 63))}}`);
        break;
      }
      case Op.NEG64:
        emit(`{const a=${lD};${hD}=(-${hD}-(a!==0?1:0))|0;${lD}=-a|0;}`);
        break;
      case Op.MOV64_K:
        emit(`${lD}=${k};${hD}=${kh};`);
        break;
      case Op.MOV64_X:
        if (o === 0) emit(`${lD}=${lS};${hD}=${hS};`);
        else if (o === 8) emit(`${lD}=(${lS}<<24)>>24;${hD}=${lD}>>31;`);
        else if (o === 16) emit(`${lD}=(${lS}<<16)>>16;${hD}=${lD}>>31;`);
        else emit(`${lD}=${lS};${hD}=${lD}>>31;`);
        break;
      case Op.BSWAP64:
        if (k === 16) emit(`${lD}=bswap16(${lD});${hD}=0;`);
        else if (k === 32) emit(`${lD}=bswap32(${lD});${hD}=0;`);
        else emit(`{const a=${lD};${lD}=bswap32(${hD});${hD}=bswap32(a);}`);
        break;
      // ---- ALU32 ----
      case Op.ADD32_K:
      case Op.ADD32_X:
        emit(`${lD}=(${lD}+${bl})|0;${hD}=0;`);
        break;
      case Op.SUB32_K:
      case Op.SUB32_X:
        emit(`${lD}=(${lD}-${bl})|0;${hD}=0;`);
        break;
      case Op.MUL32_K:
      case Op.MUL32_X:
        emit(`${lD}=Math.imul(${lD},${bl});${hD}=0;`);
        break;
      case Op.DIV32_K:
      case Op.DIV32_X:
        emit(`${lD}=div32(${lD},${bl},${o === 1});${hD}=0;`);
        break;
      case Op.MOD32_K:
      case Op.MOD32_X:
        emit(`${lD}=mod32(${lD},${bl},${o === 1});${hD}=0;`);
        break;
      case Op.OR32_K:
      case Op.OR32_X:
        emit(`${lD}|=${bl};${hD}=0;`);
        break;
      case Op.AND32_K:
      case Op.AND32_X:
        emit(`${lD}&=${bl};${hD}=0;`);
        break;
      case Op.XOR32_K:
      case Op.XOR32_X:
        emit(`${lD}^=${bl};${hD}=0;`);
        break;
      case Op.LSH32_K:
        emit(`${lD}<<=${k & 31};${hD}=0;`);
        break;
      case Op.LSH32_X:
        emit(`${lD}<<=(${lS}&31);${hD}=0;`);
        break;
      case Op.RSH32_K:
        emit(`${lD}=(${lD}>>>${k & 31})|0;${hD}=0;`);
        break;
      case Op.RSH32_X:
        emit(`${lD}=(${lD}>>>(${lS}&31))|0;${hD}=0;`);
        break;
      case Op.ARSH32_K:
        emit(`${lD}>>=${k & 31};${hD}=0;`);
        break;
      case Op.ARSH32_X:
        emit(`${lD}>>=(${lS}&31);${hD}=0;`);
        break;
      case Op.NEG32:
        emit(`${lD}=-${lD}|0;${hD}=0;`);
        break;
      case Op.MOV32_K:
        emit(`${lD}=${k};${hD}=0;`);
        break;
      case Op.MOV32_X:
        if (o === 8) emit(`${lD}=(${lS}<<24)>>24;${hD}=0;`);
        else if (o === 16) emit(`${lD}=(${lS}<<16)>>16;${hD}=0;`);
        else emit(`${lD}=${lS};${hD}=0;`);
        break;
      case Op.TO_LE:
        if (k === 16) emit(`${lD}&=65535;${hD}=0;`);
        else if (k === 32) emit(`${hD}=0;`);
        break;
      case Op.TO_BE:
        if (k === 16) emit(`${lD}=bswap16(${lD});${hD}=0;`);
        else if (k === 32) emit(`${lD}=bswap32(${lD});${hD}=0;`);
        else emit(`{const a=${lD};${lD}=bswap32(${hD});${hD}=bswap32(a);}`);
        break;
      // ---- jumps ----
      case Op.JA:
        emit(jumpTo(pc, pc + 1 + o, false));
        break;
      case Op.JA32:
        emit(jumpTo(pc, pc + 1 + k, false));
        break;
      case Op.CALL: {
        if (s === 1) {
          const target = pc + 1 + k;
          emit(`if(depth+1>=${MAX_CALL_FRAMES})throw rt.fault(P,${pc},'call depth exceeds ${MAX_CALL_FRAMES} frames');`);
          emit(`if(--rt.budget<0)throw rt.fault(P,${pc},'branch budget exhausted (runaway recursion)');`);
          emit(`{const k=depth*10;FS[k]=l6;FS[k+1]=h6;FS[k+2]=l7;FS[k+3]=h7;FS[k+4]=l8;FS[k+5]=h8;FS[k+6]=l9;FS[k+7]=h9;FS[k+8]=l10;FS[k+9]=h10;FR[depth]=${pc + 1};}`);
          emit(`depth++;h10=rt.frame(depth);l10=${BIAS + STACK_SIZE};pc=${target};continue;`);
        } else if (k === HELPER_TAIL_CALL) {
          emit(`${syncArgs}L[10]=l10;H[10]=h10;{const t=rt.tail(P,${pc});if(t!==null){if(depth===base){rt.next=t;return -1;}l0=rt.nested(t,depth)|0;h0=0;${exitFrame}}l0=0;h0=0;}`);
        } else {
          emit(`${syncArgs}rt.helper(P,${k},${pc});l0=L[0];h0=H[0];`);
        }
        break;
      }
      case Op.EXIT:
        // Without bpf-to-bpf calls depth stays at base: every exit returns.
        emit(calls.length > 1 ? `if(depth===base){L[0]=l0;H[0]=h0;return l0>>>0;}${exitFrame}` : 'L[0]=l0;H[0]=h0;return l0>>>0;');
        break;
      case Op.LD_IMM64:
        emit(`${lD}=${imm[pc]};${hD}=${imm2[pc]};`);
        pc++;
        break;
      // ---- loads ----
      case Op.LDXW:
      case Op.LDXH:
      case Op.LDXB:
      case Op.LDXDW:
      case Op.LDXSW:
      case Op.LDXSH:
      case Op.LDXSB: {
        const sz = SIZE_BYTES[code & SIZE_MASK] as number;
        const signed = (code & MODE_MASK) === MODE_MEMSX;
        // Out of line (memAccessors): inlined, the checks made large programs too big for V8 to optimise.
        if (sz === 8) emit(`${lD}=ld8(${hS},${lS},${o},${pc});${hD}=rt.ldHi;`);
        else emit(`${lD}=ld${sz}${signed ? 's' : 'u'}(${hS},${lS},${o},${pc});${hD}=${signed ? `${lD}>>31` : '0'};`);
        break;
      }
      // ---- stores ----
      case Op.STW:
      case Op.STH:
      case Op.STB:
      case Op.STDW:
      case Op.STXW:
      case Op.STXH:
      case Op.STXB:
      case Op.STXDW: {
        const sz = SIZE_BYTES[code & SIZE_MASK] as number;
        const vlo = code & 1 ? lS : `(${k})`,
          vhi = code & 1 ? hS : `(${kh})`;
        emit(`st${sz}(${hD},${lD},${o},${vlo},${vhi},${pc});`);
        break;
      }
      case Op.ATOMIC_W:
      case Op.ATOMIC_DW:
        emit(`${syncAll}rt.atomic(P,${code === Op.ATOMIC_DW},${d},${s},${o},${k},${pc});${loadAll}`);
        break;
      default:
        if (isJump(code)) break; // conditional jumps are emitted below
        if (code === 0 && pc > 0 && op[pc - 1] === Op.LD_IMM64) break;
        emit(`throw rt.fault(P,${pc},'opcode 0x${code.toString(16)} is not executable');`);
        break;
    }
    if (isJump(code) && code !== Op.JA && code !== Op.JA32) {
      const target = pc + 1 + o;
      const a = `${lD}`,
        ah = `${hD}`;
      const cond = jumpCondition(code, a, ah, bl, bh, isX, lS, k);
      emit(`if(${cond}){${jumpTo(pc, target, true)}}`);
    }
    return pc;
  }

  for (let pc = 0; pc < n; pc++) {
    if (entry[pc]) {
      // A case opens the labelled blocks its local jumps break out of, the furthest outermost.
      let open = '';
      for (let t = pc + 1; t < n && !entry[t]; t++) if (label[t]) open = `L${t}:{` + open;
      emit(`case ${pc}:${open}`);
    } else if (label[pc]) emit('}');
    if (leader[pc]) emit(`B[${blockOf[pc]}]++;`);
    pc = gen(pc);
  }

  const regs = Array.from({ length: 11 }, (_, i) => `l${i}=L[${i}],h${i}=H[${i}]`).join(',');
  const source = [
    `"use strict";`,
    `const {regions,L,H,FS,FR,R64,mul64,div64,mod64,div32,mod32,bswap16,bswap32,gtu,gts}=rt;`,
    MEM_ACCESSORS,
    `return function run_${prog.name.replace(/[^A-Za-z0-9_]/g, '_')}(base){`,
    `let ${regs};`,
    `let pc=0,depth=base;`,
    `for(;;){switch(pc){`,
    ...lines,
    // Falling off the last instruction (no verifier would pass it) faults there.
    `throw rt.fault(P,${n - 1},'execution falls off the end of the program');`,
    `default:throw rt.fault(P,pc,'no instruction to run at pc '+pc);`,
    `}}};`,
  ].join('\n');
  let factory = FACTORIES.get(source);
  if (!factory) {
    // One factory per distinct source: machines running the same program share its optimised code.
    factory = new Function('rt', 'P', 'B', 'T', source) as Factory;
    if (FACTORIES.size >= 256) FACTORIES.clear();
    FACTORIES.set(source, factory);
  }
  return { fn: factory(rt, prog, blocks, prog.taken), blockOf, blocks, adj, source };
}
