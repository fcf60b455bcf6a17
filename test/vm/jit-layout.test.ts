// The compiled code's control-flow layout (bpf/vm/jit-layout.ts): forward jumps that cross no
// case become labelled breaks, the others (and backward jumps) go through the dispatch switch; a
// program that jumps into a loop, loops and skips forward computes the same on both engines.

import { describe, expect, it } from 'vitest';
import { aluK, aluX, assemble, exit, jmpK, ldImm64, mov64 } from '../support/asm.js';
import { runRaw } from '../fixtures/vm/helpers.js';
import { layout } from '../../bpf/vm/jit-layout.js';

// r0 = 0; r2 = 3; if a == 1 enter the loop at its second half; loop { r0 += r2; r0 += 100; r2 -= 1 } while r2 != 0; if a != 2, r0 += 1000
const program = (a: number) =>
  assemble('t', [
    ldImm64(1, BigInt(a)), // 0-1
    mov64(0, 0), // 2
    mov64(2, 3), // 3
    jmpK(true, 'jeq', 1, 1, 2), // 4 -> 7, across the loop head
    aluX(true, 'add', 0, 2), // 5: loop head
    aluK(true, 'add', 0, 100), // 6
    aluK(true, 'sub', 2, 1), // 7
    jmpK(true, 'jne', 2, 0, -4), // 8 -> 5
    jmpK(true, 'jeq', 1, 2, 1), // 9 -> 11, local
    aluK(true, 'add', 0, 1000), // 10
    exit(), // 11
  ]);

describe('JIT layout', () => {
  it('a backward target and a target behind it become cases; a jump that crosses none is a labelled break', () => {
    const l = layout(
      12,
      [
        [4, 7],
        [8, 5],
        [9, 11],
      ],
      [0],
    );
    expect([...l.entry.keys()].filter((pc) => l.entry[pc])).toEqual([0, 5, 7]);
    expect([...l.label.keys()].filter((pc) => l.label[pc])).toEqual([11]);
    expect(l.local(9, 11)).toBe(true);
    expect(l.local(4, 7)).toBe(false);
    expect(l.local(8, 5)).toBe(false);
  });

  it('jumping into a loop, looping and skipping forward compute the same on both engines', () => {
    const expected: Record<number, bigint> = { 0: 1306n, 1: 1203n, 2: 306n };
    for (const a of [0, 1, 2]) {
      const prog = program(a);
      for (const engine of ['interp', 'jit'] as const) expect(runRaw(prog, engine).r0).toBe(expected[a]);
    }
  });

  it('falling off the last instruction faults there', () => {
    const prog = assemble('t', [mov64(0, 1), jmpK(true, 'jeq', 0, 1, 1), mov64(0, 7), aluK(true, 'add', 0, 1)]);
    expect(() => runRaw(prog, 'jit')).toThrow(/fault at pc 3 .*falls off the end of the program/);
  });

  it('a jump into the second slot of an ld_imm64 faults in compiled code, forward or backward', () => {
    const forward = assemble('t', [mov64(0, 1), jmpK(true, 'jeq', 0, 1, 1), ldImm64(0, 5n), exit()]);
    expect(() => runRaw(forward, 'jit')).toThrow(/no instruction to run at pc 3/);
    const backward = assemble('t', [ldImm64(0, 5n), jmpK(true, 'jeq', 0, 5, -2), exit()]);
    expect(() => runRaw(backward, 'jit')).toThrow(/no instruction to run at pc 1/);
  });
});
