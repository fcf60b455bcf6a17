// 64-bit arithmetic on (lo, hi) int32 pairs, shared by the interpreter and the compiler.
// Functions return the low word and leave the high word in R64.hi. BigInt is used only when an
// operand of a division does not fit in 32 bits.

export const R64 = { hi: 0 };

export function mul64(alo: number, ahi: number, blo: number, bhi: number): number {
  const a0 = alo & 0xffff,
    a1 = alo >>> 16,
    b0 = blo & 0xffff,
    b1 = blo >>> 16;
  const p00 = a0 * b0,
    p01 = a0 * b1,
    p10 = a1 * b0,
    p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const high = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  R64.hi = (high + Math.imul(alo, bhi) + Math.imul(ahi, blo)) | 0;
  return ((mid & 0xffff) << 16) | (p00 & 0xffff);
}

function toU64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
function toS64(lo: number, hi: number): bigint {
  return BigInt.asIntN(64, toU64(lo, hi));
}
function fromBig(v: bigint): number {
  const u = BigInt.asUintN(64, v);
  R64.hi = Number(u >> 32n) | 0;
  return Number(u & 0xffffffffn) | 0;
}

/** dst / src (ALU64), unsigned or signed (sdiv, off == 1); division by zero gives 0. */
export function div64(alo: number, ahi: number, blo: number, bhi: number, signed: boolean): number {
  if (blo === 0 && bhi === 0) {
    R64.hi = 0;
    return 0;
  }
  if (!signed) {
    if (ahi === 0 && bhi === 0) {
      R64.hi = 0;
      return Math.floor((alo >>> 0) / (blo >>> 0)) | 0;
    }
    return fromBig(toU64(alo, ahi) / toU64(blo, bhi));
  }
  if (ahi === alo >> 31 && bhi === blo >> 31) {
    const q = Math.trunc(alo / blo); // |q| <= 2^31: exact; 2^31 (INT32_MIN / -1) stays positive in 64 bits
    R64.hi = q < 0 ? -1 : 0;
    return q | 0;
  }
  return fromBig(toS64(alo, ahi) / toS64(blo, bhi)); // BigInt division truncates like the kernel's
}

/** dst % src (ALU64), unsigned or signed (smod); modulo by zero leaves dst unchanged. */
export function mod64(alo: number, ahi: number, blo: number, bhi: number, signed: boolean): number {
  if (blo === 0 && bhi === 0) {
    R64.hi = ahi;
    return alo;
  }
  if (!signed) {
    if (ahi === 0 && bhi === 0) {
      R64.hi = 0;
      return ((alo >>> 0) % (blo >>> 0)) | 0;
    }
    return fromBig(toU64(alo, ahi) % toU64(blo, bhi));
  }
  if (ahi === alo >> 31 && bhi === blo >> 31) {
    const r = (alo % blo) | 0; // sign of the dividend, like C
    R64.hi = r < 0 ? -1 : 0;
    return r;
  }
  return fromBig(toS64(alo, ahi) % toS64(blo, bhi));
}

/** ALU32 division: unsigned or signed; by zero gives 0. */
export function div32(a: number, b: number, signed: boolean): number {
  if (b === 0) return 0;
  return signed ? Math.trunc(a / b) | 0 : Math.floor((a >>> 0) / (b >>> 0)) | 0;
}

/** ALU32 modulo: unsigned or signed; by zero leaves dst (zero-extended). */
export function mod32(a: number, b: number, signed: boolean): number {
  if (b === 0) return a;
  return signed ? (a % b) | 0 : ((a >>> 0) % (b >>> 0)) | 0;
}

export function bswap16(x: number): number {
  return ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
}

export function bswap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

/** Unsigned a > b on pairs. */
export function gtu(alo: number, ahi: number, blo: number, bhi: number): boolean {
  return ahi === bhi ? alo >>> 0 > blo >>> 0 : ahi >>> 0 > bhi >>> 0;
}

/** Signed a > b on pairs. */
export function gts(alo: number, ahi: number, blo: number, bhi: number): boolean {
  return ahi === bhi ? alo >>> 0 > blo >>> 0 : ahi > bhi;
}
