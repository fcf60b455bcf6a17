// The child process of the bench's long runs and --jobs figures: one run of `runs` cases on one
// executor with `jobs` jobs, from a cold start (modules, JIT, executor, job threads), as a user's
// `check --jobs N` starts; then its cases/s, the CPU per case of the main thread, of the threads V8
// runs beside it, of the VM's run thread and of the kernel's harness worker (its main thread apart), and the process's
// peak resident set size, as one JSON line. A process of its own, so that one and N jobs start
// equally cold (in the bench's process the main thread is already warm, its job threads not) and
// the peak memory is that run's alone.

import { runChecks } from '../properties/run.js';
import { openExecutor, type ExecutorName } from './executors.js';
import { casesPerJob, startRunThread, threadJobs } from './jobs.js';
import { withExactVm } from './exhaustive.js';
import { tuneV8, tuneV8ForRun } from '../shared/v8-tuning.js';
import { mainThreadCpuMs, processCpuMs, threadCpuMs } from './cpu-time.js';

const [name, runsText, jobsText, seedText] = process.argv.slice(2) as [ExecutorName, string, string, string];
const runs = Number(runsText);
const jobs = Number(jobsText);
const seed = Number(seedText);
// As a user's run is tuned (bin/kmesh-check.js, then the check command by its length).
tuneV8();
tuneV8ForRun(casesPerJob(runs, name, jobs));
const opened = await openExecutor(name, {}, 'bench');
try {
  // As check does with one job on a machine with a core beside it.
  await startRunThread(opened.executor, jobs);
  const tid = (opened.executor as { runThreadId?: number | null } | undefined)?.runThreadId ?? null;
  const base = { seed, runs, states: 'both' as const, env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) };
  const pid = (opened.executor as { pid?: number } | undefined)?.pid;
  const cpu = () => ({
    main: mainThreadCpuMs(process.pid),
    all: processCpuMs(process.pid),
    runThread: tid !== null ? threadCpuMs(process.pid, tid) : 0,
    worker: pid !== undefined ? processCpuMs(pid) : 0,
    workerMain: pid !== undefined ? mainThreadCpuMs(pid) : 0,
  });
  const before = cpu();
  // As check runs: cases with draws held to exact outcome sets on a VM, in every job.
  const r = await withExactVm(name, opened.executor, {}, (exact) =>
    runChecks({ ...base, ...(exact ? { exact } : {}), ...(jobs > 1 ? { jobs: threadJobs({ executor: name, objects: {}, seed, runs, states: 'both', exact: true }, jobs) } : {}) }),
  );
  const after = cpu();
  const us = (k: keyof typeof before) => (1000 * (after[k] - before[k])) / r.cases;
  const cpuPerCaseUs = {
    main: us('main'),
    helpers: us('all') - us('main') - us('runThread'),
    ...(tid !== null ? { runThread: us('runThread') } : {}),
    ...(pid !== undefined ? { worker: us('worker'), workerMain: us('workerMain') } : {}),
  };
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ cases: r.cases, casesPerSecond: (1000 * r.cases) / Math.max(1, r.durationMs), cpuPerCaseUs, maxRssMb }) + '\n');
} finally {
  await opened.executor?.close();
}
