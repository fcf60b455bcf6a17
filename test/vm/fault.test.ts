// Faults name the program, the pc, the function and the source line; both engines report the
// same fault and leave the same coverage counts behind.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Vm } from '../../bpf/vm/vm.js';
import { VmSock } from '../../bpf/vm/context.js';
import { VmFault } from '../../bpf/vm/program.js';
import { instructionHits } from '../../bpf/vm/coverage.js';
import { assemble, call, exit, ja, mov64 } from '../support/asm.js';
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
