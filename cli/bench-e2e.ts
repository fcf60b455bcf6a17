// The bench's end-to-end figures, each against its own baseline in the same run: checked cases/s
// of a whole run (generation, model, executor, invariants) against the bare executor's cases/s on
// the same already-generated cases; a long run from a cold process, as a CI job's run (its pace,
// the CPU per case of each thread and process, its peak resident set size); and cases/s with N
// jobs against that one job, with what the cores let it scale to.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { generatedCases, runChecks, type RunResult } from '../properties/run.js';
import { batchSizeFor } from '../properties/batch.js';
import { KmeshCheckError } from '../shared/errors.js';
import { packageRoot } from '../shared/package.js';
import type { KernelExecutor } from '../bpf/kernel/executor.js';
import { openExecutor, type ExecutorName } from './executors.js';
import { startRunThread } from './jobs.js';
import { withExactVm } from './exhaustive.js';

export interface EndToEnd {
  readonly cases: number;
  /** Cases checked after the cold run and before the warm runs (the same run again, untimed). */
  readonly warmUpCases: number;
  /** The median of the warm runs (a long run's pace): the run done again in the same process, modules loaded, code optimised. */
  readonly casesPerSecond: number;
  /** Each warm run's cases/s, in order (the first may still be optimising code). */
  readonly warmCasesPerSecond: readonly number[];
  /** The first run in a fresh process, JIT warm-up included (a short run's pace). */
  readonly coldCasesPerSecond: number;
  /** The executor alone on the run's generated cases (absent for the model). */
  readonly bareCasesPerSecond?: number;
  /** casesPerSecond / bareCasesPerSecond. */
  readonly ratioToBare?: number;
  /** The kernel's harness worker during the bare run, microseconds per case (WorkerInfo.timing). */
  readonly bareWorkerUs?: WorkerTime;
  /** A longer run from a cold process of its own (a CI job's pace). */
  readonly longRun?: LongRun;
}

/**
 * Where the harness worker's time per case went: parsing requests, handling them (of which
 * `shim`, inside kf_run: whole cases' syscalls and the C around them; the cases run operation by
 * operation make theirs in the other handling) and replying; unpacking the cases is handling.
 */
export interface WorkerTime {
  readonly parse: number;
  readonly handle: number;
  readonly shim: number;
  readonly reply: number;
}

export interface JobsScaling {
  readonly executor: ExecutorName;
  readonly jobs: number;
  readonly oneJobCasesPerSecond: number;
  readonly casesPerSecond: number;
  /** casesPerSecond / oneJobCasesPerSecond (thread and executor start-up included). */
  readonly scaling: number;
  /** Peak resident set size of the run with `jobs` jobs (all of them share one process), MB. */
  readonly maxRssMb: number;
  /** CPU time per case of the one-job run (cli/jobs-run.ts). */
  readonly cpuPerCaseUs: CpuPerCase;
  /** Cores the jobs share (os.availableParallelism). */
  readonly cores: number;
  /**
   * The most scaling these cores allow given the one-job run's CPU use: one job goes no faster
   * than its busiest process (main thread or worker) nor than the cores can run both; N jobs no
   * faster than N of them nor than the cores can run all of them.
   */
  readonly bound: number;
}

/**
 * CPU time per case of one job, in microseconds: its main thread (generation, model, judging, the
 * executor's parent side), the other threads of its process (V8's compiler and garbage collector,
 * which run beside the main thread), and, for the kernel, the harness worker process and its main
 * thread.
 */
export interface CpuPerCase {
  readonly main: number;
  readonly helpers: number;
  readonly worker?: number;
  readonly workerMain?: number;
  /** The VM's run thread (Executor.runInThread), not counted in `helpers`. */
  readonly runThread?: number;
}

/** One job's busiest serial thread (its main thread, the harness worker's or the VM's run thread) and all its CPU, per case. */
export function cpuShares(cpu: CpuPerCase): { serial: number; total: number } {
  return { serial: Math.max(cpu.main, cpu.workerMain ?? cpu.worker ?? 0, cpu.runThread ?? 0), total: cpu.main + cpu.helpers + (cpu.worker ?? 0) + (cpu.runThread ?? 0) };
}

/**
 * The scaling `jobs` jobs can reach on `cores` cores given one job's CPU per case: a job goes no
 * faster than its busiest serial thread (the main thread, or the harness worker's) and no job count
 * faster than the cores can run all the CPU a case costs (every job compiles and collects its own
 * heap, so the helpers' share does not shrink with more jobs).
 */
export function scalingBound(cpu: CpuPerCase, jobs: number, cores: number): number {
  const { serial, total } = cpuShares(cpu);
  if (serial <= 0) return jobs;
  const one = Math.min(1 / serial, cores / total);
  const many = Math.min(jobs / serial, cores / total);
  return many / one;
}

const rate = (r: RunResult) => (1000 * r.cases) / Math.max(1, r.durationMs);

/**
 * Warm runs of an end-to-end measurement, of which the median counts: V8 is still optimising the
 * checker's code during the first ones after the cold run (of 5,500 cases each, the fifth was
 * 15% faster than the first on the kernel, 20-30% on the VM, 50-65% on the model), so one warm
 * run measured mostly how far the compiler had got.
 */
export const WARM_RUNS = 5;

/**
 * Cases a process checks, the cold run's included, before its warm runs are timed. Five warm runs
 * of 5,500 cases right after the cold one still measured V8 optimising: the model's ran at 17-23k
 * cases/s, but at 40-45k once 55,000 cases had been checked, as a 2.2-million-case run from a
 * cold process does (38k, start included); the VM's at 11-13k, then 14-17k.
 */
