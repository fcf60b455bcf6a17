// Agreement of the userspace VM with the other two sides on shared generated cases:
// its exact outcome set (every prandom answer explored) equals the reference model's set, and
// every observation the real kernel makes lies inside it.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Case } from '../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../model/environment.js';
import { outcomes } from '../model/impl/index.js';
import { caseArb } from '../generators/index.js';
import { traceKey } from '../properties/observation.js';
import { createVmExecutor, type VmExecutor } from '../bpf/vm/executor.js';
import { createKernelExecutor, type KernelExecutor } from '../bpf/kernel/executor.js';

function sharedCases(): Case[] {
  const out: Case[] = [];
  for (const kind of ['consistent', 'raw'] as const) {
    for (const shape of ['single', 'sequence'] as const) {
      out.push(...fc.sample(caseArb({ kind, shape }), { seed: 2024, numRuns: shape === 'single' ? 250 : 100 }));
    }
  }
  return out;
}

const keys = (traces: ReadonlyArray<{ observations: readonly unknown[] }>) =>
  [...new Set(traces.map((t) => traceKey(t.observations as never)))].sort();

describe('the VM agrees', () => {
  let vm: VmExecutor;
  const cases = sharedCases();
  beforeAll(async () => {
    vm = await createVmExecutor({});
  });

  it('with the reference model: the same outcome set, exactly, on 700 generated cases', () => {
    let nondeterministic = 0;
    for (const c of cases) {
      const model = keys(outcomes(c, DEFAULT_ENVIRONMENT));
      const machine = keys(vm.outcomeSet(c));
      if (model.length > 1) nondeterministic++;
      expect(machine, JSON.stringify(c)).toEqual(model);
    }
    // The comparison is only meaningful if random load balancing actually branched somewhere.
    expect(nondeterministic).toBeGreaterThan(5);
  });

  describe('with the kernel', () => {
    let kernel: KernelExecutor;
    beforeAll(async () => {
      if (process.geteuid?.() !== 0) throw new Error('the VM-kernel agreement check runs the kernel executor and requires root');
      kernel = await createKernelExecutor();
    });
    afterAll(async () => {
      await kernel?.close();
    });

    it('every kernel observation is in the VM outcome set (each case run twice)', async () => {
      const observed = await kernel.run(cases.flatMap((c) => [c, c]));
      cases.forEach((c, i) => {
        const allowed = new Set(keys(vm.outcomeSet(c)));
        for (const trace of [observed[2 * i]!, observed[2 * i + 1]!]) {
          expect(allowed.has(traceKey(trace)), JSON.stringify({ case: c, trace })).toBe(true);
        }
      });
    });
  });
});
