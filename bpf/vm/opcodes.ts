// The VM's instruction set, named once (after RFC 9669): every opcode the interpreter
// (interp-loop.ts) and the compiler (jit.ts) accept, the operation fields of the ALU and jump
// classes, and the operand sizes. Both engines switch on these names; `const enum` makes tsc
// write the numbers into the compiled code, so naming costs nothing at run time.

/** Instruction classes (the low three bits of the opcode). */
export const enum Cls {
  LD = 0,
  LDX = 1,
  ST = 2,
  STX = 3,
  ALU = 4,
  JMP = 5,
  JMP32 = 6,
  ALU64 = 7,
}

/** Bit 3 of an ALU or jump opcode: the source is a register (X), not the immediate (K). */
export const SRC_X = 0x08;
/** The operation field of an ALU or jump opcode. */
export const OP_MASK = 0xf0;
/** The size field of a load or store opcode. */
export const SIZE_MASK = 0x18;
/** The mode field of a load or store opcode. */
export const MODE_MASK = 0xe0;

/** The operation field of ALU opcodes (opcode & OP_MASK). */
export const enum AluOp {
  ADD = 0x00,
  SUB = 0x10,
  MUL = 0x20,
  DIV = 0x30,
  OR = 0x40,
  AND = 0x50,
  LSH = 0x60,
  RSH = 0x70,
  NEG = 0x80,
  MOD = 0x90,
  XOR = 0xa0,
  MOV = 0xb0,
  ARSH = 0xc0,
  END = 0xd0,
}

/** The operation field of jump opcodes (opcode & OP_MASK). */
export const enum JmpOp {
  JA = 0x00,
  EQ = 0x10,
  GT = 0x20,
  GE = 0x30,
  SET = 0x40,
  NE = 0x50,
  SGT = 0x60,
  SGE = 0x70,
  CALL = 0x80,
  EXIT = 0x90,
  LT = 0xa0,
  LE = 0xb0,
  SLT = 0xc0,
  SLE = 0xd0,
}

/** The size field of loads and stores (opcode & SIZE_MASK). */
export const enum Size {
  W = 0x00,
  H = 0x08,
  B = 0x10,
  DW = 0x18,
}

/** Bytes of each size. */
export const SIZE_BYTES: Readonly<Record<number, number>> = { [Size.W]: 4, [Size.H]: 2, [Size.B]: 1, [Size.DW]: 8 };

/** The mode of sign-extending loads (LDXS*) and atomics (opcode & MODE_MASK). */
export const MODE_MEMSX = 0x80;
export const MODE_ATOMIC = 0xc0;

/** Every opcode the VM runs. */
export const enum Op {
  // ALU64: 64-bit arithmetic; _K takes the immediate, _X the source register.
  ADD64_K = 0x07,
  ADD64_X = 0x0f,
  SUB64_K = 0x17,
  SUB64_X = 0x1f,
  MUL64_K = 0x27,
  MUL64_X = 0x2f,
  DIV64_K = 0x37,
  DIV64_X = 0x3f,
  OR64_K = 0x47,
  OR64_X = 0x4f,
  AND64_K = 0x57,
  AND64_X = 0x5f,
  LSH64_K = 0x67,
  LSH64_X = 0x6f,
  RSH64_K = 0x77,
  RSH64_X = 0x7f,
  MOD64_K = 0x97,
  MOD64_X = 0x9f,
  XOR64_K = 0xa7,
  XOR64_X = 0xaf,
  MOV64_K = 0xb7,
  MOV64_X = 0xbf,
  ARSH64_K = 0xc7,
  ARSH64_X = 0xcf,
  NEG64 = 0x87,
  /** bswap16/32/64 by imm (ISA v4) */
  BSWAP64 = 0xd7,
  // ALU32: 32-bit arithmetic, the upper half of dst cleared.
  ADD32_K = 0x04,
  ADD32_X = 0x0c,
  SUB32_K = 0x14,
  SUB32_X = 0x1c,
  MUL32_K = 0x24,
  MUL32_X = 0x2c,
  DIV32_K = 0x34,
  DIV32_X = 0x3c,
  OR32_K = 0x44,
  OR32_X = 0x4c,
  AND32_K = 0x54,
  AND32_X = 0x5c,
  LSH32_K = 0x64,
  LSH32_X = 0x6c,
  RSH32_K = 0x74,
  RSH32_X = 0x7c,
  MOD32_K = 0x94,
  MOD32_X = 0x9c,
  XOR32_K = 0xa4,
  XOR32_X = 0xac,
  MOV32_K = 0xb4,
  MOV32_X = 0xbc,
  ARSH32_K = 0xc4,
  ARSH32_X = 0xcc,
  NEG32 = 0x84,
  /** to little endian (imm 16/32/64) */
  TO_LE = 0xd4,
  /** to big endian (imm 16/32/64) */
  TO_BE = 0xdc,
  // JMP: 64-bit compares, calls and exit.
  /** goto +off */
  JA = 0x05,
  JEQ_K = 0x15,
  JEQ_X = 0x1d,
  JGT_K = 0x25,
  JGT_X = 0x2d,
  JGE_K = 0x35,
  JGE_X = 0x3d,
  JSET_K = 0x45,
  JSET_X = 0x4d,
  JNE_K = 0x55,
  JNE_X = 0x5d,
  JSGT_K = 0x65,
  JSGT_X = 0x6d,
  JSGE_K = 0x75,
  JSGE_X = 0x7d,
  JLT_K = 0xa5,
  JLT_X = 0xad,
  JLE_K = 0xb5,
  JLE_X = 0xbd,
  JSLT_K = 0xc5,
  JSLT_X = 0xcd,
  JSLE_K = 0xd5,
  JSLE_X = 0xdd,
  /** helper (src 0) or bpf-to-bpf call (src 1) */
  CALL = 0x85,
  EXIT = 0x95,
  // JMP32: 32-bit compares.
  /** gotol +imm (ISA v4) */
  JA32 = 0x06,
  JEQ32_K = 0x16,
  JEQ32_X = 0x1e,
  JGT32_K = 0x26,
  JGT32_X = 0x2e,
  JGE32_K = 0x36,
  JGE32_X = 0x3e,
  JSET32_K = 0x46,
  JSET32_X = 0x4e,
  JNE32_K = 0x56,
  JNE32_X = 0x5e,
  JSGT32_K = 0x66,
  JSGT32_X = 0x6e,
  JSGE32_K = 0x76,
  JSGE32_X = 0x7e,
  JLT32_K = 0xa6,
  JLT32_X = 0xae,
  JLE32_K = 0xb6,
  JLE32_X = 0xbe,
  JSLT32_K = 0xc6,
  JSLT32_X = 0xce,
  JSLE32_K = 0xd6,
  JSLE32_X = 0xde,
  // Loads and stores.
  /** two slots: imm is the low word, the next slot's imm the high word */
  LD_IMM64 = 0x18,
  LDXW = 0x61,
  LDXH = 0x69,
  LDXB = 0x71,
  LDXDW = 0x79,
  LDXSW = 0x81,
  LDXSH = 0x89,
  LDXSB = 0x91,
  STW = 0x62,
  STH = 0x6a,
  STB = 0x72,
  STDW = 0x7a,
  STXW = 0x63,
  STXH = 0x6b,
  STXB = 0x73,
  STXDW = 0x7b,
  ATOMIC_W = 0xc3,
  ATOMIC_DW = 0xdb,
}

