// Checking power: every mutant of our data path is killed by the checker within the default
// budget and seed, with a small counterexample. Runs on the kernel executor (needs root).

import { describe, expect, it } from 'vitest';
import { MUTANTS } from '../bpf/mutants.js';
import { runMutants } from '../cli/commands/mutants.js';
import { DEFAULT_RUNS, DEFAULT_SEED } from '../cli/main.js';

describe('mutants of bpf/src', () => {
  it('are all killed on the kernel executor with the default budget', async () => {
    if (process.geteuid?.() !== 0) throw new Error('the mutation test runs the kernel executor and requires root: run it as root or with sudo');
    const report = await runMutants({ executor: 'kernel', why: 'test', seed: DEFAULT_SEED, runs: DEFAULT_RUNS });
    expect(report.mutants.map((m) => m.name)).toEqual(MUTANTS.map((m) => m.name));
    const survivors = report.mutants.filter((m) => !m.killed).map((m) => m.name);
    expect(survivors).toEqual([]);
    expect(report.score).toBe(1);
    for (const m of report.mutants) {
      expect(m.invariant, m.name).toBeTruthy();
      // 1-minimal counterexamples of these bugs are small: a handful of entries and operations.
      expect(m.counterexampleSize, m.name).toBeLessThanOrEqual(10);
    }
  }, 300_000);
});
