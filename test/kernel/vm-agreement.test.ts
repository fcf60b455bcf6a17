// The userspace VM against the real kernel on shared generated cases: every observation the
// kernel executor makes (each case run twice) lies inside the VM's exact outcome set.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernelExecutor, type KernelExecutor } from '../../bpf/kernel/executor.js';
import { createVmExecutor, type VmExecutor } from '../../bpf/vm/executor.js';
import { traceKey } from '../../properties/observation.js';
import { keys, sharedCases } from '../support/agreement-cases.js';

describe('the VM agrees with the kernel', () => {
  let kernel: KernelExecutor;
  let vm: VmExecutor;
  const cases = sharedCases();
  beforeAll(async () => {
    if (process.geteuid?.() !== 0) throw new Error('the VM-kernel agreement check runs the kernel executor and requires root');
    kernel = await createKernelExecutor();
    vm = await createVmExecutor({});
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
