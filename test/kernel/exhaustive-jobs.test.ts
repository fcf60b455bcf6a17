// `check --exhaustive --jobs N` (cli/exhaustive.ts runExhaustive): the exploration's top-level
// choices split over worker threads, each on a VM of its own, then finished as one. On a set of
// mutants with several findings, one job and three give the same verdict, counts, statistics and
// findings (their first leaves, hits and shrunk cases), and a thread's part is a real, disjoint
// part of the tree. Here rather than under test/vm: mutants are built into build/.

import { describe, expect, it } from 'vitest';
import { buildMutantSet } from '../../cli/mutants.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { Statistics } from '../../properties/statistics.js';
import { exhaustiveSetup, explorationJson, runExhaustive } from '../../cli/exhaustive.js';
import { exploreThread } from '../../cli/jobs.js';

describe('exhaustive exploration in jobs', () => {
  it('gives the report of one job, whatever the number of jobs', async () => {
    const objects = buildMutantSet(['endpoint-miss-next-group', 'port-map-keeps-port', 'tlv-repeated']);
    const vm = await createVmExecutor({ objects });
    const spec = { executor: 'vm' as const, objects, seed: 42, runs: 100, states: 'both' as const };
    try {
      const setup = await exhaustiveSetup('vm', vm, objects);
      const run = async (count: number) => {
        const statistics = new Statistics();
        const e = await runExhaustive(setup, { scope: 1, env: DEFAULT_ENVIRONMENT, statistics, ...(count > 1 ? { jobs: { count, spec } } : {}) });
        const verdict = { ...explorationJson(e), durationMs: 0 };
        return { verdict, failing: e.failingStates, exercised: e.exercised, statistics: statistics.toJSON(), findings: e.counterexamples };
      };
      const one = await run(1);
      expect(one.findings.length).toBeGreaterThan(1);
      expect(one.verdict.complete).toBe(true);
      const three = await run(3);
      expect(three).toEqual(one);

      // Job 2 of 3 alone: a part of the tree, and with the others the whole of it.
      const part = await exploreThread(spec, 1, 3, { scope: 1, shard: { index: 1, count: 3 } });
      expect(part.raw.states).toBeGreaterThan(0);
      expect(part.raw.states).toBeLessThan(one.verdict.states);
      expect(part.statistics.cases).toBe(part.raw.states);
    } finally {
      await vm.close();
    }
  }, 120_000);

  it('ends every part when one fails, with the error of the failed part', async () => {
    const vm = await createVmExecutor({});
    try {
      const setup = await exhaustiveSetup('vm', vm, {});
      // The thread's objects do not exist: its job fails at once, while this thread's part of
      // scope 3 would take hours; the run must end with the job's error instead.
      const spec = { executor: 'vm' as const, objects: { connect: '/nonexistent/cgroup_sock.o' }, seed: 42, runs: 100, states: 'both' as const };
      await expect(runExhaustive(setup, { scope: 3, env: DEFAULT_ENVIRONMENT, jobs: { count: 2, spec } })).rejects.toThrow(/nonexistent/);
    } finally {
      await vm.close();
    }
  }, 60_000);
});
