// Faults name the program, the pc, the function and the source line; both engines report the
// same fault and leave the same coverage counts behind.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Vm } from '../../bpf/vm/vm.js';
import { VmFault } from '../../bpf/vm/program.js';
import { instructionHits } from '../../bpf/vm/coverage.js';
import { aluK, assemble, call, exit, ja, ldx, mov64, movReg, st } from '../support/asm.js';
import { SockAddrCtx, VmSock } from '../../bpf/vm/context.js';
import type { Memory } from '../../bpf/vm/memory.js';
import { fixtureObject, runRaw, FIXTURES } from '../fixtures/vm/helpers.js';

const source = readFileSync(`${FIXTURES}/faults.c`, 'utf8').split('\n');
const lineOf = (marker: string) => source.findIndex((l) => l.includes(`FAULT: ${marker}`)) + 1;

function faultIn(engine: 'jit' | 'interp', program: string): { fault: VmFault; vm: Vm } {
  const vm = new Vm();
  vm.machine.engine = engine;
  vm.load(fixtureObject('faults', 'v3'));
  try {
    vm.runConnect(vm.program(program), new VmSock(1, 'inet', 'tcp', 1), { addr: '10.0.0.1', port: 80 });
  } catch (e) {
    if (e instanceof VmFault) return { fault: e, vm };
    throw e;
  }
  throw new Error(`${program} did not fault`);
}

describe.each(['interp', 'jit'] as const)('faults (%s)', (engine) => {
  it.each([
    ['oob_prog', /read of 1 bytes at offset 80 of map arr\[0\] \(8 bytes\) is out of bounds/],
    ['ctx_write_prog', /bpf_sock_addr \(connect4\): 4-byte write to family is not allowed/],
    ['null_prog', /read of 1 bytes through r0, which is not a valid pointer/],
  ])('%s faults at its marked source line', (program, reason) => {
    const { fault } = faultIn(engine, program);
    expect(fault.program).toBe(program);
    expect(fault.reason).toMatch(reason);
    expect(fault.line?.line).toBe(lineOf(program));
    expect(fault.line?.file.endsWith('faults.c')).toBe(true);
    expect(fault.message).toMatch(new RegExp(`^${program}: fault at pc ${fault.pc} \\(${program}, faults\\.c:${lineOf(program)}: `));
    expect(fault.insn.length).toBeGreaterThan(0);
  });

  it('a runaway loop is stopped by the branch budget; an unknown helper is named', () => {
    expect(() => runRaw(assemble('spin', [mov64(0, 0), ja(-1), exit()]), engine)).toThrow(/spin: fault at pc 1 .*branch budget exhausted/);
    expect(() => runRaw(assemble('h', [call(999), exit()]), engine)).toThrow(/h: fault at pc 0 .*helper 999 is not supported by the VM/);
  });
});

describe.each(['interp', 'jit'] as const)('a moved context pointer (%s)', (engine) => {
  // A connect4 context: user_ip4 at offset 4 may be read 4 bytes at a time.
  const connect4 = (mem: Memory) => new SockAddrCtx('connect4').prepare(mem, new VmSock(1, 'inet', 'tcp', 1), new Uint8Array([10, 0, 0, 1]), 80);
  it('faults on an access through it, as the kernel verifier rejects one; the pointer as given reads', () => {
    expect(runRaw(assemble('given', [ldx('w', 0, 1, 4), exit()]), engine, connect4).r0).toBe(0x0100000an);
    const moved = assemble('moved', [movReg(2, 1), aluK(true, 'add', 2, 4), ldx('w', 0, 2, 0), exit()]);
    expect(() => runRaw(moved, engine, connect4)).toThrow(
      /moved: fault at pc 2 .*bpf_sock_addr \(connect4\): dereference of a modified context pointer \(moved by 4 bytes before the access\), which the kernel's verifier rejects/,
    );
    const write = assemble('write', [movReg(2, 1), aluK(true, 'add', 2, 4), st('w', 2, 0, 7), exit()]);
    expect(() => runRaw(write, engine, connect4)).toThrow(/write: fault at pc 2 .*dereference of a modified context pointer/);
  });
});

describe('engines agree after a fault', () => {
  it('same pc, same reason, same instruction counts (the faulting block is not over-counted)', () => {
    for (const program of ['oob_prog', 'ctx_write_prog', 'null_prog']) {
      const a = faultIn('interp', program);
      const b = faultIn('jit', program);
      expect([b.fault.pc, b.fault.reason]).toEqual([a.fault.pc, a.fault.reason]);
      const pa = a.vm.program(program),
        pb = b.vm.program(program);
      expect([...instructionHits(b.vm.machine, pb)]).toEqual([...instructionHits(a.vm.machine, pa)]);
      expect(instructionHits(b.vm.machine, pb)[b.fault.pc]).toBe(1);
      expect(instructionHits(b.vm.machine, pb)[b.fault.pc + 1] ?? 0).toBe(0);
    }
  });
});
