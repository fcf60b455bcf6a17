// The bench's end-to-end figures, each against its own baseline in the same run: checked cases/s
// of a whole run (generation, model, executor, invariants) against the bare executor's cases/s on
// the same already-generated cases; cases/s with N jobs against one job, with the CPU per case of
// each process that says how far the cores let it scale; and the peak resident set size of a
// long model run, measured in a child process of its own.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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
  /**
   * CPU time per case of the one-job run, in microseconds: the main thread (generation, model,
   * judging, and the executor's parent side) and, for the kernel, the harness worker process.
   */
  readonly cpuPerCaseUs: { readonly main: number; readonly worker?: number };
  /** Cores the jobs share (os.availableParallelism). */
  readonly cores: number;
  /**
   * The most scaling these cores allow given the one-job run's CPU use: one job goes no faster
   * than its busiest process (main thread or worker) nor than the cores can run both; N jobs no
   * faster than N of them nor than the cores can run all of them.
   */
  readonly bound: number;
}

/** The scaling `jobs` jobs can reach on `cores` cores when one case costs `main` and `worker` CPU in two processes that overlap. */
export function scalingBound(main: number, worker: number, jobs: number, cores: number): number {
  const busiest = Math.max(main, worker);
  const total = main + worker;
  if (busiest <= 0) return jobs;
  const one = Math.min(1 / busiest, cores / total);
  const many = Math.min(jobs / busiest, cores / total);
  return many / one;
}

/** CPU time (ms) a process has used, all its threads: utime + stime of /proc/PID/stat in USER_HZ (100/s). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
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

/** The same run with one job and with `jobs` jobs, on one executor; the one-job run's CPU per case says what the cores allow. */
export async function jobsScaling(name: ExecutorName, runs: number, jobs: number, seed = 2): Promise<JobsScaling> {
  const opened = await openExecutor(name, {}, 'bench');
  try {
    const base = { seed, runs, states: 'both' as const, env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) };
    const pid = (opened.executor as { pid?: number } | undefined)?.pid;
    const worker0 = pid !== undefined ? processCpuMs(pid) : 0;
    const main0 = process.cpuUsage();
    const one = await runChecks(base);
    const main = process.cpuUsage(main0);
    const workerMs = pid !== undefined ? processCpuMs(pid) - worker0 : undefined;
    const many = await runChecks({ ...base, jobs: threadJobs({ executor: name, objects: {}, seed, runs, states: 'both' }, jobs) });
    if (many.cases !== one.cases) throw new KmeshCheckError('unsupported', `bench: ${jobs} jobs checked ${many.cases} cases, one job ${one.cases}: the jobs do not split the run`);
    const cpuPerCaseUs = { main: (main.user + main.system) / one.cases, ...(workerMs !== undefined ? { worker: (1000 * workerMs) / one.cases } : {}) };
    const cores = availableParallelism();
    return {
      executor: name,
      jobs,
      oneJobCasesPerSecond: rate(one),
      casesPerSecond: rate(many),
      scaling: rate(many) / rate(one),
      cpuPerCaseUs,
      cores,
      bound: scalingBound(cpuPerCaseUs.main, cpuPerCaseUs.worker ?? 0, jobs, cores),
    };
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
