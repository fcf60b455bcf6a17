// `kmesh-check bench`: the figures that matter, each measured in the same run as its baseline:
// kernel executor connects/s against a C program doing the same syscalls, VM runs/s, end-to-end
// checked cases/s per executor against the bare executor on the same cases and over a long run
// from a cold process, the scaling of --jobs, the peak memory of the long model run, and the
// median time to kill a mutant.

import { writeFileSync } from 'node:fs';
import { runKernelBench } from '../../bpf/kernel/bench.js';
import { runVmBench } from '../../bpf/vm/bench.js';
import { isPrivileged, type ExecutorName } from '../executors.js';
import { cpuShares, endToEnd, jobsScaling, longRun, median, type CpuPerCase, type EndToEnd, type JobsScaling, type LongRun } from '../bench-e2e.js';
import { availableParallelism } from 'node:os';
import { MUTANT_RUNS, runMutants } from './mutants.js';

export interface BenchReport {
  kernel?: { connectsPerSecond: number; baselineConnectsPerSecond: number; ratio: number };
  vm: { runsPerSecond: number; instructionsPerRun: number };
  endToEnd: Partial<Record<ExecutorName, EndToEnd>>;
  /** The same run with one job and with one job per core (at least 2), on the kernel (the VM unprivileged). */
  jobs?: JobsScaling;
  /**
   * The same on the model alone, where the TypeScript pipeline is the whole cost: on a run of CI
   * length (BenchOptions.jobsRuns), where every job's cold start is paid once.
   */
  jobsModel?: JobsScaling;
  /** The same on the model's long run (LONG_MODEL_FACTOR x longRuns cases), where the cold starts weigh. */
  jobsModelLongRun?: JobsScaling;
  /** Peak resident set size of the long model run (`cases` cases, a process of its own). */
  memory?: { cases: number; peakRssMb: number; seconds: number };
  /** The same of the model's run of CI length (BenchOptions.jobsRuns cases). */
  memoryCiRun?: { cases: number; peakRssMb: number; seconds: number };
  /**
   * The VM's run of CI length (half the model's runs: a VM case costs about three model cases)
   * with one job and with one per core, --jobs's default there; its `maxRssMb` is the peak memory
   * of that many jobs' heaps in one process.
   */
  jobsVm?: JobsScaling;
  mutants?: { medianTimeToKillMs: number; killed: number; total: number; survived: string[] };
  /** Bounded-exhaustive exploration on the VM: states/s, and the state count of scope 1. */
  exhaustive?: { scope: number; states: number; complete: boolean; seconds: number; statesPerSecond: number };
}

/** One job's CPU per case, thread by thread. */
function cpuText(c: CpuPerCase): string {
  const us = (x: number) => `${x.toFixed(0)} us`;
  const worker = c.worker !== undefined ? ` + harness worker ${us(c.worker)}${c.workerMain !== undefined ? ` (its main thread ${us(c.workerMain)})` : ''}` : '';
  const runThread = c.runThread !== undefined ? ` + the VM's run thread ${us(c.runThread)}` : '';
  return `main thread ${us(c.main)}${runThread} + V8's compiler and GC threads ${us(c.helpers)}${worker} of CPU per case`;
}

/** Why a --jobs figure is what it is: the one-job run's CPU per case, and the scaling the cores allow with it. */
export function scalingNote(j: JobsScaling): string {
  // All of one job's CPU over its busiest serial thread's: the cores one job could keep busy.
  const { serial, total } = cpuShares(j.cpuPerCaseUs);
  const busy = total / serial;
  const why =
    j.bound < Math.min(j.jobs, j.cores) - 0.05
      ? `one job's CPU is ${busy.toFixed(1)}x its busiest thread's, so ${j.cores} cores allow at most ${j.bound.toFixed(2)}x`
      : `${j.cores} cores allow up to ${j.bound.toFixed(2)}x`;
  return `one job: ${cpuText(j.cpuPerCaseUs)}; ${why}`;
}

function ciLengthRow(l: LongRun): [string, string, string] {
  return [
    `end to end, ${l.executor}, CI-length run, cases/s (1 job)`,
    l.casesPerSecond.toFixed(0),
    `${l.cases} cases from a cold process, ${(l.cases / l.casesPerSecond).toFixed(0)} s; ${cpuText(l.cpuPerCaseUs)}`,
  ];
}