export const WARM_UP_CASES = 50_000;

/** The median of `xs` (0 when there are none). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/**
 * One job of `runs` on `name`, cold, then again until `warmUp` cases have been checked, then
 * WARM_RUNS times timed (the same cases each time), then (for an executor) the same run's
 * generated cases on the executor alone, warm too, so that the ratio compares like with like.
 */
export async function endToEnd(name: ExecutorName, runs: number, o: { seed?: number; warmUp?: number } = {}): Promise<EndToEnd> {
  const { seed = 1, warmUp = WARM_UP_CASES } = o;
  const opened = await openExecutor(name, {}, 'bench');
  try {
    // One job, as check runs it (the VM's runs in a thread of their own on two cores or more).
    await startRunThread(opened.executor, 1);
    const base = { seed, runs, states: 'both' as const, env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) };
    // As check runs: cases with draws held to exact outcome sets on a VM (none on the model).
    const { cold, warmCasesPerSecond, warmUpCases } = await withExactVm(name, opened.executor, {}, async (exact) => {
      const o = { ...base, ...(exact ? { exact } : {}) };
      const first = await runChecks(o);
      let checked = first.cases;
      while (checked < warmUp) checked += (await runChecks(o)).cases;
      const warm: number[] = [];
      for (let i = 0; i < WARM_RUNS; i++) warm.push(rate(await runChecks(o)));
      return { cold: first, warmCasesPerSecond: warm, warmUpCases: checked - first.cases };
    });
    const casesPerSecond = median(warmCasesPerSecond);
    const coldCasesPerSecond = rate(cold);
    const r = { cases: cold.cases, warmUpCases, casesPerSecond, warmCasesPerSecond, coldCasesPerSecond };
    if (!opened.executor) return r;
    const cases = generatedCases(base);
    const worker = opened.executor as Partial<Pick<KernelExecutor, 'info'>>;
    const before = worker.info ? (await worker.info()).timing : null;
    const t = process.hrtime.bigint();
    // In the batches the run judged them in (the executor's own size), all under way at once: an
    // executor in another thread or process runs one while this one sends the next.
    const size = batchSizeFor({ executor: opened.executor });
    const batches: Array<Promise<unknown>> = [];
    for (let i = 0; i < cases.length; i += size) batches.push(opened.executor.run(cases.slice(i, i + size)));
    await Promise.all(batches);
    const bareCasesPerSecond = cases.length / (Number(process.hrtime.bigint() - t) / 1e9);
    const after = before && worker.info ? (await worker.info()).timing : null;
    const perCase = (k: keyof WorkerTime) => (1000 * (after![k] - before![k])) / cases.length;
    const bareWorkerUs = after ? { parse: perCase('parse'), handle: perCase('handle'), shim: perCase('shim'), reply: perCase('reply') } : undefined;
    return { ...r, bareCasesPerSecond, ratioToBare: casesPerSecond / bareCasesPerSecond, ...(bareWorkerUs ? { bareWorkerUs } : {}) };
  } finally {
    await opened.executor?.close();
  }
}

/** A run of `runs` from a cold process of its own, with one job or more (cli/jobs-run.ts). */
export interface LongRun {
  readonly executor: ExecutorName;
  readonly jobs: number;
  readonly runs: number;
  readonly cases: number;
  readonly casesPerSecond: number;
  /** CPU time per case of each thread and process (per case of the whole run, with several jobs). */
  readonly cpuPerCaseUs: CpuPerCase;
  /** Peak resident set size of the process (getrusage ru_maxrss), MB. */
  readonly maxRssMb: number;
}

/** The last JSON line of a bench child process (cli/jobs-run.ts), or a one-line error. */
function childRun<T>(file: string, args: readonly string[], what: string): T {
  const script = join(packageRoot(), 'dist/cli', file);
  if (!existsSync(script)) throw new KmeshCheckError('build', `dist/cli/${file} is missing: run npm run build:ts`);
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !line.startsWith('{')) throw new KmeshCheckError('worker', `the ${what} run ended with ${r.status ?? r.signal} and no figure`);
  return JSON.parse(line) as T;
}

/**
 * One run of `runs` on `name` with `jobs` jobs, in a fresh process, as a user's `check --runs
 * <runs> --jobs <jobs>` starts: modules, JIT, executor and job threads cold.
 */
export function longRun(name: ExecutorName, runs: number, jobs = 1, seed = 2): LongRun {
  const r = childRun<Omit<LongRun, 'executor' | 'jobs' | 'runs'>>('jobs-run.js', [name, String(runs), String(jobs), String(seed)], `${name} --jobs ${jobs}`);
  return { executor: name, jobs, runs, ...r };
}

/** The same run as `one` with `jobs` jobs; `one`'s CPU per case says what the cores allow. */
export function jobsScaling(one: LongRun, jobs: number): JobsScaling {
  const many = longRun(one.executor, one.runs, jobs);
  if (many.cases !== one.cases) throw new KmeshCheckError('unsupported', `bench: ${jobs} jobs checked ${many.cases} cases, one job ${one.cases}: the jobs do not split the run`);
  const cores = availableParallelism();
  return {
    executor: one.executor,
    jobs,
    oneJobCasesPerSecond: one.casesPerSecond,
    casesPerSecond: many.casesPerSecond,
    scaling: many.casesPerSecond / one.casesPerSecond,
    maxRssMb: many.maxRssMb,
    cpuPerCaseUs: one.cpuPerCaseUs,
    cores,
    bound: scalingBound(one.cpuPerCaseUs, jobs, cores),
  };
}
