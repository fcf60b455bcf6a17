// `check --jobs N`: the random phases run as N parts at once: part 0 in the main thread, the
// others in a worker thread each (cli/job-worker.ts), each with its own executor. Parts are
// slices of the same case streams (properties/run.ts runRandomPart) and their tallies merge in
// run order, so what a run reports does not depend on N. The VM's coverage counts of each part are added to the main executor's.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Executor, ObjectPaths } from '../model/executor.js';
import { DNS_SHARE, type PartResult, type RunOptions, type StatesOption } from '../properties/run.js';
import { shardSize, type Shard } from '../generators/shard.js';
import type { RawExploration } from '../properties/explore.js';
import type { StatisticsJson } from '../properties/statistics.js';
import { KmeshCheckError, type KmeshCheckErrorCode } from '../shared/errors.js';
import { compiledScript } from '../shared/package.js';
import type { ExecutorName } from './executors.js';
import { tuneV8ForJobs } from '../shared/v8-tuning.js';

/** What a job needs to rebuild the run's options on its own executor (plain data: it crosses to a thread). */
export interface JobSpec {
  readonly executor: ExecutorName;
  readonly objects: Partial<ObjectPaths>;
  readonly seed: number;
  readonly runs: number;
  readonly states: StatesOption;
  readonly timeLimitMs?: number;
  readonly shard?: { readonly index: number; readonly count: number };
  readonly batchSize?: number;
  readonly repeatsWhenRandom?: number;
  /** Hold cases with draws to exact outcome sets on a VM, as the main thread's part does (RunOptions.exact). */
  readonly exact?: boolean;
}

/** A job's part of the exhaustive exploration instead of the random phases: top-level choices of `shard`. */
export interface ExploreJob {
  readonly scope: number;
  readonly shard: { readonly index: number; readonly count: number };
  readonly timeLimitMs?: number;
  readonly maxFindings?: number;
}

export interface JobData {
  readonly spec: JobSpec;
  readonly index: number;
  readonly count: number;
  readonly started: number;
  /** One Int32: 1 asks the job to stop (Ctrl-C, or another job failed). */
  readonly stop: SharedArrayBuffer;
  readonly explore?: ExploreJob;
}

export type JobMessage =
  | { readonly type: 'progress'; readonly done: number }
  | { readonly type: 'result'; readonly result: PartResult; readonly coverage?: unknown }
  | { readonly type: 'explored'; readonly raw: RawExploration; readonly statistics: StatisticsJson; readonly coverage?: unknown }
  | { readonly type: 'error'; readonly code: KmeshCheckErrorCode | null; readonly message: string };

type Finished = Extract<JobMessage, { type: 'result' | 'explored' }>;

/**
 * One job's worker thread: resolves with its final message (its coverage counts already added
 * to `into`), rejects with its error or when it ends without one; `shouldStop` is passed on.
 */
function jobThread(data: JobData, o: { shouldStop?: () => boolean; into?: Executor; progress?: (done: number) => void }): Promise<Finished> {
  const flag = new Int32Array(data.stop);
  const name = `job ${data.index + 1} of ${data.count}`;
  tuneV8ForJobs();
  return new Promise<Finished>((resolve, reject) => {
    const worker = new Worker(jobScript(), { workerData: data });
    const poll = setInterval(() => {
      if (o.shouldStop?.()) Atomics.store(flag, 0, 1);
    }, 100);
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      // The other jobs stop at their next case and close their executors.
      Atomics.store(flag, 0, 1);
      reject(e);
    };
    worker.on('message', (m: JobMessage) => {
      if (m.type === 'progress') o.progress?.(m.done);
      else if (m.type === 'error') fail(m.code ? new KmeshCheckError(m.code, m.message) : new Error(`${name}: ${m.message}`));
      else if (!settled) {
        settled = true;
        const into = o.into as { addCoverageCounts?: (c: unknown) => void } | undefined;
        if (m.coverage && into?.addCoverageCounts) into.addCoverageCounts(m.coverage);
        resolve(m);
      }
    });
    worker.on('error', fail);
    worker.on('exit', (code) => {
      clearInterval(poll);
      fail(new KmeshCheckError('worker', `${name} ended (exit code ${code}) without a result`));
    });
  });
}

/**
 * Part `index` of `count` of an exhaustive exploration in a worker thread, on its own executor:
 * what it enumerated (properties/explore.ts exploreRaw) and the traits of its cases. It ends where
 * it is once `stop` (shared by the parts: set when one of them fails) is set or `shouldStop`
 * (Ctrl-C) says so; `into` gets its VM coverage counts.
 */
