// The bench's bound on --jobs scaling: what the cores allow given one job's CPU per case in its
// two processes (main thread, executor worker), which overlap. It explains the kernel's figure.

import { describe, expect, it } from 'vitest';
import { scalingBound } from '../../cli/bench-e2e.js';
import { scalingNote } from '../../cli/commands/bench.js';

describe('--jobs scaling bound', () => {
  it('lets a job with one busy process scale with the cores', () => {
    expect(scalingBound(300, 0, 2, 2)).toBe(2);
    expect(scalingBound(300, 0, 4, 2)).toBe(2);
    expect(scalingBound(300, 0, 2, 4)).toBe(2);
  });

  it('leaves little to gain on 2 cores when one job already uses both', () => {
    // One job runs at the pace of its busiest process; two at 2 cores / total CPU.
    expect(scalingBound(300, 170, 2, 2)).toBeCloseTo((2 * 300) / 470, 10);
    expect(scalingBound(200, 200, 2, 2)).toBe(1);
    expect(scalingBound(200, 200, 2, 4)).toBe(2);
  });

  it('says so in the bench row', () => {
    const base = { executor: 'kernel' as const, jobs: 2, oneJobCasesPerSecond: 1000, casesPerSecond: 1100, scaling: 1.1, cores: 2 };
    const kernel = scalingNote({ ...base, cpuPerCaseUs: { main: 300, worker: 170 }, bound: scalingBound(300, 170, 2, 2) });
    expect(kernel).toBe(
      'one job: main thread 300 us + harness worker 170 us of CPU per case; one job already runs its main thread and worker process on two cores at once, so 2 cores allow at most 1.28x',
    );
    const model = scalingNote({ ...base, executor: 'model', cpuPerCaseUs: { main: 300 }, bound: 2 });
    expect(model).toBe('one job: main thread 300 us of CPU per case; 2 cores allow up to 2.00x');
  });
});
