// The bench runs end to end: the C baseline builds, runs in the worker's namespace and cgroup on
// the same maps, and both figures come back. (The speed goal itself is measured with more cases
// by `runKernelBench`; a short run here only proves the machinery.)

import { describe, expect, it } from 'vitest';
import { benchCases, buildBaseline, runKernelBench } from '../../bpf/kernel/bench.js';
import { existsSync } from 'node:fs';

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
});
