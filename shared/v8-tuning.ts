// V8 tuning of the checker's own processes. A run calls a few hundred small functions thousands
// of times each, and most of its CPU time in a short run (a 5,000-case check, the first seconds of
// a long one) went to TurboFan compiling them, again and again as types widened, with the default
// budget of callees inlined into each: a tenth of that budget cuts the compile work by a third, so
// a run checks cases sooner. A long run's optimised code pays for it (8% of a 440k-case VM run), so a
// run that long goes back to V8's budget before its checking code compiles (tuneV8ForRun). Set
// by the entry points (bin/kmesh-check.js, the bench's child processes, the kernel's harness
// worker; the jobs' heap growth by cli/jobs.ts as it starts job threads or the VM's run
// thread), never by modules a
// user's program may import; a value the user gives on node's command line wins (node refuses
// these flags in NODE_OPTIONS). Optimising later (twice V8's interrupt
// budget) made a 2,000-case kernel check 20% faster but the bench's warm runs 10-20% slower and long
// runs no faster, so V8's default stays.

import { setFlagsFromString } from 'node:v8';

/** Bytecode size of all the callees TurboFan inlines into one function (V8's default: 920). */
export const INLINE_BUDGET_FLAG = '--max-inlined-bytecode-size-cumulative';
export const INLINE_BUDGET = 100;
/** The flags the entry points set, with their values. */
export const TUNING: ReadonlyArray<readonly [string, number]> = [[INLINE_BUDGET_FLAG, INLINE_BUDGET]];

/** Whether node's command line already set `flag` (V8 accepts dashes or underscores; `--flag` alone or `--flag=value`). */
export function flagGiven(execArgv: readonly string[], flag: string): boolean {
  const names = [flag, `--${flag.slice(2).replaceAll('-', '_')}`];
  return execArgv.some((a) => names.some((n) => a === n || a.startsWith(`${n}=`)));
}

/** Applies the tuning to this process (and the worker threads it starts), but for the flags the user set. */
export function tuneV8(): void {
  setUnlessGiven(TUNING);
}

/** V8's own inline budget, which a long run's optimised code repays. */
export const DEFAULT_INLINE_BUDGET = 920;

/**
 * Cases each job of a run checks from which V8's own inline budget pays back its compile work.
 * Runs from a cold process, VM (cases/s, budget 100 against 920): 22k cases 8,991 against 8,157;
 * 110k 12,704 against 12,373; 440k 13,824 against 14,979 (its main thread 71 against 65 us a
 * case). The model: 22k 17.3k against 13.5k, 220k 34.2k against 35.3k. The kernel's main thread
 * at 330k: 48 against 44 us a case (its pace is the harness worker's).
 */
export const LONG_RUN_CASES = 200_000;

/** The flag a run whose jobs each check `casesPerJob` cases sets: V8's inline budget back for a long one, unless the user set it. */
export function runTuning(casesPerJob: number, execArgv: readonly string[]): readonly [string, number] | null {
  return casesPerJob >= LONG_RUN_CASES && !flagGiven(execArgv, INLINE_BUDGET_FLAG) ? [INLINE_BUDGET_FLAG, DEFAULT_INLINE_BUDGET] : null;
}

/** Applies runTuning to this process, before the run's checking code is compiled. */
export function tuneV8ForRun(casesPerJob: number): void {
  const flag = runTuning(casesPerJob, process.execArgv);
  if (flag) setFlagsFromString(`${flag[0]}=${flag[1]}`);
}

/**
 * How far past its live data a heap may grow before a full collection, once several jobs share
 * the process (cli/jobs.ts): 1 + percent/100, where V8 lets a heap whose collections are cheap
 * grow to 4x. A VM job keeps ~17 MB live, so the extra collections cost little: two VM jobs over
 * 1.1 million cases peaked at 296-314 MB (39-46k cases/s) with V8's default, 218-229 MB (43-44k) so.
 * One job keeps V8's default: the kernel's lost 5% (its collector threads compete with the
 * harness worker for the cores), for 30 MB; but a VM job with its run thread holds two heaps
 * too (217 MB against 291 over 1.2 million cases, 3% of its pace).
 */
export const JOBS_HEAP_GROWING: ReadonlyArray<readonly [string, number]> = [['--heap-growing-percent', 100]];

/** Applies JOBS_HEAP_GROWING to the process (its flags are read at each collection), unless the user set it. */
export function tuneV8ForJobs(): void {
  setUnlessGiven(JOBS_HEAP_GROWING);
}

function setUnlessGiven(flags: ReadonlyArray<readonly [string, number]>): void {
  for (const [flag, value] of flags) if (!flagGiven(process.execArgv, flag)) setFlagsFromString(`${flag}=${value}`);
}
