// The child process of the bench's --jobs figure: one run of `runs` cases on one executor with
// `jobs` jobs, from a cold start (modules, JIT, executor, job threads), as a user's `check --jobs N`
// starts; then its cases/s and, for the one-job run, the CPU per case of the main thread and of
// the kernel's harness worker, as one JSON line. A process of its own, so that one and N jobs
// start equally cold: in the bench's process the main thread is already warm, its job threads not.

import { readFileSync } from 'node:fs';
import { runChecks } from '../properties/run.js';
import { openExecutor, type ExecutorName } from './executors.js';
import { threadJobs } from './jobs.js';

/** CPU time (ms) a process has used, all its threads: utime + stime of /proc/PID/stat in USER_HZ (100/s). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const [name, runsText, jobsText, seedText] = process.argv.slice(2) as [ExecutorName, string, string, string];
const runs = Number(runsText);
const jobs = Number(jobsText);
const seed = Number(seedText);
const opened = await openExecutor(name, {}, 'bench');
try {
  const base = { seed, runs, states: 'both' as const, env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) };
  const pid = (opened.executor as { pid?: number } | undefined)?.pid;
  const worker0 = pid !== undefined ? processCpuMs(pid) : 0;
  const main0 = process.cpuUsage();
  const r = await runChecks(jobs > 1 ? { ...base, jobs: threadJobs({ executor: name, objects: {}, seed, runs, states: 'both' }, jobs) } : base);
  const main = process.cpuUsage(main0);
  const workerMs = pid !== undefined ? processCpuMs(pid) - worker0 : undefined;
  const cpuPerCaseUs = { main: (main.user + main.system) / r.cases, ...(workerMs !== undefined ? { worker: (1000 * workerMs) / r.cases } : {}) };
  process.stdout.write(JSON.stringify({ cases: r.cases, casesPerSecond: (1000 * r.cases) / Math.max(1, r.durationMs), cpuPerCaseUs }) + '\n');
} finally {
  await opened.executor?.close();
}
