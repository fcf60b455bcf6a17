// The condition of a conditional jump of the compiled code (jit.ts), on (lo, hi) register pairs:
// JMP compares 64 bits (gtu/gts of the runtime for the orderings), JMP32 the low words.

import { JmpOp, OP_MASK } from './opcodes.js';

/** The JavaScript condition of jump `code`: dst (a, ah) against the source (bl, bh; lS for JMP32 registers) or immediate k. */
export function jumpCondition(code: number, a: string, ah: string, bl: string, bh: string, isX: boolean, lS: string, k: number): string {
  const jop = code & OP_MASK;
  let cond: string;
  if ((code & 7) === 5) {
    switch (jop) {
      case JmpOp.EQ:
        cond = `${a}===${bl}&&${ah}===${bh}`;
        break;
      case JmpOp.NE:
        cond = `${a}!==${bl}||${ah}!==${bh}`;
        break;
      case JmpOp.GT:
        cond = `gtu(${a},${ah},${bl},${bh})`;
        break;
      case JmpOp.GE:
        cond = `!gtu(${bl},${bh},${a},${ah})`;
        break;
      case JmpOp.LT:
        cond = `gtu(${bl},${bh},${a},${ah})`;
        break;
      case JmpOp.LE:
        cond = `!gtu(${a},${ah},${bl},${bh})`;
        break;
      case JmpOp.SGT:
        cond = `gts(${a},${ah},${bl},${bh})`;
        break;
      case JmpOp.SGE:
        cond = `!gts(${bl},${bh},${a},${ah})`;
        break;
      case JmpOp.SLT:
        cond = `gts(${bl},${bh},${a},${ah})`;
        break;
      case JmpOp.SLE:
        cond = `!gts(${a},${ah},${bl},${bh})`;
        break;
      default:
        cond = `((${a}&${bl})|(${ah}&${bh}))!==0`;
        break;
    }
  } else {
    const ua = `(${a}>>>0)`,
      ub = isX ? `(${lS}>>>0)` : String(k >>> 0);
    switch (jop) {
      case JmpOp.EQ:
        cond = `${a}===${bl}`;
        break;
      case JmpOp.NE:
        cond = `${a}!==${bl}`;
        break;
      case JmpOp.GT:
        cond = `${ua}>${ub}`;
        break;
      case JmpOp.GE:
        cond = `${ua}>=${ub}`;
        break;
      case JmpOp.LT:
        cond = `${ua}<${ub}`;
        break;
      case JmpOp.LE:
        cond = `${ua}<=${ub}`;
        break;
      case JmpOp.SGT:
        cond = `${a}>${bl}`;
        break;
      case JmpOp.SGE:
        cond = `${a}>=${bl}`;
        break;
      case JmpOp.SLT:
        cond = `${a}<${bl}`;
        break;
      case JmpOp.SLE:
        cond = `${a}<=${bl}`;
        break;
      default:
        cond = `(${a}&${bl})!==0`;
        break;
    }
  }
  return cond;
}
