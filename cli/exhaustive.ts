// The exhaustive phase of `check` (and its replay): opens the VM the exploration needs (the
// executor itself for --executor vm, a VM on the same objects for the kernel, none for the model),
// runs properties/explore.ts and formats its verdict for the summary and the JSON report.

import type { Case } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import type { Executor, ObjectPaths } from '../model/executor.js';
import { KmeshCheckError } from '../shared/errors.js';
import { caseAtPath, explore, exploreRaw, finishExploration, judgeExhaustive, type Exploration, type ExplorationSummary, type ExploreOptions, type RawExploration } from '../properties/explore.js';
import { exploringVm, type ExploringVm } from '../properties/exact-set.js';
import { judge, type Failure } from '../properties/judge.js';
import { signatureOf, type Signature } from '../properties/signature.js';
import type { ExecutorName } from './executors.js';
import type { Statistics, StatisticsJson } from '../properties/statistics.js';
import { exploreThread, type JobSpec } from './jobs.js';
import { dnsPhaseRuns, type Counterexample } from '../properties/run.js';
import { caseSize } from '../properties/minimize.js';
import { isDatagram, skeletons } from '../generators/exhaustive/skeletons.js';
import { deviationsAt, scopeMeaning } from '../generators/exhaustive/classes.js';

/** Scope of the exhaustive phase of a default run, and its time budget. */
export const DEFAULT_RUN_SCOPE = 1;
export const DEFAULT_RUN_EXHAUSTIVE_MS = 20_000;
/** Scope of `check --exhaustive` without --scope: 1 completes in seconds, 2 in about a minute. */
export const DEFAULT_EXHAUSTIVE_SCOPE = 1;

export interface ExhaustiveSetup {
  readonly vm: ExploringVm | undefined;
  /** The executor enumerated cases are judged on afterwards (the kernel), if any. */
  readonly executor: Executor | undefined;
  /** Whether the datagram sequences run: as the dns phase, only for objects with cgroup/sendmsg4. */
  readonly datagram: boolean;
  close(): Promise<void>;
}

export async function exhaustiveSetup(name: ExecutorName, executor: Executor | undefined, objects: Partial<ObjectPaths>): Promise<ExhaustiveSetup> {
  const datagram = dnsPhaseRuns(executor);
  if (name === 'model') return { vm: undefined, executor: undefined, datagram, close: async () => {} };
  if (name === 'vm') {
    const vm = exploringVm(executor);
    if (!vm) throw new KmeshCheckError('unsupported', 'this VM executor offers no outcome sets or lazy maps, which the exhaustive phase needs');
    return { vm, executor: undefined, datagram, close: async () => {} };
  }
  const { createVmExecutor } = await import('../bpf/vm/executor.js');
  const vmExecutor = await createVmExecutor({ objects });
  return { vm: exploringVm(vmExecutor), executor, datagram, close: () => vmExecutor.close() };
}

/**
 * Runs `f` with an ExhaustiveSetup (closed after): its VM holds cases with random draws to exact
 * outcome sets (JudgeOptions.exact). On the kernel, objects the VM cannot load give none (undefined):
 * their cases are still judged on the kernel, one run at a time.
 */
export async function withSetup<T>(name: ExecutorName, executor: Executor | undefined, objects: Partial<ObjectPaths>, f: (setup: ExhaustiveSetup | undefined) => Promise<T>): Promise<T> {
  let setup: ExhaustiveSetup;
  try {
    setup = await exhaustiveSetup(name, executor, objects);
  } catch (e) {
    if (name === 'kernel') return f(undefined);
    throw e;
  }
  try {
    return await f(setup);
  } finally {
    await setup.close();
  }
}

/** withSetup for what needs only the VM of exact outcome sets: the executor itself on the VM, a VM beside the kernel, none on the model. */
export function withExactVm<T>(name: ExecutorName, executor: Executor | undefined, objects: Partial<ObjectPaths>, f: (exact: ExploringVm | undefined) => Promise<T>): Promise<T> {
  return withSetup(name, executor, objects, (setup) => f(setup?.vm));
}

/** The top-level choices to run: all, or all but the datagram sequences (ExhaustiveSetup.datagram). */
function skeletonsFor(setup: ExhaustiveSetup, scope: number): number[] | undefined {
  if (setup.datagram) return undefined;
  return skeletons(scope).flatMap((s, i) => (isDatagram(s) ? [] : [i]));
}

