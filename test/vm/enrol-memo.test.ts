// The enrolment memo (bpf/vm/enrol-memo.ts): a recorded enrolment is replayed only while its key
// holds (the first control port, every array map's bytes) and only if the programs did nothing
// but km_manage map calls and fixed helpers; a replay leaves km_manage, its program-write count
// and the coverage counts as running again would. Hand-assembled programs stand for the
// enrolment's control connects; on our objects, the executor's runs (which replay) are checked
// against runs of one case at a time (which never do).

import { describe, expect, it } from 'vitest';
import { Vm } from '../../bpf/vm/vm.js';
import { VmSock } from '../../bpf/vm/context.js';
import { ArrayMap, HashMap } from '../../bpf/vm/maps.js';
import { BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE, MapType, type LinkedObject, type MapDef } from '../../bpf/vm/link.js';
import { HelperId } from '../../bpf/vm/helpers.js';
import { EnrolMemo } from '../../bpf/vm/enrol-memo.js';
import { instructionHits } from '../../bpf/vm/coverage.js';
import { ScriptedChoices, SeededChoices } from '../../bpf/runner/choices.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { generatedCases } from '../../properties/run.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { aluK, assemble, call, exit, ldImm64, mov64, movReg, st, stx, type Insn } from '../support/asm.js';

const mapDef = (index: number, name: string, over: Partial<MapDef> = {}): MapDef => ({ index, name, type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 16, flags: 0, internal: null, ...over });

/**
 * An enrolment program: `before` first, then km_manage[7] = the low byte of its r0 (what a
 * control connect records), verdict 1.
 */
function program(name: string, before: (Insn | Insn[])[]): LinkedObject {
  const insns = [
    ...before.flat(),
    movReg(6, 0),
    aluK(true, 'and', 6, 0xff),
    stx('w', 10, -8, 6),
    st('w', 10, -4, 7),
    ldImm64(1, 0n, BPF_PSEUDO_MAP_IDX),
    movReg(2, 10),
    aluK(true, 'add', 2, -4),
    movReg(3, 10),
    aluK(true, 'add', 3, -8),
    mov64(4, 0),
    call(HelperId.map_update_elem),
    mov64(0, 1),
    exit(),
  ];
  const linked = assemble(name, insns, 'cgroup/connect4');
  const maps = [
    mapDef(0, 'km_manage'),
    mapDef(1, '.bss', { type: MapType.ARRAY, valueSize: 8, maxEntries: 1, internal: { section: '.bss', initial: new Uint8Array(8), readonly: false } }),
    mapDef(2, 'other'),
  ];
  return { path: `${name}.o`, license: 'GPL', maps, globals: [], programs: [linked], program: () => linked };
}

function setup(before: (Insn | Insn[])[]) {
  const vm = new Vm({ choices: new SeededChoices(3) });
  const obj = vm.load(program('enrol', before));
  const manage = vm.map<HashMap>('km_manage');
  const memo = new EnrolMemo(vm, manage);
  const prog = obj.programs[0]!;
  const sock = new VmSock(-1, 'inet', 'tcp', 0xfff);
  let runs = 0;
  const run = () => {
    runs++;
    manage.clear();
    vm.runConnectRaw(prog, sock, new Uint8Array([0, 0, 0, 2]), 929);
  };
  const bss = vm.maps.get('enrol.o:.bss') as ArrayMap;
  return { vm, manage, memo, prog, run, runs: () => runs, bss };
}

const entries = (m: HashMap) => m.keys().map((k) => [[...k], [...m.get(k)!]]);

