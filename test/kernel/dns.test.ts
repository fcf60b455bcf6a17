// The kernel executor on the hand-written DNS scenarios of section 6 (test/support/dns-scenarios.ts):
// our objects attached to a cgroup in a private namespace, a DNS stand-in answering at the servers
// and the proxy. Each observation must carry the expected fields, the whole trace must be the
// reference model's, and the VM must observe the same.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KernelExecutor } from '../../bpf/kernel/executor.js';
import type { WorkerInfo } from '../../bpf/kernel/protocol.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import type { Observation } from '../../model/domain.js';
import { outcomes } from '../../model/impl/index.js';
import { DNS_SCENARIOS, pick } from '../support/dns-scenarios.js';
import { sendto, socket } from '../../model/builders.js';
import type { Case } from '../../model/domain.js';
import { startKernel } from '../helpers/kernel.js';

let kernel: KernelExecutor;
let observed: Observation[][];
let vmObserved: Observation[][];
let lateWaits: WorkerInfo['lateWaits'];
beforeAll(async () => {
  kernel = await startKernel();
  // Twice over in one batch: stand-ins and sockets left by one case must not leak into the next.
  const cases = [...DNS_SCENARIOS, ...DNS_SCENARIOS].map((s) => s.case);
  const before = (await kernel.info()).lateWaits;
  observed = await kernel.run(cases);
  const after = (await kernel.info()).lateWaits;
  lateWaits = { stream: after.stream - before.stream, dns: after.dns - before.dns };
  const vm = await createVmExecutor();
  vmObserved = await vm.run(cases);
  await vm.close();
}, 60_000);
afterAll(async () => {
  await kernel?.close();
});

describe('kernel: DNS over UDP (section 6)', () => {
  it('attaches the three DNS hooks of our connect object', () => {
    expect(kernel.dnsHooks).toEqual(['sendmsg4', 'recvmsg4', 'recvmsg6']);
  });
  it('waits for no late delivery: an answer no socket takes comes back as an ICMP error, not as a quiet period', () => {
    // Some scenarios send answers that a connected socket drops; without IP_RECVERR each of their
    // recvfroms would wait for them.
    expect(DNS_SCENARIOS.some((s) => s.case.ops.some((o) => o.op === 'recvfrom'))).toBe(true);
    expect(lateWaits).toEqual({ stream: 0, dns: 0 });
  });
  DNS_SCENARIOS.forEach((s, k) => {
    it(s.name, () => {
      for (const obs of [observed[k]!, observed[k + DNS_SCENARIOS.length]!]) {
        s.expect.forEach((e, i) => expect(pick(obs[i], e), `operation ${i + 1}`).toEqual(e));
        expect(obs).toEqual(outcomes(s.case, kernel.environment)[0]!.observations);
      }
      expect(vmObserved[k]).toEqual(observed[k]);
    });
  });
});

describe('kernel: enrolment across cases', () => {
  it('a control sendto in one case does not leave the next (not enrolled) case enrolled', async () => {
    // sendto 0.0.0.2:929 enrols the namespace as a control connect does; the next case must start
    // from the enrolment it asks for.
    const enrolBySend: Case = { ...DNS_SCENARIOS[0]!.case, enrolled: false, ops: [socket(0, 'inet', 'udp'), sendto(0, '0.0.0.2', 929)] };
    const notEnrolled = DNS_SCENARIOS.find((s) => !s.case.enrolled && s.case.ops.some((o) => o.op === 'sendto'));
    expect(notEnrolled, 'a not-enrolled DNS scenario').toBeDefined();
    const [, next] = await kernel.run([enrolBySend, notEnrolled!.case]);
    expect(next).toEqual(outcomes(notEnrolled!.case, kernel.environment)[0]!.observations);
  });
});
