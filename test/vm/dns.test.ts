// The VM executor on the hand-written DNS scenarios of section 6 (test/support/dns-scenarios.ts),
// with our objects: each observation must carry the expected fields, and the whole trace must be
// the reference model's.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVmExecutor, type VmExecutor } from '../../bpf/vm/executor.js';
import { outcomes } from '../../model/impl/index.js';
import { DNS_SCENARIOS, pick } from '../support/dns-scenarios.js';

let vm: VmExecutor;
beforeAll(async () => {
  vm = await createVmExecutor();
});
afterAll(async () => {
  await vm.close();
});

describe('VM: DNS over UDP (section 6)', () => {
  it('finds the three DNS hooks in our connect object', () => {
    expect(vm.dnsHooks).toEqual(['sendmsg4', 'recvmsg4', 'recvmsg6']);
  });
  for (const s of DNS_SCENARIOS) {
    it(s.name, async () => {
      const [obs] = await vm.run([s.case]);
      s.expect.forEach((e, i) => expect(pick(obs![i], e), `operation ${i + 1}`).toEqual(e));
      expect(obs).toEqual(outcomes(s.case, vm.environment)[0]!.observations);
    });
  }
});
