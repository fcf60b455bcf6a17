// The bench's bound on --jobs scaling: what the cores allow given one job's CPU per case in its
// threads and processes (main thread, V8's helper threads, executor worker), which overlap. It
// explains the figures: one job's helper threads and worker already use the second core.

import { describe, expect, it } from 'vitest';
import { scalingBound } from '../../cli/bench-e2e.js';
import { scalingNote } from '../../cli/commands/bench.js';

describe('--jobs scaling bound', () => {
  it('lets a job whose CPU is all on its main thread scale with the cores', () => {
    expect(scalingBound({ main: 300, helpers: 0 }, 2, 2)).toBe(2);
    expect(scalingBound({ main: 300, helpers: 0 }, 4, 2)).toBe(2);
    expect(scalingBound({ main: 300, helpers: 0 }, 2, 4)).toBe(2);
  });

  it('counts the helper threads beside the main thread', () => {
    // One job at the pace of its main thread (helpers in parallel); two at 2 cores / all the CPU.
    expect(scalingBound({ main: 100, helpers: 50 }, 2, 2)).toBeCloseTo((2 * 100) / 150, 10);
    // A job that already keeps two cores busy gains nothing from a second one on two cores.
    expect(scalingBound({ main: 40, helpers: 80 }, 2, 2)).toBe(1);
    expect(scalingBound({ main: 40, helpers: 80 }, 2, 4)).toBeCloseTo(4 / 3, 10);
  });

  it('counts the harness worker, paced by its main thread', () => {
    expect(scalingBound({ main: 300, helpers: 0, worker: 170, workerMain: 170 }, 2, 2)).toBeCloseTo((2 * 300) / 470, 10);
    expect(scalingBound({ main: 100, helpers: 20, worker: 150, workerMain: 120 }, 2, 4)).toBeCloseTo(4 / 270 / (1 / 120), 10);
    expect(scalingBound({ main: 200, helpers: 0, worker: 200 }, 2, 2)).toBe(1);
  });

  it('says so in the bench row', () => {
    const base = { executor: 'kernel' as const, jobs: 2, oneJobCasesPerSecond: 1000, casesPerSecond: 1100, scaling: 1.1, cores: 2, maxRssMb: 200 };
    const kcpu = { main: 80, helpers: 100, worker: 150, workerMain: 120 };
    const kernel = scalingNote({ ...base, cpuPerCaseUs: kcpu, bound: scalingBound(kcpu, 2, 2) });
    expect(kernel).toBe(
      "one job: main thread 80 us + V8's compiler and GC threads 100 us + harness worker 150 us (its main thread 120 us) of CPU per case; one job's CPU is 2.8x its busiest thread's, so 2 cores allow at most 1.00x",
    );
    const model = scalingNote({ ...base, executor: 'model', cpuPerCaseUs: { main: 300, helpers: 0 }, bound: 2 });
    expect(model).toBe("one job: main thread 300 us + V8's compiler and GC threads 0 us of CPU per case; 2 cores allow up to 2.00x");
  });
});