function jobsRow(j: JobsScaling, name: ExecutorName, run: string): [string, string, string] {
  return [
    `--jobs ${j.jobs} over 1 job, ${name}`,
    j.scaling.toFixed(2),
    `${j.casesPerSecond.toFixed(0)} against ${j.oneJobCasesPerSecond.toFixed(0)} cases/s, ${run}, from a cold process; ${scalingNote(j)}`,
  ];
}

export interface BenchOptions {
  readonly json?: string;
  /** Single-connect cases per kernel round. */
  readonly cases: number;
  readonly mutants: boolean;
  /** Runs of each end-to-end measurement (default 5000). */
  readonly runs?: number;
  /** Runs of the VM's and kernel's long runs, the model's LONG_MODEL_FACTOR times as many (default 40000; 0 skips them, the kernel --jobs figure and the 220,000-case memory figure). */
  readonly longRuns?: number;
  /** Runs of the model's run of CI length, for its --jobs and memory figures (default JOBS_MODEL_RUNS; 0 skips it). */
  readonly jobsRuns?: number;
}

/** Runs of the model's run of CI length: about half a minute for one job on the project's machine. */
export const JOBS_MODEL_RUNS = 2_000_000;

/** The VM's run of CI length has this many times fewer runs than the model's. */
export const VM_CI_RUNS_DIVISOR = 2;

/** The model's long run is this many times longer than the executors': its cases cost a fifth as much. */
export const LONG_MODEL_FACTOR = 5;

