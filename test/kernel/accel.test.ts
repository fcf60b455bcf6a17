// Same-node acceleration in the real kernel: our ma_ops/ma_redirect attached to a fresh cgroup,
// generated cases (fixed seed) run on real sockets in two private namespaces per case and judged
// by the section 8 invariants; a hand-written isolation case; the acceleration mutants each
// caught by the invariant meant for them; objects that lack the programs refused in one line.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCEL_MUTANTS, buildAccelMutant } from '../../cli/accel-mutants.js';
import { AccelKernelExecutor } from '../../bpf/kernel/accel/executor.js';
import { packageRoot } from '../../bpf/kernel/paths.js';
import { accelCaseArb } from '../../generators/accel.js';
import { EMPTY_FILTER, type AccelCase, type AccelObservation, type AccelPair } from '../../model/accel/domain.js';
import { accelInvariants, judgeAccel } from '../../model/accel/invariants.js';
import { expectedAccel } from '../../model/accel/model.js';
import { ACCEL_EXAMPLE } from '../../docs/gen/accel-docs.js';

function requireRoot(): void {
  if (process.geteuid && process.geteuid() !== 0) {
    throw new Error('kernel executor tests require root (CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN): run them as root or with sudo');
  }
}

const CASES = fc.sample(accelCaseArb(), { seed: 1515, numRuns: 150 });

const PAIR: AccelPair = { netns: 0, family: 'inet', clientAddr: '127.0.0.1', clientPort: 40000, serverAddr: '127.0.0.1', serverPort: 8080, outside: 'none' };

/** Two connections with one four-tuple, one per namespace; the second's client outside the cgroup. */
const ISOLATION: AccelCase = {
  filter: EMPTY_FILTER,
  pairs: [PAIR, { ...PAIR, netns: 1, outside: 'client' }],
  ops: [
    { op: 'connect', pair: 0 },
    { op: 'connect', pair: 1 },
    { op: 'send', pair: 0, from: 'client', size: 8 },
    { op: 'send', pair: 1, from: 'server', size: 8 },
    { op: 'send', pair: 0, from: 'server', size: 8 },
    { op: 'send', pair: 1, from: 'client', size: 8 },
    { op: 'close', pair: 1, end: 'client' },
    { op: 'close', pair: 0, end: 'server' },
    { op: 'close', pair: 1, end: 'server' },
    { op: 'close', pair: 0, end: 'client' },
  ],
};

function violations(cases: readonly AccelCase[], obs: readonly AccelObservation[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  obs.forEach((o, i) => {
    for (const j of judgeAccel(cases[i]!, o)) if (j.verdict.status === 'violated') out.set(j.name, [...(out.get(j.name) ?? []), `case ${i}: ${j.verdict.detail}`]);
  });
  return out;
}

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