describe('enrolment memo', () => {
  it('replays what a km_manage-only enrolment did, coverage counts included', () => {
    const s = setup([call(HelperId.get_netns_cookie)]);
    s.memo.enrol(40000, s.run);
    expect(s.runs()).toBe(1);
    const after = entries(s.manage);
    expect(after).toEqual([
      [
        [7, 0, 0, 0],
        [s.vm.netnsCookie & 0xff, 0, 0, 0],
      ],
    ]);
    const hits = instructionHits(s.vm.machine, s.prog);
    const writes = s.manage.programWrites;
    s.manage.clear();
    s.memo.enrol(40000, s.run);
    s.memo.enrol(40000, s.run);
    expect(s.runs()).toBe(1);
    expect(entries(s.manage)).toEqual(after);
    expect(s.manage.programWrites).toBe(3 * writes);
    expect([...instructionHits(s.vm.machine, s.prog)]).toEqual([...hits].map((h) => 3 * h));
  });

  it('runs again when the first control port or global data differ from the recording', () => {
    const s = setup([call(HelperId.get_netns_cookie)]);
    s.memo.enrol(40000, s.run);
    s.memo.enrol(40001, s.run);
    expect(s.runs()).toBe(2);
    s.bss.values[0]!.bytes[3] = 1;
    s.memo.enrol(40001, s.run);
    expect(s.runs()).toBe(3);
    s.memo.enrol(40001, s.run);
    expect(s.runs()).toBe(3);
  });

  it('keeps a recording per global-data setting it alternates between (up to four), each replayed while its key holds', () => {
    const s = setup([call(HelperId.get_netns_cookie)]);
    // Cases with connection reports on and off, in turn: two recordings, then replays only.
    for (let i = 0; i < 6; i++) {
      s.bss.values[0]!.bytes[0] = i % 2;
      s.memo.enrol(40000, s.run);
    }
    expect(s.runs()).toBe(2);
    // Five settings: the oldest recording is dropped, so coming back to it runs again.
    for (let v = 2; v <= 4; v++) {
      s.bss.values[0]!.bytes[0] = v;
      s.memo.enrol(40000, s.run);
    }
    expect(s.runs()).toBe(5);
    s.bss.values[0]!.bytes[0] = 1;
    s.memo.enrol(40000, s.run);
    expect(s.runs()).toBe(5);
    s.bss.values[0]!.bytes[0] = 0;
    s.memo.enrol(40000, s.run);
    expect(s.runs()).toBe(6);
  });

  it('never replays an enrolment that drew prandom, read the clock or used another map', () => {
    const lookupOther = [st('w', 10, -12, 1), ldImm64(1, 2n, BPF_PSEUDO_MAP_IDX), movReg(2, 10), aluK(true, 'add', 2, -12), call(HelperId.map_lookup_elem)];
    for (const before of [[call(HelperId.get_prandom_u32)], [call(HelperId.ktime_get_ns)], lookupOther]) {
      const s = setup(before);
      for (let i = 0; i < 3; i++) s.memo.enrol(40000, s.run);
      expect(s.runs()).toBe(3);
    }
  });

  it('never replays an enrolment that wrote global data', () => {
    const s = setup([ldImm64(1, 1n, BPF_PSEUDO_MAP_IDX_VALUE), st('w', 1, 0, 9), mov64(0, 0)]);
    for (let i = 0; i < 3; i++) {
      s.bss.values[0]!.bytes.fill(0);
      s.memo.enrol(40000, s.run);
    }
    expect(s.runs()).toBe(3);
  });
});

describe('VM executor runs with enrolment replayed', () => {
  it('observe, count coverage and leave km_manage as runs without the memo do', async () => {
    const cases = generatedCases({ seed: 5, runs: 200, states: 'both', env: DEFAULT_ENVIRONMENT });
    expect(cases.filter((c) => c.enrolled).length).toBeGreaterThan(50);
    const memo = await createVmExecutor();
    const plain = await createVmExecutor();
    const got = await memo.run(cases);
    const want = cases.map((c) => plain.runCase(c, new SeededChoices(1)));
    expect(got).toEqual(want);
    expect(memo.coverageCounts()).toEqual(plain.coverageCounts());
    expect(memo.vm.map<HashMap>('km_manage').digest()).toBe(plain.vm.map<HashMap>('km_manage').digest());
    expect(memo.vm.map<HashMap>('km_manage').programWrites).toBe(plain.vm.map<HashMap>('km_manage').programWrites);
  });

  it('give pruned outcome sets whose every run replays, with enrolment run, to the same observations', async () => {
    const cases = generatedCases({ seed: 6, runs: 120, states: 'both', env: DEFAULT_ENVIRONMENT }).filter((c) => c.enrolled);
    expect(cases.length).toBeGreaterThan(30);
    const memo = await createVmExecutor();
    const plain = await createVmExecutor();
    let runs = 0;
    for (const c of cases) {
      for (const o of memo.outcomeSet(c)) {
        expect(plain.runCase(c, new ScriptedChoices(o.choices))).toEqual(o.observations);
        runs++;
      }
    }
    expect(runs).toBeGreaterThan(cases.length);
  });
});
