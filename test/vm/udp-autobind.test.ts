// A UDP socket has its port before its send and receive hooks run (measured on 6.18: the kernel
// autobinds it first), so an object whose DNS hooks act only for a socket with a port behaves as
// ours on the VM as on the kernel (test/kernel/udp-autobind.test.ts). A VM that showed the hooks a
// socket without its port would report every DNS redirect missing from it: a false alarm on
// objects that are right.

import { describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { dataPathObjects, fixtureObject } from '../fixtures/vm/helpers.js';
import { dnsCases, observed } from '../support/udp-autobind.js';

describe('UDP autobind on the VM', () => {
  it("an object whose DNS hooks need the socket's port observes what ours does", async () => {
    const cases = dnsCases();
    const ours = await createVmExecutor({ objects: dataPathObjects() });
    const needsPort = await createVmExecutor({ objects: { ...dataPathObjects(), connect: fixtureObject('dns_needs_port') } });
    try {
      const a = await observed(ours, cases);
      const b = await observed(needsPort, cases);
      // Ours redirects queries of these cases: the comparison is not between two objects that do nothing.
      expect(a.redirected).toBeGreaterThan(20);
      expect(b.traces).toEqual(a.traces);
    } finally {
      await ours.close();
      await needsPort.close();
    }
  });
});
