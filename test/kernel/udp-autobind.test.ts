// The kernel side of test/vm/udp-autobind.test.ts: on real sockets too, an object whose DNS hooks
// act only for a socket with a local port observes what ours does, because the kernel binds a
// UDP socket to its port before its send and receive hooks run.

import { describe, expect, it } from 'vitest';
import { createKernelExecutor } from '../../bpf/kernel/executor.js';
import { dataPathObjects, fixtureObject } from '../fixtures/vm/helpers.js';
import { dnsCases, observed } from '../support/udp-autobind.js';

describe('UDP autobind on the kernel', () => {
  it("an object whose DNS hooks need the socket's port observes what ours does", async () => {
    const cases = dnsCases();
    const ours = await createKernelExecutor({ objects: dataPathObjects() });
    let a: Awaited<ReturnType<typeof observed>>;
    try {
      a = await observed(ours, cases);
    } finally {
      await ours.close();
    }
    const needsPort = await createKernelExecutor({ objects: { ...dataPathObjects(), connect: fixtureObject('dns_needs_port') } });
    try {
      expect(a.redirected).toBeGreaterThan(20);
      expect((await observed(needsPort, cases)).traces).toEqual(a.traces);
    } finally {
      await needsPort.close();
    }
  }, 120_000);
});
