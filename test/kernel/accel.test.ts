// Same-node acceleration in the real kernel: our ma_ops/ma_redirect attached to a fresh cgroup,
// generated cases (fixed seed) run on real sockets in two private namespaces per case and judged
// by the section 8 invariants; a hand-written isolation case; the acceleration mutants each
// caught by the invariant meant for them; objects that lack the programs refused in one line.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCEL_MUTANTS, buildAccelMutant } from '../../cli/accel-mutants.js';
import { AccelKernelExecutor } from '../../bpf/kernel/accel/executor.js';
import { packageRoot } from '../../bpf/kernel/paths.js';
import { accelInvariants } from '../../model/accel/invariants.js';
import { expectedAccel } from '../../model/accel/model.js';
import { ACCEL_EXAMPLE } from '../../docs/gen/accel-docs.js';
import { ACCEL_CASES, ISOLATION, accelViolations } from '../support/accel-cases.js';

function requireRoot(): void {
  if (process.geteuid && process.geteuid() !== 0) {
    throw new Error('kernel executor tests require root (CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN): run them as root or with sudo');
  }
}

const CASES = ACCEL_CASES;
const violations = accelViolations;

describe('same-node acceleration on the kernel', () => {
  let ex: AccelKernelExecutor;
  beforeAll(async () => {
    requireRoot();
    ex = await AccelKernelExecutor.start();
  });
  afterAll(async () => {
    await ex?.close();
  });

  it('generated cases: every invariant holds and every invariant is exercised', async () => {
    const obs = await ex.run(CASES);
    expect(Object.fromEntries(violations(CASES, obs))).toEqual({});
    for (const inv of accelInvariants) {
      expect(CASES.filter((c, i) => inv.check(c, obs[i]!).status === 'holds').length, inv.name).toBeGreaterThan(20);
    }
    // Mixed families (an AF_INET6 v4-mapped client of an AF_INET server) ran and were not accelerated.
    expect(CASES.some((c) => c.pairs.some((p) => p.family === 'mapped'))).toBe(true);
    // Both outcomes of the filter were seen on real sockets.
    const flat = obs.flatMap((o) => o.pairs.flatMap((p) => [p.toServer, p.toClient])).filter((d) => d.received.length > 0);
    expect(flat.some((d) => d.viaTcp === 0)).toBe(true);
    expect(flat.some((d) => d.viaTcp > 0)).toBe(true);
  });

  it('two namespaces, one four-tuple: each connection stays its own, the inside one accelerated', async () => {
    const [o] = await ex.run([ISOLATION]);
    expect(o).toEqual(expectedAccel(ISOLATION));
    expect(o!.pairs[0]!.toServer.viaTcp).toBe(0);
    expect(o!.pairs[1]!.toServer.viaTcp).toBe(8);
  });

  it('the docs example gives on the kernel exactly what the model expects', async () => {
    const [o] = await ex.run([ACCEL_EXAMPLE]);
    expect(o).toEqual(expectedAccel(ACCEL_EXAMPLE));
  });

  it('a worker is reusable after many cases: maps are empty between cases', async () => {
    const obs = await ex.run([ISOLATION, ISOLATION]);
    expect(obs[1]).toEqual(obs[0]);
  });
});

describe('acceleration mutants are caught', () => {
  beforeAll(() => requireRoot());
  for (const m of ACCEL_MUTANTS) {
    it(`${m.name}: ${m.expectedInvariant}`, async () => {
      const mx = await AccelKernelExecutor.start(buildAccelMutant(m.name));
      try {
        // In chunks, stopping at the first that catches it: a mutant that loses bytes makes
        // every affected case wait out the receive bound.
        const cases = [ISOLATION, ...CASES];
        const caught: string[] = [];
        for (let i = 0; i < cases.length && !caught.includes(m.expectedInvariant); i += 25) {
          const chunk = cases.slice(i, i + 25);
          caught.push(...violations(chunk, await mx.run(chunk)).keys());
        }
        expect(caught).toContain(m.expectedInvariant);
      } finally {
        await mx.close();
      }
    });
  }
});

describe('objects without the acceleration programs', () => {
  beforeAll(() => requireRoot());
  it('are refused with a one-line error naming the missing program', async () => {
    const other = `${packageRoot()}/build/bpf/sockops.o`;
    const err = await AccelKernelExecutor.start({ ops: other, redirect: other }).then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe('object-content');
    expect(err?.message).toMatch(/no acceleration object has program 'ma_ops'/);
    expect(err?.message).not.toMatch(/\n/);
  });
});