interface ExhaustiveRun {
  readonly scope: number;
  readonly env: Environment;
  readonly timeLimitMs?: number;
  readonly shard?: { readonly index: number; readonly count: number };
  readonly maxFindings?: number;
  readonly statistics?: Statistics;
  /** Ctrl-C: the exploration ends where it is, incomplete (ExploreOptions.shouldStop). */
  readonly shouldStop?: () => boolean;
  /** --stop-at-first: the exploration ends after the skeleton that found the first failure. */
  readonly stopAtFirst?: boolean;
}

function exploreOptions(setup: ExhaustiveSetup, o: ExhaustiveRun): ExploreOptions {
  const only = skeletonsFor(setup, o.scope);
  return {
    scope: o.scope,
    env: o.env,
    ...(only ? { onlySkeletons: only } : {}),
    ...(setup.vm ? { vm: setup.vm } : {}),
    ...(setup.executor ? { executor: setup.executor } : {}),
    ...(o.timeLimitMs !== undefined ? { timeLimitMs: o.timeLimitMs } : {}),
    ...(o.shard ? { shard: o.shard } : {}),
    ...(o.maxFindings !== undefined ? { maxFindings: o.maxFindings } : {}),
    ...(o.statistics ? { statistics: o.statistics } : {}),
    ...(o.shouldStop ? { shouldStop: o.shouldStop } : {}),
    ...(o.stopAtFirst ? { stopAtFirst: true } : {}),
  };
}

/** One job's part of an exploration (cli/job-worker.ts): enumerated, not yet finished. */
export function runExhaustivePart(setup: ExhaustiveSetup, o: ExhaustiveRun): Promise<RawExploration> {
  return exploreRaw(exploreOptions(setup, o));
}

/**
 * The exploration of `check`. With `jobs`, the top-level choices of the shard are split once more
 * (job j of J takes those of shard i + n*j of n*J: together exactly shard i's), J - 1 of them in
 * worker threads on executors of their own; the parts are finished as one, so the verdict and
 * findings are those of one job.
 */
export async function runExhaustive(setup: ExhaustiveSetup, o: ExhaustiveRun & { jobs?: { count: number; spec: JobSpec; into?: Executor } }): Promise<Exploration> {
  const opts = exploreOptions(setup, o);
  const count = o.jobs?.count ?? 1;
  if (!o.jobs || count <= 1) return explore(opts);
  const shard = o.shard ?? { index: 0, count: 1 };
  const part = (j: number) => ({ index: shard.index + shard.count * j, count: shard.count * count });
  const { spec, into } = o.jobs;
  const job = (j: number) => ({
    scope: o.scope,
    shard: part(j),
    ...(o.timeLimitMs !== undefined ? { timeLimitMs: o.timeLimitMs } : {}),
    ...(o.maxFindings !== undefined ? { maxFindings: o.maxFindings } : {}),
  });
  // One flag for all the parts: a part that fails sets it (jobThread), and the others, this
  // thread's too, end where they are instead of running to the end of their scope.
  const stop = new SharedArrayBuffer(4);
  const failed = new Int32Array(stop);
  const others = Array.from({ length: count - 1 }, (_, k) => exploreThread(spec, k + 1, count, job(k + 1), { ...(into ? { into } : {}), ...(o.shouldStop ? { shouldStop: o.shouldStop } : {}), stop }));
  const mine = exploreRaw({ ...opts, shard: part(0), shouldStop: () => Atomics.load(failed, 0) === 1 || o.shouldStop?.() === true }).catch((e: unknown) => {
    Atomics.store(failed, 0, 1);
    throw e;
  });
  const settled = await Promise.allSettled([mine, ...others]);
  const rejected = settled.find((p) => p.status === 'rejected');
  if (rejected) throw rejected.reason;
  const raws = [(settled[0] as PromiseFulfilledResult<RawExploration>).value];
  for (const p of settled.slice(1) as PromiseFulfilledResult<{ raw: RawExploration; statistics: StatisticsJson }>[]) {
    raws.push(p.value.raw);
    o.statistics?.merge(p.value.statistics);
  }
  return finishExploration(raws, opts);
}