export async function exploreThread(
  spec: JobSpec,
  index: number,
  count: number,
  job: ExploreJob,
  o: { into?: Executor; shouldStop?: () => boolean; stop?: SharedArrayBuffer } = {},
): Promise<{ raw: RawExploration; statistics: StatisticsJson }> {
  const m = await jobThread({ spec, index, count, started: Date.now(), stop: o.stop ?? new SharedArrayBuffer(4), explore: job }, o);
  if (m.type !== 'explored') throw new KmeshCheckError('worker', `job ${index + 1} of ${count} answered an exploration with ${m.type}`);
  return { raw: m.raw, statistics: m.statistics };
}

/** Runs below which a job would spend longer starting (thread, modules, executor) than checking. */
export const MIN_RUNS_PER_JOB = 1000;

/**
 * Cores one job keeps busy: beside its main thread, V8's compiler and garbage collector threads
 * (bench: the --jobs row's CPU per thread), and on the kernel the harness worker, which spends
 * about as much as the main thread and V8's threads together. Two jobs on two cores ran at
 * 0.84-0.93 of one job's pace on the kernel (bench's long run: 44,000 cases).
 */
export const CORES_PER_JOB = 2;

/**
 * Runs from which a job of the VM or the model, which run in the job's own thread, pays for a
 * core of its own. V8's threads are busy mostly while a job starts cold (its modules, its own
 * optimised code), so a long run's job keeps one core busy: two jobs on two cores ran at
 * 1.06-1.24x one job's pace over 220,000 cases, 1.40-1.77x over 1.1 million VM cases and
 * 1.70-1.82x over 2.2 million model cases.
 */
export const MIN_RUNS_PER_CORE_JOB = 100_000;

/**
 * The default of --jobs: one per CORES_PER_JOB cores, with at least MIN_RUNS_PER_JOB runs each;
 * on the VM and the model, one per core once each gets MIN_RUNS_PER_CORE_JOB runs.
 */
export function defaultJobs(runs = Infinity, executor?: ExecutorName): number {
  const cores = availableParallelism();
  const shared = Math.min(Math.floor(cores / CORES_PER_JOB), Math.floor(runs / MIN_RUNS_PER_JOB));
  const own = executor === 'vm' || executor === 'model' ? Math.min(cores, Math.floor(runs / MIN_RUNS_PER_CORE_JOB)) : 0;
  return Math.max(1, shared, own);
}

/**
 * Whether a run of `jobs` jobs gives its executor's runs a thread of their own (Executor.runInThread:
 * the VM's, as the kernel's run in its harness process): with one job, when a core is left beside
 * its main thread. The main thread then generates and judges the next batch while the VM runs the
 * last: its CPU per case fell from about 70 to 50 us, the run thread's being about 35 (bench). With a
 * job per core, the cores have no room for it.
 */
export function runsInThread(jobs: number): boolean {
  return jobs === 1 && availableParallelism() >= 2;
}

/**
 * Gives `executor`'s runs a thread of their own when a run of `jobs` jobs should (runsInThread),
 * with the heap growth of jobs, as its two heaps share one process as two jobs' do: one VM job
 * over 1.2 million cases peaked at 217 MB instead of 291, at 17.6k cases/s instead of 18.2k.
 */
export async function startRunThread(executor: Executor | undefined, jobs: number): Promise<void> {
  if (!executor?.runInThread || !runsInThread(jobs)) return;
  tuneV8ForJobs();
  await executor.runInThread();
}

/** Cases each job of a check's random phases checks, the dns phase's share included (for tuneV8ForRun). */
export function casesPerJob(runs: number, executor: ExecutorName, jobs = defaultJobs(runs, executor), shard?: Shard): number {
  return (shardSize(runs, shard) * (1 + DNS_SHARE)) / jobs;
}

/** The compiled job worker. */
const jobScript = () => compiledScript('cli/job-worker.js', 'job worker', { instead: 'use --jobs 1' });

/**
 * The RunOptions.jobs of a run: `count` - 1 worker threads besides the main thread. `into` (the main executor) gets each
 * job's VM coverage counts; `shouldStop` is polled and passed on.
 */
export function threadJobs(spec: JobSpec, count: number, o: { shouldStop?: () => boolean; into?: Executor } = {}): NonNullable<RunOptions['jobs']> {
  const stop = new SharedArrayBuffer(4);
  const flag = new Int32Array(stop);
  return {
    count,
    abort: () => Atomics.store(flag, 0, 1),
    async run(index, parts, started, progress) {
      const m = await jobThread({ spec, index, count: parts, started, stop }, { ...o, progress });
      if (m.type !== 'result') throw new KmeshCheckError('worker', `job ${index + 1} of ${parts} answered random phases with ${m.type}`);
      progress(m.result.tally.cases);
      return m.result;
    },
  };
}
