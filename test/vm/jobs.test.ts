// The random phases split over worker threads (check --jobs) report what one job reports: on
// objects with a planted bug, the findings (phase, seed, replay path, shrunk case, hits), the
// statistics, the invariant counts and the VM's program coverage are the same with 1 and 3 jobs.
// The jobs run the compiled dist/cli/job-worker.js (npm run build:ts).

import { beforeAll, describe, expect, it } from 'vitest';
import { buildMutant } from '../../cli/mutants.js';
import { threadJobs } from '../../cli/jobs.js';
import { createVmExecutor, type VmExecutor } from '../../bpf/vm/executor.js';
import { runChecks, type RunOptions, type RunResult } from '../../properties/run.js';
import type { CoverageSummary } from '../../model/executor.js';
import type { ObjectPaths } from '../../model/executor.js';

let objects: ObjectPaths;
let vm: VmExecutor;
const runs: Array<{ r: RunResult; coverage: CoverageSummary }> = [];

beforeAll(async () => {
  objects = buildMutant('pick-ignores-count');
  vm = await createVmExecutor({ objects });
  const base = { seed: 8, runs: 400, states: 'both', maxFindings: 3 } as const;
  const opts: RunOptions = { ...base, env: vm.environment, executor: vm, targetCoverage: { paths: [] } };
  for (const jobs of [1, 3]) {
    vm.resetCoverage();
    const r = await runChecks(jobs === 1 ? opts : { ...opts, jobs: threadJobs({ ...base, executor: 'vm', objects }, jobs, { into: vm }) });
    runs.push({ r, coverage: vm.coverage() });
  }
  return () => vm.close();
});

const findings = (r: RunResult) => r.counterexamples.map((c) => ({ phase: c.phase, seed: c.seed, path: c.path, case: c.case, hits: c.hits, signature: c.signature.id, paths: c.paths }));

describe('jobs', () => {
  it('find what one job finds, with the same replay paths and hits', () => {
    const [one, three] = runs.map((x) => x.r) as [RunResult, RunResult];
    expect(one.counterexamples.length).toBeGreaterThan(0);
    expect(findings(three)).toEqual(findings(one));
    expect(three.unclustered).toBe(one.unclustered);
  });

  it('count the same cases, classes and invariants, and the same program coverage', () => {
    const [one, three] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(three.r.cases).toBe(one.r.cases);
    expect(JSON.stringify(three.r.statistics)).toBe(JSON.stringify(one.r.statistics));
    expect(three.r.invariants).toEqual(one.r.invariants);
    expect(three.r.targets).toEqual(one.r.targets);
    expect(three.coverage).toEqual(one.coverage);
    expect(one.coverage.executedInstructions).toBeGreaterThan(0);
  });
});
