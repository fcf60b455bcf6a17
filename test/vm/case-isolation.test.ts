// A case sees nothing of the cases before it on the VM, also through maps outside the ABI that
// programs write through lookup pointers (test/support/isolation-cases.ts); without the reset of
// such arrays a counterexample of the exhaustive phase did not replay.

import { describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { buildMutant } from '../../cli/mutants.js';
import { membershipByMonitoring, replyAfterWrites } from '../support/isolation-cases.js';

describe('cases are isolated through maps outside the ABI', () => {
  it('on the VM', async () => {
    expect(await replyAfterWrites(await createVmExecutor({ objects: buildMutant('dns-server-global') }))).toBe('10.1.0.1');
  });

  it('on the VM: each case runs with its own enable_monitoring', async () => {
    const pattern = [false, true, true, false, false, true];
    expect(await membershipByMonitoring(await createVmExecutor({ objects: buildMutant('waypoint-needs-monitoring') }), pattern)).toEqual(pattern);
    // Our objects insert whatever it is.
    expect(await membershipByMonitoring(await createVmExecutor({}), pattern)).toEqual(pattern.map(() => true));
  });
});