/** The opcodes the VM accepts (bindProgram rejects every other byte). */
export const OPCODES: readonly number[] = [
  Op.ADD64_K, Op.ADD64_X, Op.SUB64_K, Op.SUB64_X, Op.MUL64_K, Op.MUL64_X,
  Op.DIV64_K, Op.DIV64_X, Op.OR64_K, Op.OR64_X, Op.AND64_K, Op.AND64_X,
  Op.LSH64_K, Op.LSH64_X, Op.RSH64_K, Op.RSH64_X, Op.MOD64_K, Op.MOD64_X,
  Op.XOR64_K, Op.XOR64_X, Op.MOV64_K, Op.MOV64_X, Op.ARSH64_K, Op.ARSH64_X,
  Op.NEG64, Op.BSWAP64, Op.ADD32_K, Op.ADD32_X, Op.SUB32_K, Op.SUB32_X,
  Op.MUL32_K, Op.MUL32_X, Op.DIV32_K, Op.DIV32_X, Op.OR32_K, Op.OR32_X,
  Op.AND32_K, Op.AND32_X, Op.LSH32_K, Op.LSH32_X, Op.RSH32_K, Op.RSH32_X,
  Op.MOD32_K, Op.MOD32_X, Op.XOR32_K, Op.XOR32_X, Op.MOV32_K, Op.MOV32_X,
  Op.ARSH32_K, Op.ARSH32_X, Op.NEG32, Op.TO_LE, Op.TO_BE, Op.JA,
  Op.JEQ_K, Op.JEQ_X, Op.JGT_K, Op.JGT_X, Op.JGE_K, Op.JGE_X,
  Op.JSET_K, Op.JSET_X, Op.JNE_K, Op.JNE_X, Op.JSGT_K, Op.JSGT_X,
  Op.JSGE_K, Op.JSGE_X, Op.JLT_K, Op.JLT_X, Op.JLE_K, Op.JLE_X,
  Op.JSLT_K, Op.JSLT_X, Op.JSLE_K, Op.JSLE_X, Op.CALL, Op.EXIT,
  Op.JA32, Op.JEQ32_K, Op.JEQ32_X, Op.JGT32_K, Op.JGT32_X, Op.JGE32_K,
  Op.JGE32_X, Op.JSET32_K, Op.JSET32_X, Op.JNE32_K, Op.JNE32_X, Op.JSGT32_K,
  Op.JSGT32_X, Op.JSGE32_K, Op.JSGE32_X, Op.JLT32_K, Op.JLT32_X, Op.JLE32_K,
  Op.JLE32_X, Op.JSLT32_K, Op.JSLT32_X, Op.JSLE32_K, Op.JSLE32_X, Op.LD_IMM64,
  Op.LDXW, Op.LDXH, Op.LDXB, Op.LDXDW, Op.LDXSW, Op.LDXSH,
  Op.LDXSB, Op.STW, Op.STH, Op.STB, Op.STDW, Op.STXW,
  Op.STXH, Op.STXB, Op.STXDW, Op.ATOMIC_W, Op.ATOMIC_DW,
];

/** The operation in the imm of an atomic instruction; FETCH (bit 0) returns the old value. */
export const enum AtomicOp {
  ADD = 0x00,
  OR = 0x40,
  AND = 0x50,
  XOR = 0xa0,
  XCHG = 0xe1,
  CMPXCHG = 0xf1,
  FETCH = 0x01,
}