export async function benchCommand(o: BenchOptions): Promise<number> {
  const log = (s: string) => process.stdout.write(s + '\n');
  const report: BenchReport = { vm: { runsPerSecond: 0, instructionsPerRun: 0 }, endToEnd: {} };
  const rows: Array<[string, string, string]> = [];
  const privileged = isPrivileged();
  if (privileged) {
    const k = await runKernelBench({ cases: o.cases, rounds: 3 });
    report.kernel = { connectsPerSecond: k.connectsPerSecond, baselineConnectsPerSecond: k.baselineConnectsPerSecond, ratio: k.ratio };
    rows.push(['kernel executor, checked connects/s', k.connectsPerSecond.toFixed(0), `C baseline ${k.baselineConnectsPerSecond.toFixed(0)}/s, ratio ${k.ratio.toFixed(2)} (goal <= 1.3)`]);
  } else {
    log('bench: not root, the kernel executor figures are skipped');
  }
  const vm = runVmBench({});
  report.vm = { runsPerSecond: vm.runsPerSecond, instructionsPerRun: vm.instructionsPerRun };
  rows.push(['userspace VM, connect4 runs/s', vm.runsPerSecond.toFixed(0), `${vm.instructionsPerRun} instructions per run, ${vm.engine}`]);
  const executors: ExecutorName[] = privileged ? ['model', 'vm', 'kernel'] : ['model', 'vm'];
  const runs = o.runs ?? 5000;
  for (const name of executors) {
    const e = await endToEnd(name, runs);
    report.endToEnd[name] = e;
    const w = e.bareWorkerUs;
    const worker = w
      ? `; its worker per case: ${w.shim.toFixed(0)} us in kf_run (whole cases' syscalls), ${(w.handle - w.shim).toFixed(0)} us other handling, ${w.parse.toFixed(0)} us parsing, ${w.reply.toFixed(0)} us replying`
      : '';
    const bare = e.bareCasesPerSecond !== undefined ? `, bare executor ${e.bareCasesPerSecond.toFixed(0)}/s on the same cases, ratio ${e.ratioToBare!.toFixed(2)}${worker}` : '';
    rows.push([
      `end to end, ${name}, checked cases/s (1 job)`,
      e.casesPerSecond.toFixed(0),
      `${e.cases} cases, seed 1, run again warm (after ${e.warmUpCases} more): median of ${e.warmCasesPerSecond.map((x) => x.toFixed(0)).join(', ')} (first run cold: ${e.coldCasesPerSecond.toFixed(0)}/s)${bare}`,
    ]);
  }
  // The --jobs figures: one job per core, at least two.
  const jobs = Math.max(2, availableParallelism());
  const longRuns = o.longRuns ?? 40_000;
  if (longRuns > 0) {
    for (const name of executors) {
      const l = longRun(name, name === 'model' ? LONG_MODEL_FACTOR * longRuns : longRuns);
      report.endToEnd[name] = { ...report.endToEnd[name]!, longRun: l };
      rows.push([`end to end, ${name}, long run, cases/s (1 job)`, l.casesPerSecond.toFixed(0), `${l.cases} cases from a cold process (as a CI job's run); ${cpuText(l.cpuPerCaseUs)}`]);
      if (name === 'model') {
        report.memory = { cases: l.cases, peakRssMb: l.maxRssMb, seconds: l.cases / l.casesPerSecond };
        rows.push(['peak RSS of the long model run (MB)', l.maxRssMb.toFixed(0), `${l.cases} cases, one job, a process of its own`]);
      }
      if (name === 'vm' && privileged) continue;
      const j = jobsScaling(l, jobs);
      if (name === 'model') report.jobsModelLongRun = j;
      else report.jobs = j;
      rows.push(jobsRow(j, name, 'the long run again'));
    }
  }
  const jobsRuns = o.jobsRuns ?? JOBS_MODEL_RUNS;
  if (jobsRuns > 0) {
    // Every job starts cold (a thread, its modules, its own optimised code): a run of CI length pays that once.
    const l = longRun('model', jobsRuns);
    report.memoryCiRun = { cases: l.cases, peakRssMb: l.maxRssMb, seconds: l.cases / l.casesPerSecond };
    rows.push(ciLengthRow(l));
    rows.push(['peak RSS of the CI-length model run (MB)', l.maxRssMb.toFixed(0), `${l.cases} cases, one job, a process of its own`]);
    report.jobsModel = jobsScaling(l, jobs);
    rows.push(jobsRow(report.jobsModel, 'model', 'the CI-length run again'));
    const v = longRun('vm', Math.round(jobsRuns / VM_CI_RUNS_DIVISOR));
    rows.push(ciLengthRow(v));
    const j = (report.jobsVm = jobsScaling(v, jobs));
    rows.push(jobsRow(j, 'vm', 'the CI-length run again'));
    rows.push([`peak RSS of the CI-length vm run, ${j.jobs} jobs (MB)`, j.maxRssMb.toFixed(0), `${v.cases} cases, the jobs' heaps in one process (one job: ${v.maxRssMb.toFixed(0)} MB)`]);
  }
  {
    const { createVmExecutor } = await import('../../bpf/vm/executor.js');
    const { explore } = await import('../../properties/explore.js');
    const vmx = await createVmExecutor({});
    try {
      const e = await explore({ scope: 1, env: vmx.environment, vm: vmx });
      const seconds = e.durationMs / 1000;
      const sps = e.states / Math.max(0.001, seconds);
      report.exhaustive = { scope: 1, states: e.states, complete: e.complete, seconds, statesPerSecond: sps };
      rows.push(['exhaustive on the VM, states/s', sps.toFixed(0), `scope 1 ${e.complete ? 'complete' : 'incomplete'}: ${e.states} states in ${seconds.toFixed(1)} s`]);
    } finally {
      await vmx.close();
    }
  }
  if (o.mutants) {
    const m = await runMutants({ executor: privileged ? 'kernel' : 'vm', why: 'bench', seed: 42, runs: MUTANT_RUNS });
    const killedMs = m.mutants.filter((x) => x.killed).map((x) => x.ms);
    const survived = m.mutants.filter((x) => !x.killed).map((x) => x.name);
    report.mutants = { medianTimeToKillMs: median(killedMs), killed: killedMs.length, total: m.mutants.length, survived };
    rows.push(['mutants, median time to kill (ms)', median(killedMs).toFixed(0), `${killedMs.length}/${m.mutants.length} killed${survived.length ? `; survived: ${survived.join(', ')}` : ''}`]);
  }
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  for (const [a, b, c] of rows) log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
  if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
  return 0;
}
