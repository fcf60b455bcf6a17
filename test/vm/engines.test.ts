// Compiled C against the host: test/fixtures/vm/compute.c is built for BPF (-mcpu=v1, v2, v3, so
// with and without ALU32/JMP32) and for the host; for random inputs the VM's results on both
// engines must equal the native program's. And the two engines agree on coverage counts.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { Vm } from '../../bpf/vm/vm.js';
import { Region, Access } from '../../bpf/vm/memory.js';
import { instructionHits } from '../../bpf/vm/coverage.js';
import { FIXTURES, fixtureObject, scratchDir } from '../fixtures/vm/helpers.js';

function hostResults(pairs: Array<[bigint, bigint]>): bigint[][] {
  const bin = join(scratchDir(), 'compute-host');
  execFileSync('clang', ['-O2', `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, join(FIXTURES, 'compute.c'), '-o', bin]);
  const out = execFileSync(
    bin,
    pairs.flatMap(([a, b]) => [String(a), String(b)]),
    { encoding: 'utf8' },
  );
  return out
    .trim()
    .split('\n')
    .map((l) => l.split(' ').map((x) => BigInt(x)));
}

function vmResults(path: string, engine: 'jit' | 'interp', pairs: Array<[bigint, bigint]>): { results: bigint[][]; vm: Vm } {
  const vm = new Vm();
  vm.machine.engine = engine;
  vm.load(path);
  const prog = vm.program('compute_prog');
  const results = pairs.map(([a, b]) => {
    const bytes = new Uint8Array(64);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, a, true);
    v.setBigUint64(8, b, true);
    vm.machine.beginRun();
    vm.machine.run(prog, new Region('compute_args', bytes, Access.RW));
    return Array.from({ length: 6 }, (_, i) => v.getBigUint64(16 + 8 * i, true));
  });
  return { results, vm };
}

const pairs: Array<[bigint, bigint]> = fc.sample(
  fc.tuple(
    fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.constantFrom(0n, 1n, (1n << 64n) - 1n, 1n << 63n, 0x80000000n)),
    fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: 255n }), fc.constantFrom(0n, 1n, (1n << 64n) - 1n, 63n, 64n)),
  ),
  { numRuns: 300, seed: 20251122 },
);

describe('compiled C: VM against the host', () => {
  const expected = hostResults(pairs);
  for (const cpu of ['v1', 'v2', 'v3'] as const) {
    for (const engine of ['interp', 'jit'] as const) {
      it(`-mcpu=${cpu} on the ${engine} engine`, () => {
        const { results } = vmResults(fixtureObject('compute', cpu), engine, pairs);
        results.forEach((r, i) => expect(r, `inputs ${pairs[i]!.map((x) => `0x${x.toString(16)}`).join(', ')}`).toEqual(expected[i]));
      });
    }
  }

  it('both engines count the same instructions and branches', () => {
    const a = vmResults(fixtureObject('compute', 'v3'), 'interp', pairs);
    const b = vmResults(fixtureObject('compute', 'v3'), 'jit', pairs);
    const pa = a.vm.program('compute_prog'),
      pb = b.vm.program('compute_prog');
    expect([...instructionHits(b.vm.machine, pb)]).toEqual([...instructionHits(a.vm.machine, pa)]);
    expect([...pb.taken]).toEqual([...pa.taken]);
    expect([...pa.taken].some((t) => t > 0)).toBe(true);
  });
});
