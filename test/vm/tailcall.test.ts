// Tail calls: the kernel's limit (MAX_TAIL_CALL_CNT = 33: the 34th attempt falls through), empty
// slots, tail calls out of a subprogram, and the waypoint chain of our connect programs.

import { describe, expect, it } from 'vitest';
import { Vm } from '../../bpf/vm/vm.js';
import { VmSock } from '../../bpf/vm/context.js';
import { Memory, Region, Access } from '../../bpf/vm/memory.js';
import { Machine } from '../../bpf/vm/machine.js';
import { bindProgram, MAX_TAIL_CALL_CNT } from '../../bpf/vm/program.js';
import { ProgArrayMap } from '../../bpf/vm/maps.js';
import { MapType, BPF_PSEUDO_MAP_IDX } from '../../bpf/vm/link.js';
import { assemble, aluK, call, callLocal, exit, ldImm64, mov64 } from '../support/asm.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { LbPolicy, type Case } from '../../model/domain.js';
import { dataPathObjects, fixtureObject } from '../fixtures/vm/helpers.js';

const u32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);

describe.each(['interp', 'jit'] as const)('tail calls (%s)', (engine) => {
  it(`a program calling itself runs ${MAX_TAIL_CALL_CNT + 1} times; the ${MAX_TAIL_CALL_CNT + 1}th tail call falls through`, () => {
    const vm = new Vm();
    vm.machine.engine = engine;
    const obj = vm.load(fixtureObject('tailcall', 'v3'));
    const prog = vm.program('tail_prog');
    vm.setTailCall('jmp', 0, prog);
    vm.runConnect(prog, new VmSock(1, 'inet', 'tcp', 1), { addr: '10.0.0.1', port: 80 });
    expect(u32(vm.global(obj, 'passes'))).toBe(34);
    expect(u32(vm.global(obj, 'fell_through'))).toBe(1);
    expect(vm.machine.tailCalls).toBe(33);
  });

  it('an empty slot falls through (and still counts against the limit)', () => {
    const vm = new Vm();
    vm.machine.engine = engine;
    const obj = vm.load(fixtureObject('tailcall', 'v3'));
    vm.runConnect(vm.program('tail_prog'), new VmSock(1, 'inet', 'tcp', 1), { addr: '10.0.0.1', port: 80 });
    expect(u32(vm.global(obj, 'passes'))).toBe(1);
    expect(u32(vm.global(obj, 'fell_through'))).toBe(1);
    expect(vm.machine.tailCalls).toBe(1);
  });

  it('a tail call out of a subprogram replaces that frame: the target returns to the caller', () => {
    const mem = new Memory();
    const m = new Machine(mem);
    m.engine = engine;
    const arr = new ProgArrayMap({ index: 0, name: 'pa', type: MapType.PROG_ARRAY, keySize: 4, valueSize: 4, maxEntries: 2, flags: 0, internal: null });
    mem.addFixed(arr.handle);
    const maps = {
      handle: () => arr.handle,
      value: (): Region => {
        throw new Error('none');
      },
    };
    const target = bindProgram(assemble('target', [mov64(0, 7), exit()]), maps);
    const main = bindProgram(assemble('main', [callLocal(2), aluK(true, 'add', 0, 100), exit(), ldImm64(2, 0n, BPF_PSEUDO_MAP_IDX), mov64(3, 0), call(12), mov64(0, 1), exit()]), maps);
    const ctx = new Region('ctx', new Uint8Array(8), Access.RW);
    m.beginRun();
    expect(m.run(main, ctx)).toBe(101); // empty slot: the subprogram goes on
    arr.set(0, target);
    m.beginRun();
    expect(m.run(main, ctx)).toBe(107);
  });
});

describe.each(['interp', 'jit'] as const)('the waypoint chain of our connect programs (%s)', (engine) => {
  it('a waypoint that routes to itself stops after 34 passes, 33 tail calls, with the rewrite in place', async () => {
    const ports = (p: number) => [p, ...new Array<number>(9).fill(0)];
    const state = {
      frontends: [{ addr: '10.96.0.50', upstreamId: 5 }],
      services: [{ id: 5, endpointCounts: [0, 0, 0, 0, 0, 0, 0], lbPolicy: LbPolicy.random, servicePorts: ports(80), targetPorts: ports(80), waypoint: { addr: '10.96.0.50', port: 15008 } }],
      endpoints: [],
      backends: [],
    };
    const ex = await createVmExecutor({ objects: dataPathObjects(), engine });
    for (const [family, addr] of [
      ['inet', '10.96.0.50'],
      ['inet6', '::ffff:10.96.0.50'],
    ] as const) {
      const c: Case = {
        state,
        kind: 'consistent',
        enrolled: true,
        ops: [
          { op: 'socket', sock: 1, family, protocol: 'tcp' },
          { op: 'connect', sock: 1, dest: { addr, port: 80 } },
        ],
      };
      const [obs] = await ex.run([c]);
      expect(obs![1]).toMatchObject({ op: 'connect', peer: { addr, port: 15008 }, error: null, storage: { viaWaypoint: true, original: { addr, port: 80 } } });
      expect(ex.vm.machine.tailCalls).toBe(0); // the last program run is sockops
    }
    // One connect straight into the program (the last case left the state loaded and enrolled).
    const sock = new VmSock(9, 'inet', 'tcp', 9);
    const r = ex.vm.runConnect(ex.programs.connect4, sock, { addr: '10.96.0.50', port: 80 });
    expect(r.dest).toEqual({ addr: '10.96.0.50', port: 15008 });
    expect(ex.vm.machine.tailCalls).toBe(MAX_TAIL_CALL_CNT);
    await ex.close();
  });
});
