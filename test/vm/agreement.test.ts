// Agreement of the userspace VM with the reference model on shared generated cases: its exact
// outcome set (every prandom answer explored) equals the model's set. (Against the real kernel:
// test/kernel/vm-agreement.test.ts.)

import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { createVmExecutor, type VmExecutor } from '../../bpf/vm/executor.js';

import { keys, sharedCases } from '../support/agreement-cases.js';

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
});
