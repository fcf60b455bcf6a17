// The reference interpreter: runs a bound program instruction by instruction on a Machine,
// ISA v1-v4 (ALU64/ALU32 incl. sdiv/smod/movsx, JMP/JMP32, loads and stores incl.
// sign-extending loads, byte swaps, atomics, ld_imm64, bpf-to-bpf calls, tail calls, exit).
// The compiler (jit.ts) must match it exactly: the tests run both engines and compare.

import { R64, mul64, div64, mod64, div32, mod32, bswap16, bswap32, gtu, gts } from './arith.js';
import type { Machine } from './machine.js';
import { MemoryFault, type Region } from './memory.js';
import { JmpOp, OP_MASK, Op, SRC_X } from './opcodes.js';
import { BRANCH_BUDGET, HELPER_TAIL_CALL, MAX_CALL_FRAMES, STACK_POISON, STACK_SIZE, type VmProgram } from './program.js';

export function interpret(m: Machine, entry: VmProgram, ctx: Region): number {
  const L = m.L,
    H = m.H;
  L.fill(0);
  H.fill(0);
  m.setPointer(1, ctx, 0);
  m.stacks[0]?.bytes.fill(STACK_POISON);
  m.setPointer(10, m.stacks[0] as Region, STACK_SIZE);
  m.tailCalls = 0;
  m.pendingCtx = null;
  let prog = entry;
  let pc = 0;
  let depth = 0;
  let budget = BRANCH_BUDGET;
  let op = prog.op,
    dst = prog.dst,
    src = prog.src,
    offs = prog.off,
    imms = prog.imm,
    hits = prog.hits,
    taken = prog.taken;
  m.current = prog;
  try {
    for (;;) {
      hits[pc] = (hits[pc] as number) + 1;
      const code = op[pc] as number;
      const d = dst[pc] as number;
      // The opcode switch keeps one compact case per instruction group, like an opcode table.
      // prettier-ignore
      switch (code) {
        // ---- ALU64 ------------------------------------------------------------------------
        case Op.ADD64_K: case Op.ADD64_X: {
          const blo = code === Op.ADD64_K ? (imms[pc] as number) : (L[src[pc] as number] as number);
          const bhi = code === Op.ADD64_K ? blo >> 31 : (H[src[pc] as number] as number);
          const a = L[d] as number;
          const r = (a + blo) | 0;
          H[d] = ((H[d] as number) + bhi + ((r >>> 0) < (a >>> 0) ? 1 : 0)) | 0;
          L[d] = r;
          break;
        }
        case Op.SUB64_K: case Op.SUB64_X: {
          const blo = code === Op.SUB64_K ? (imms[pc] as number) : (L[src[pc] as number] as number);
          const bhi = code === Op.SUB64_K ? blo >> 31 : (H[src[pc] as number] as number);
          const a = L[d] as number;
          H[d] = ((H[d] as number) - bhi - ((a >>> 0) < (blo >>> 0) ? 1 : 0)) | 0;
          L[d] = (a - blo) | 0;
          break;
        }
        case Op.MUL64_K: case Op.MUL64_X: {
          const blo = code === Op.MUL64_K ? (imms[pc] as number) : (L[src[pc] as number] as number);
          const bhi = code === Op.MUL64_K ? blo >> 31 : (H[src[pc] as number] as number);
          L[d] = mul64(L[d] as number, H[d] as number, blo, bhi); H[d] = R64.hi;
          break;
        }
        case Op.DIV64_K: case Op.DIV64_X: {
          const blo = code === Op.DIV64_K ? (imms[pc] as number) : (L[src[pc] as number] as number);
          const bhi = code === Op.DIV64_K ? blo >> 31 : (H[src[pc] as number] as number);
          L[d] = div64(L[d] as number, H[d] as number, blo, bhi, offs[pc] === 1); H[d] = R64.hi;
          break;
        }
        case Op.MOD64_K: case Op.MOD64_X: {
          const blo = code === Op.MOD64_K ? (imms[pc] as number) : (L[src[pc] as number] as number);
          const bhi = code === Op.MOD64_K ? blo >> 31 : (H[src[pc] as number] as number);
          L[d] = mod64(L[d] as number, H[d] as number, blo, bhi, offs[pc] === 1); H[d] = R64.hi;
          break;
        }
        case Op.OR64_K: { const k = imms[pc] as number; L[d] = (L[d] as number) | k; H[d] = (H[d] as number) | (k >> 31); break; }
        case Op.OR64_X: { const s = src[pc] as number; L[d] = (L[d] as number) | (L[s] as number); H[d] = (H[d] as number) | (H[s] as number); break; }
        case Op.AND64_K: { const k = imms[pc] as number; L[d] = (L[d] as number) & k; H[d] = (H[d] as number) & (k >> 31); break; }
        case Op.AND64_X: { const s = src[pc] as number; L[d] = (L[d] as number) & (L[s] as number); H[d] = (H[d] as number) & (H[s] as number); break; }
        case Op.XOR64_K: { const k = imms[pc] as number; L[d] = (L[d] as number) ^ k; H[d] = (H[d] as number) ^ (k >> 31); break; }
        case Op.XOR64_X: { const s = src[pc] as number; L[d] = (L[d] as number) ^ (L[s] as number); H[d] = (H[d] as number) ^ (H[s] as number); break; }
        case Op.LSH64_K: case Op.LSH64_X: {
          const n = (code === Op.LSH64_K ? (imms[pc] as number) : (L[src[pc] as number] as number)) & 63;
          if (n === 0) break;
          const lo = L[d] as number;
          if (n < 32) { H[d] = ((H[d] as number) << n) | (lo >>> (32 - n)); L[d] = lo << n; } else { H[d] = lo << (n - 32); L[d] = 0; }
          break;
        }
        case Op.RSH64_K: case Op.RSH64_X: {
          const n = (code === Op.RSH64_K ? (imms[pc] as number) : (L[src[pc] as number] as number)) & 63;
          if (n === 0) break;
          const hi = H[d] as number;
          if (n < 32) { L[d] = ((L[d] as number) >>> n) | (hi << (32 - n)); H[d] = hi >>> n; } else { L[d] = hi >>> (n - 32); H[d] = 0; }
          break;
        }
        case Op.ARSH64_K: case Op.ARSH64_X: {
          const n = (code === Op.ARSH64_K ? (imms[pc] as number) : (L[src[pc] as number] as number)) & 63;
          if (n === 0) break;
          const hi = H[d] as number;
          if (n < 32) { L[d] = ((L[d] as number) >>> n) | (hi << (32 - n)); H[d] = hi >> n; } else { L[d] = hi >> (n - 32); H[d] = hi >> 31; }
          break;
        }
        case Op.NEG64: {
          const lo = L[d] as number;
          H[d] = (-(H[d] as number) - (lo !== 0 ? 1 : 0)) | 0;
          L[d] = -lo | 0;
          break;
        }
        case Op.MOV64_K: { const k = imms[pc] as number; L[d] = k; H[d] = k >> 31; break; }
        case Op.MOV64_X: {
          const s = src[pc] as number;
          const o = offs[pc] as number;
          if (o === 0) { L[d] = L[s] as number; H[d] = H[s] as number; break; }
          const v = L[s] as number;
          const r = o === 8 ? (v << 24) >> 24 : o === 16 ? (v << 16) >> 16 : v;
          L[d] = r; H[d] = r >> 31;
          break;
        }
        case Op.BSWAP64: {
          const w = imms[pc] as number;
          const lo = L[d] as number;
          if (w === 16) { L[d] = bswap16(lo); H[d] = 0; } else if (w === 32) { L[d] = bswap32(lo); H[d] = 0; } else { L[d] = bswap32(H[d] as number); H[d] = bswap32(lo); }
          break;
        }
        // ---- ALU32 ------------------------------------------------------------------------
        case Op.ADD32_K: L[d] = ((L[d] as number) + (imms[pc] as number)) | 0; H[d] = 0; break;
        case Op.ADD32_X: L[d] = ((L[d] as number) + (L[src[pc] as number] as number)) | 0; H[d] = 0; break;
        case Op.SUB32_K: L[d] = ((L[d] as number) - (imms[pc] as number)) | 0; H[d] = 0; break;
        case Op.SUB32_X: L[d] = ((L[d] as number) - (L[src[pc] as number] as number)) | 0; H[d] = 0; break;
        case Op.MUL32_K: L[d] = Math.imul(L[d] as number, imms[pc] as number); H[d] = 0; break;
        case Op.MUL32_X: L[d] = Math.imul(L[d] as number, L[src[pc] as number] as number); H[d] = 0; break;
        case Op.DIV32_K: L[d] = div32(L[d] as number, imms[pc] as number, offs[pc] === 1); H[d] = 0; break;
        case Op.DIV32_X: L[d] = div32(L[d] as number, L[src[pc] as number] as number, offs[pc] === 1); H[d] = 0; break;
        case Op.MOD32_K: L[d] = mod32(L[d] as number, imms[pc] as number, offs[pc] === 1); H[d] = 0; break;
        case Op.MOD32_X: L[d] = mod32(L[d] as number, L[src[pc] as number] as number, offs[pc] === 1); H[d] = 0; break;
        case Op.OR32_K: L[d] = (L[d] as number) | (imms[pc] as number); H[d] = 0; break;
        case Op.OR32_X: L[d] = (L[d] as number) | (L[src[pc] as number] as number); H[d] = 0; break;
        case Op.AND32_K: L[d] = (L[d] as number) & (imms[pc] as number); H[d] = 0; break;
        case Op.AND32_X: L[d] = (L[d] as number) & (L[src[pc] as number] as number); H[d] = 0; break;
        case Op.XOR32_K: L[d] = (L[d] as number) ^ (imms[pc] as number); H[d] = 0; break;
        case Op.XOR32_X: L[d] = (L[d] as number) ^ (L[src[pc] as number] as number); H[d] = 0; break;
        case Op.LSH32_K: L[d] = (L[d] as number) << ((imms[pc] as number) & 31); H[d] = 0; break;
        case Op.LSH32_X: L[d] = (L[d] as number) << ((L[src[pc] as number] as number) & 31); H[d] = 0; break;
        case Op.RSH32_K: L[d] = (L[d] as number) >>> ((imms[pc] as number) & 31) | 0; H[d] = 0; break;
        case Op.RSH32_X: L[d] = (L[d] as number) >>> ((L[src[pc] as number] as number) & 31) | 0; H[d] = 0; break;
        case Op.ARSH32_K: L[d] = (L[d] as number) >> ((imms[pc] as number) & 31); H[d] = 0; break;
        case Op.ARSH32_X: L[d] = (L[d] as number) >> ((L[src[pc] as number] as number) & 31); H[d] = 0; break;
        case Op.NEG32: L[d] = -(L[d] as number) | 0; H[d] = 0; break;
        case Op.MOV32_K: L[d] = imms[pc] as number; H[d] = 0; break;
        case Op.MOV32_X: {
          const v = L[src[pc] as number] as number;
          const o = offs[pc] as number;
          L[d] = o === 8 ? (v << 24) >> 24 : o === 16 ? (v << 16) >> 16 : v;
          H[d] = 0;
          break;
        }
        case Op.TO_LE: { // to little endian = truncate on this little-endian machine
          const w = imms[pc] as number;
          if (w === 16) { L[d] = (L[d] as number) & 0xffff; H[d] = 0; } else if (w === 32) { H[d] = 0; }
          break;
        }
        case Op.TO_BE: { // to big endian
          const w = imms[pc] as number;
          const lo = L[d] as number;
          if (w === 16) { L[d] = bswap16(lo); H[d] = 0; } else if (w === 32) { L[d] = bswap32(lo); H[d] = 0; } else { L[d] = bswap32(H[d] as number); H[d] = bswap32(lo); }
          break;
        }
        // ---- JMP --------------------------------------------------------------------------
        case Op.JA: { const o = offs[pc] as number; if (o < 0 && --budget < 0) throw new MemoryFault('branch budget exhausted (runaway loop)'); pc += o; break; }
        case Op.JA32: { const o = imms[pc] as number; if (o < 0 && --budget < 0) throw new MemoryFault('branch budget exhausted (runaway loop)'); pc += o; break; }
        case Op.JEQ_K: case Op.JEQ_X: case Op.JGT_K: case Op.JGT_X: case Op.JGE_K: case Op.JGE_X: case Op.JSET_K: case Op.JSET_X:
        case Op.JNE_K: case Op.JNE_X: case Op.JSGT_K: case Op.JSGT_X: case Op.JSGE_K: case Op.JSGE_X: case Op.JLT_K: case Op.JLT_X:
        case Op.JLE_K: case Op.JLE_X: case Op.JSLT_K: case Op.JSLT_X: case Op.JSLE_K: case Op.JSLE_X: {
          const alo = L[d] as number, ahi = H[d] as number;
          let blo: number, bhi: number;
          if (code & SRC_X) { const s = src[pc] as number; blo = L[s] as number; bhi = H[s] as number; } else { blo = imms[pc] as number; bhi = blo >> 31; }
          let c: boolean;
          switch (code & OP_MASK) {
            case JmpOp.EQ: c = alo === blo && ahi === bhi; break;
            case JmpOp.NE: c = alo !== blo || ahi !== bhi; break;
            case JmpOp.GT: c = gtu(alo, ahi, blo, bhi); break;
            case JmpOp.GE: c = !gtu(blo, bhi, alo, ahi); break;
            case JmpOp.LT: c = gtu(blo, bhi, alo, ahi); break;
            case JmpOp.LE: c = !gtu(alo, ahi, blo, bhi); break;
            case JmpOp.SGT: c = gts(alo, ahi, blo, bhi); break;
            case JmpOp.SGE: c = !gts(blo, bhi, alo, ahi); break;
            case JmpOp.SLT: c = gts(blo, bhi, alo, ahi); break;
            case JmpOp.SLE: c = !gts(alo, ahi, blo, bhi); break;
            default: c = ((alo & blo) | (ahi & bhi)) !== 0; break; // JmpOp.SET
          }
          if (c) {
            taken[pc] = (taken[pc] as number) + 1;
            const o = offs[pc] as number;
            if (o < 0 && --budget < 0) throw new MemoryFault('branch budget exhausted (runaway loop)');
            pc += o;
          }
          break;
        }
        case Op.JEQ32_K: case Op.JEQ32_X: case Op.JGT32_K: case Op.JGT32_X: case Op.JGE32_K: case Op.JGE32_X: case Op.JSET32_K: case Op.JSET32_X:
        case Op.JNE32_K: case Op.JNE32_X: case Op.JSGT32_K: case Op.JSGT32_X: case Op.JSGE32_K: case Op.JSGE32_X: case Op.JLT32_K: case Op.JLT32_X:
        case Op.JLE32_K: case Op.JLE32_X: case Op.JSLT32_K: case Op.JSLT32_X: case Op.JSLE32_K: case Op.JSLE32_X: {
          const a = L[d] as number;
          const b = code & SRC_X ? (L[src[pc] as number] as number) : (imms[pc] as number);
          let c: boolean;
          switch (code & OP_MASK) {
            case JmpOp.EQ: c = a === b; break;
            case JmpOp.NE: c = a !== b; break;
            case JmpOp.GT: c = (a >>> 0) > (b >>> 0); break;
            case JmpOp.GE: c = (a >>> 0) >= (b >>> 0); break;
            case JmpOp.LT: c = (a >>> 0) < (b >>> 0); break;
            case JmpOp.LE: c = (a >>> 0) <= (b >>> 0); break;
            case JmpOp.SGT: c = a > b; break;
            case JmpOp.SGE: c = a >= b; break;
            case JmpOp.SLT: c = a < b; break;
            case JmpOp.SLE: c = a <= b; break;
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
        case Op.CALL: {
          const s = src[pc] as number;
          if (s === 1) {
            if (depth + 1 >= MAX_CALL_FRAMES) throw new MemoryFault(`call depth exceeds ${MAX_CALL_FRAMES} frames`);
            if (--budget < 0) throw new MemoryFault('branch budget exhausted (runaway recursion)');
            const base = depth * 10;
            const fs = m.frameSaved;
            for (let i = 0; i < 5; i++) { fs[base + 2 * i] = L[6 + i] as number; fs[base + 2 * i + 1] = H[6 + i] as number; }
            m.frameProg[depth] = prog;
            m.frameRet[depth] = pc + 1;
            depth++;
            const stack = m.stacks[depth] as Region;
            stack.bytes.fill(STACK_POISON);
            m.setPointer(10, stack, STACK_SIZE);
            pc += imms[pc] as number;
            break;
          }
          const id = imms[pc] as number;
          if (id === HELPER_TAIL_CALL) {
            const target = m.tailCallTarget();
            if (target !== null) {
              prog = target;
              m.current = prog;
              op = prog.op; dst = prog.dst; src = prog.src; offs = prog.off; imms = prog.imm; hits = prog.hits; taken = prog.taken;
              pc = 0;
              continue;
            }
            L[0] = 0; H[0] = 0; // a tail call that does not happen falls through
            break;
          }
          const h = m.helpers[id];
          if (h === undefined) throw new MemoryFault(`helper ${id} is not supported by the VM`);
          h(m);
          break;
        }
        case Op.EXIT: {
          if (depth === 0) return (L[0] as number) >>> 0;
          depth--;
          const base = depth * 10;
          const fs = m.frameSaved;
          for (let i = 0; i < 5; i++) { L[6 + i] = fs[base + 2 * i] as number; H[6 + i] = fs[base + 2 * i + 1] as number; }
          prog = m.frameProg[depth] as VmProgram;
          m.current = prog;
          op = prog.op; dst = prog.dst; src = prog.src; offs = prog.off; imms = prog.imm; hits = prog.hits; taken = prog.taken;
          pc = (m.frameRet[depth] as number) - 1;
          break;
        }
        // ---- ld_imm64 ---------------------------------------------------------------------
        case Op.LD_IMM64: L[d] = imms[pc] as number; H[d] = prog.imm2[pc] as number; pc++; break;
        // ---- loads ------------------------------------------------------------------------
        case Op.LDXW: { const v = m.rloc(src[pc] as number, offs[pc] as number, 4); L[d] = v.getInt32(m.ao, true); H[d] = 0; break; }
        case Op.LDXH: { const v = m.rloc(src[pc] as number, offs[pc] as number, 2); L[d] = v.getUint16(m.ao, true); H[d] = 0; break; }
        case Op.LDXB: { const v = m.rloc(src[pc] as number, offs[pc] as number, 1); L[d] = v.getUint8(m.ao); H[d] = 0; break; }
        case Op.LDXDW: { const v = m.rloc(src[pc] as number, offs[pc] as number, 8); const o = m.ao; L[d] = v.getInt32(o, true); H[d] = v.getInt32(o + 4, true); break; }
        case Op.LDXSW: { const v = m.rloc(src[pc] as number, offs[pc] as number, 4); const x = v.getInt32(m.ao, true); L[d] = x; H[d] = x >> 31; break; }
        case Op.LDXSH: { const v = m.rloc(src[pc] as number, offs[pc] as number, 2); const x = v.getInt16(m.ao, true); L[d] = x; H[d] = x >> 31; break; }
        case Op.LDXSB: { const v = m.rloc(src[pc] as number, offs[pc] as number, 1); const x = v.getInt8(m.ao); L[d] = x; H[d] = x >> 31; break; }
        // ---- stores -----------------------------------------------------------------------
        case Op.STW: case Op.STXW: {
          const v = m.wloc(d, offs[pc] as number, 4);
          v.setInt32(m.ao, code === Op.STW ? (imms[pc] as number) : (L[src[pc] as number] as number), true);
          if (m.pendingCtx !== null) m.commitCtx();
          break;
        }
        case Op.STH: case Op.STXH: {
          const v = m.wloc(d, offs[pc] as number, 2);
          v.setInt16(m.ao, code === Op.STH ? (imms[pc] as number) : (L[src[pc] as number] as number), true);
          if (m.pendingCtx !== null) m.commitCtx();
          break;
        }
        case Op.STB: case Op.STXB: {
          const v = m.wloc(d, offs[pc] as number, 1);
          v.setInt8(m.ao, code === Op.STB ? (imms[pc] as number) : (L[src[pc] as number] as number));
          if (m.pendingCtx !== null) m.commitCtx();
          break;
        }
        case Op.STDW: case Op.STXDW: {
          const v = m.wloc(d, offs[pc] as number, 8);
          const o = m.ao;
          if (code === Op.STDW) { const k = imms[pc] as number; v.setInt32(o, k, true); v.setInt32(o + 4, k >> 31, true); } else {
            const s = src[pc] as number;
            v.setInt32(o, L[s] as number, true); v.setInt32(o + 4, H[s] as number, true);
          }
          if (m.pendingCtx !== null) m.commitCtx();
          break;
        }
        case Op.ATOMIC_W: case Op.ATOMIC_DW:
          m.atomic(code === Op.ATOMIC_DW, d, src[pc] as number, offs[pc] as number, imms[pc] as number);
          break;
        default:
          throw new MemoryFault(`opcode 0x${code.toString(16)} is not executable`);
      }
      pc++;
    }
  } catch (e) {
    if (e instanceof MemoryFault) throw m.fault(prog, pc, e.message);
    throw e;
  }
}
