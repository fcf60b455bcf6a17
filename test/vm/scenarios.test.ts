// The hand-written scenarios (support/scenarios.ts) on the userspace VM: the same table, the same
// expectations as on the kernel executor, over the VM's exact outcome set of each case.

import { createVmExecutor, distinctOutcomes } from '../../bpf/vm/executor.js';
import { outcomeSetExecutor, scenarioSuite } from '../support/scenarios.js';

scenarioSuite('vm', async () => {
  const vm = await createVmExecutor({});
  const ex = outcomeSetExecutor((c) => distinctOutcomes(vm.outcomeSet(c)).map((o) => o.observations));
  return { run: ex.run, close: () => vm.close() };
});
