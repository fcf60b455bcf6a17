// A case sees nothing of the cases before it on the kernel, also through maps outside the ABI:
// the worker puts them back before every case (bpf/user/setup-ops.c kf_reset_maps), with the
// cases of test/support/isolation-cases.ts.

import { describe, expect, it } from 'vitest';
import { createKernelExecutor } from '../../bpf/kernel/executor.js';
import { buildMutant } from '../../cli/mutants.js';
import { replyAfterWrites } from '../support/isolation-cases.js';

describe('cases are isolated through maps outside the ABI', () => {
  it('on the kernel', async () => {
    if (process.geteuid?.() !== 0) throw new Error('the kernel executor requires root: run this test as root or with sudo');
    expect(await replyAfterWrites(await createKernelExecutor({ objects: buildMutant('dns-server-global') }))).toBe('10.1.0.1');
  });
});
