// The bench's end-to-end figures, each against its own baseline in the same run: checked cases/s
// of a whole run (generation, model, executor, invariants) against the bare executor's cases/s on
// the same already-generated cases; cases/s with N jobs against one job; and the peak resident
// set size of a long model run, measured in a child process of its own.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generatedCases, runChecks, type RunResult } from '../properties/run.js';
import { DEFAULT_BATCH_SIZE } from '../properties/batch.js';
import { KmeshCheckError } from '../shared/errors.js';
import { packageRoot } from '../shared/package.js';
import { openExecutor, type ExecutorName } from './executors.js';
import { threadJobs } from './jobs.js';

export interface EndToEnd {
  readonly cases: number;
  readonly casesPerSecond: number;
  /** The executor alone on the run's generated cases (absent for the model). */
  readonly bareCasesPerSecond?: number;
  /** casesPerSecond / bareCasesPerSecond. */
  readonly ratioToBare?: number;
}

export interface JobsScaling {
  readonly executor: ExecutorName;
  readonly jobs: number;
  readonly oneJobCasesPerSecond: number;
  readonly casesPerSecond: number;
  /** casesPerSecond / oneJobCasesPerSecond (thread and executor start-up included). */
  readonly scaling: number;
}

const rate = (r: RunResult) => (1000 * r.cases) / Math.max(1, r.durationMs);

/** One job of `runs` on `name`, then (for an executor) the same run's generated cases on the executor alone. */
export async function endToEnd(name: ExecutorName, runs: number, seed = 1): Promise<EndToEnd> {
  const opened = await openExecutor(name, {}, 'bench');
  try {
    const base = { seed, runs, states: 'both' as const, env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) };
    const r = await runChecks(base);
    const casesPerSecond = rate(r);
    if (!opened.executor) return { cases: r.cases, casesPerSecond };
    const cases = generatedCases(base);
    const t = process.hrtime.bigint();
    for (let i = 0; i < cases.length; i += DEFAULT_BATCH_SIZE) await opened.executor.run(cases.slice(i, i + DEFAULT_BATCH_SIZE));
    const bareCasesPerSecond = cases.length / (Number(process.hrtime.bigint() - t) / 1e9);
    return { cases: r.cases, casesPerSecond, bareCasesPerSecond, ratioToBare: casesPerSecond / bareCasesPerSecond };
  } finally {
    await opened.executor?.close();
  }
}

/** The same run with one job and with `jobs` jobs, on one executor. */
export async function jobsScaling(name: ExecutorName, runs: number, jobs: number, seed = 2): Promise<JobsScaling> {
  const opened = await openExecutor(name, {}, 'bench');
  try {
    const base = { seed, runs, states: 'both' as const, env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) };
    const one = await runChecks(base);
    const many = await runChecks({ ...base, jobs: threadJobs({ executor: name, objects: {}, seed, runs, states: 'both' }, jobs) });
    if (many.cases !== one.cases) throw new KmeshCheckError('unsupported', `bench: ${jobs} jobs checked ${many.cases} cases, one job ${one.cases}: the jobs do not split the run`);
    return { executor: name, jobs, oneJobCasesPerSecond: rate(one), casesPerSecond: rate(many), scaling: rate(many) / rate(one) };
  } finally {
    await opened.executor?.close();
  }
}

/** Peak RSS (MB) of a child process running `runs` model cases (cli/rss-run.ts). */
export function peakRss(runs: number): { cases: number; seconds: number; maxRssMb: number } {
  const script = join(packageRoot(), 'dist/cli/rss-run.js');
  if (!existsSync(script)) throw new KmeshCheckError('build', 'dist/cli/rss-run.js is missing: run npm run build:ts');
  const r = spawnSync(process.execPath, [script, String(runs)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !line.startsWith('{')) throw new KmeshCheckError('worker', `the memory run ended with ${r.status ?? r.signal} and no figure`);
  return JSON.parse(line) as { cases: number; seconds: number; maxRssMb: number };
}
