// The bench runs end to end: the C baseline builds, runs in the worker's namespace and cgroup on
// the same maps, and both figures come back. (The speed goal itself is measured with more cases
// by `runKernelBench`; a short run here only proves the machinery.) The end-to-end figures give
// the worker's time per case apart.

import { describe, expect, it } from 'vitest';
import { benchCases, buildBaseline, runKernelBench } from '../../bpf/kernel/bench.js';
import { existsSync } from 'node:fs';
import { endToEnd } from '../../cli/bench-e2e.js';

describe('kernel bench', () => {
  it('bench cases differ from their predecessor by one backend and one frontend', () => {
    const [a, b] = benchCases(2);
    expect(a!.state.backends[0]!.addr).toBe('10.2.0.1');
    expect(b!.state.backends[0]!.addr).toBe('10.2.0.2');
    expect(a!.state.frontends.map((f) => f.addr)).toEqual(['10.1.0.1', '10.3.0.1']);
    expect(b!.state.frontends.map((f) => f.addr)).toEqual(['10.1.0.1', '10.3.0.2']);
  });

  it('builds the baseline and measures both sides', async () => {
    expect(existsSync(buildBaseline())).toBe(true);
    const r = await runKernelBench({ cases: 2000, rounds: 1 });
    expect(r.cases).toBe(2000);
    expect(r.connectsPerSecond).toBeGreaterThan(1000);
    expect(r.baselineConnectsPerSecond).toBeGreaterThan(1000);
    expect(r.ratio).toBeCloseTo(r.baselineConnectsPerSecond / r.connectsPerSecond, 6);
  });

  it("splits the harness worker's time per case of the bare run: kf_run within handling, parsing, replying", async () => {
    const e = await endToEnd('kernel', 300, { warmUp: 0 });
    expect(e.bareCasesPerSecond).toBeGreaterThan(0);
    const w = e.bareWorkerUs!;
    // Most generated cases run whole: kf_run took part of the handling.
    expect(w.shim).toBeGreaterThan(0);
    expect(w.parse).toBeGreaterThan(0);
    expect(w.reply).toBeGreaterThan(0);
    // Per case, not in all: the worker cannot have spent more than the bare run's wall time,
    // but for the tail of its last reply (the parent may stop its clock on the answer before the
    // worker, preempted after writing it, reads its own): one scheduler slice, 4 ms, at most.
    const wallUs = (1e6 / e.bareCasesPerSecond!) * e.cases;
    expect((w.handle + w.parse + w.reply) * e.cases).toBeLessThan(wallUs + 4000);
  }, 120_000);
});