/** `complete for scope N: S states, C choice points, T s` (or why it is not). */
export function formatExploration(e: Exploration): string {
  const figures = `${e.states} states, ${e.choicePoints} choice points, ${(e.durationMs / 1000).toFixed(1)} s`;
  const why = e.truncated.length > 3 ? `${e.truncated.slice(0, 3).join('; ')}; and ${e.truncated.length - 3} more` : e.truncated.join('; ');
  const head = e.complete ? `complete for scope ${e.scope}: ${figures}` : `incomplete for scope ${e.scope}: ${figures}; ${why}`;
  const findings = `${e.counterexamples.length} finding${e.counterexamples.length === 1 ? '' : 's'}${e.failingStates ? ` (${e.failingStates} failing states)` : ''}`;
  return `exhaustive: ${head}; ${findings}\n  scope ${e.scope}: ${scopeMeaning(e.scope)} (docs/spec.md, section 10)`;
}

export function explorationJson(e: Exploration): ExplorationSummary & { durationMs: number; findings: number; deviations: number; meaning: string } {
  return {
    scope: e.scope,
    states: e.states,
    choicePoints: e.choicePoints,
    complete: e.complete,
    truncated: e.truncated,
    durationMs: e.durationMs,
    findings: e.counterexamples.length,
    deviations: deviationsAt(e.scope),
    meaning: scopeMeaning(e.scope),
  };
}

/** The scope of an exhaustive phase name (exhaustive/scope-N), or null for another phase. */
export function exhaustiveScope(phase: string): number | null {
  const m = /^exhaustive\/scope-(\d+)$/.exec(phase);
  return m ? Number(m[1]) : null;
}

/** A saved case that still fails, as a counterexample: its replay line names `file`, its size is the file's. */
export function savedCounterexample(
  saved: { readonly phase: string; readonly seed: number; readonly path: string; readonly case: Case },
  j: { readonly failure: Failure; readonly signature: Signature },
  file: string,
): Counterexample {
  const size = caseSize(saved.case);
  return { phase: saved.phase, seed: saved.seed, path: saved.path, case: saved.case, shrunkFrom: size, size, failure: j.failure, minimizeTries: 0, signature: j.signature, hits: 0, caseFile: file };
}

/**
 * Judges a saved case as the phase that found it did: a case of the exhaustive phase by exact
 * outcome sets (model set == VM set, then the kernel if that is the executor), since a finding such
 * as executor-covers-model cannot show in one draw; any other case by judge() on the executor.
 */
export async function judgeSaved(
  saved: { readonly phase: string; readonly case: Case },
  o: {
    readonly name: ExecutorName;
    readonly executor: Executor | undefined;
    readonly objects: Partial<ObjectPaths>;
    readonly env: Environment;
    /** The run's own setup (check keeps one for all its phases); else one is opened for this case. */
    readonly setup?: ExhaustiveSetup;
  },
): Promise<{ failure: Failure | null; signature: Signature | null }> {
  const scope = exhaustiveScope(saved.phase);
  const sampled = scope === null || o.name === 'model';
  const judgeWith = async (setup: ExhaustiveSetup | undefined): Promise<{ failure: Failure | null; signature: Signature | null }> => {
    if (sampled) {
      const j = await judge(saved.case, { env: o.env, ...(o.executor ? { executor: o.executor } : {}), ...(setup?.vm ? { exact: setup.vm } : {}) });
      return { failure: j.failure, signature: j.signature };
    }
    const failure = await judgeExhaustive(saved.case, { scope, env: o.env, ...(setup?.vm ? { vm: setup.vm } : {}), ...(setup?.executor ? { executor: setup.executor } : {}) });
    return { failure, signature: failure ? signatureOf(saved.case, failure, o.env) : null };
  };
  if (o.setup) return judgeWith(o.setup);
  if (sampled) return withSetup(o.name, o.executor, o.objects, judgeWith);
  // A case of the exhaustive phase needs the VM: no kernel-only fallback.
  const setup = await exhaustiveSetup(o.name, o.executor, o.objects);
  try {
    return await judgeWith(setup);
  } finally {
    await setup.close();
  }
}

/** Replays an exhaustive path: the concrete case and its verdict. */
export async function replayExhaustive(setup: ExhaustiveSetup, phase: string, path: string, env: Environment): Promise<{ case: Case; failure: Failure | null }> {
  const scope = exhaustiveScope(phase);
  if (scope === null) throw new Error(`not an exhaustive phase: ${phase}`);
  const c = caseAtPath(scope, path, env, setup.vm);
  const failure = await judgeExhaustive(c, { scope, env, ...(setup.vm ? { vm: setup.vm } : {}), ...(setup.executor ? { executor: setup.executor } : {}) });
  return { case: c, failure };
}
