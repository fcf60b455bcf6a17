// Bounded-exhaustive exploration: every case within a scope, depth first over choice sequences.
// Each top-level skeleton (generators/exhaustive/skeletons.ts) roots a tree; a run replays a
// prefix of answers, extends it with the first alternative at every new choice point, and the
// next run backtracks to the deepest point with an untried alternative (as bpf/runner/choices.ts
// explore() does for prandom). Choice points are the reads of undecided map entries and fields,
// by the reference model and by the compiled program in the VM, against one Decisions record.
// At each leaf the model's outcome set and the VM's outcome set over every prandom value must be
// equal; the concrete case (what was decided) is then also judged on the kernel when asked.

import { createHash } from 'node:crypto';
import type { Case } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import type { Executor } from '../model/executor.js';
import { outcomes, OutcomeLimitError, type Trace } from '../model/impl/index.js';
import { invariants as allInvariants, type Invariant } from '../model/spec/index.js';
import { isConsistent } from '../model/control-plane/consistency.js';
import { Decisions, type Oracle } from '../generators/exhaustive/decisions.js';
import { lazyState } from '../generators/exhaustive/model-view.js';
import { describeSkeleton, operationsOf, skeletons, startOf, type Skeleton } from '../generators/exhaustive/skeletons.js';
import { prandomValues } from '../generators/exhaustive/classes.js';
import { inShard } from '../generators/shard.js';
import { nextPrefix } from '../bpf/runner/choices.js';
import { COVERS_MODEL, VM_MAX_RUNS, compareSets, exactVerdict, type ExploringVm } from './exact-set.js';
import { judge, MATCHES_MODEL, type Failure, type Judgement } from './judge.js';
import { caseSize, minimize } from './minimize.js';
import { startBatch } from './batch.js';
import type { Counterexample } from './run.js';
import type { Statistics } from './statistics.js';
import { addPaths } from './tally.js';
import { signatureOf, type Signature } from './signature.js';

export interface ExploreOptions {
  readonly scope: number;
  readonly env: Environment;
  /** The compiled program in the VM: its reads are choice points and its outcome sets are compared. */
  readonly vm?: ExploringVm;
  /** An executor every enumerated case is then judged on (the kernel), against the model's set. */
  readonly executor?: Executor;
  readonly invariants?: readonly Invariant[];
  readonly timeLimitMs?: number;
  readonly maxStates?: number;
  readonly shard?: { readonly index: number; readonly count: number };
  /** Only these top-level choices (indices into skeletons(scope)), e.g. for focused tests. */
  readonly onlySkeletons?: readonly number[];
  /**
   * 'model' lets only the reference model's reads decide the state (the VM then judges each
   * concrete case): what an enumeration driven by the model alone would reach. Default: both.
   */
  readonly readers?: 'model' | 'model+program';
  /** Stop at the first failing state (a mutation score needs no more); the verdict is then incomplete. */
  readonly stopAtFirst?: boolean;
  /** Shrunk findings at most (others are counted). */
  readonly maxFindings?: number;
  readonly onState?: (states: number) => void;
  /**
   * Polled before each leaf (Ctrl-C): the exploration then ends, incomplete, and its findings so
   * far are shrunk and reported. The event loop gets a turn every YIELD_MS so a signal handler runs.
   */
  readonly shouldStop?: () => boolean;
  /** Gets the traits of every enumerated case (for the report's statistics and coverage). */
  readonly statistics?: Statistics;
}

export interface ExplorationSummary {
  readonly scope: number;
  readonly states: number;
  readonly choicePoints: number;
  readonly complete: boolean;
  readonly truncated: string[];
}

export interface Exploration extends ExplorationSummary {
  readonly counterexamples: Counterexample[];
  /** Leaves whose verdict failed (before grouping and shrinking). */
  readonly failingStates: number;
  /** Per invariant (and exact-set relation), the enumerated cases that exercised it. */
  readonly exercised: Record<string, number>;
  readonly durationMs: number;
}

/** One finding of an enumeration before shrinking: its first leaf in path order and how many leaves it has. */
export interface RawFinding {
  readonly signature: Signature;
  readonly path: string;
  readonly case: Case;
  readonly failure: Failure;
  hits: number;
  /** The model paths its leaves left the model on, with how many leaves each (as a sampled finding's). */
  readonly paths: Record<string, number>;
  /** The invariants its leaves broke, with how many leaves each. */
  readonly invariants: Record<string, number>;
}

/** What one part of an exploration (a shard, a job) found: counts that add up and findings by kind. */
export interface RawExploration extends ExplorationSummary {
  readonly found: RawFinding[];
  readonly failingStates: number;
  readonly exercised: Record<string, number>;
  readonly durationMs: number;
}

/** Why an exploration stopped by shouldStop is incomplete. */
export const STOPPED = 'stopped by Ctrl-C';
/** How often a stoppable exploration lets the event loop run (a Ctrl-C handler, job messages). */
const YIELD_MS = 100;

export function phaseName(scope: number): string {
  return `exhaustive/scope-${scope}`;
}

class PrefixOracle implements Oracle {
  readonly taken: { size: number; index: number }[] = [];
  constructor(private readonly prefix: readonly number[]) {}
  choose(label: string, size: number): number {
    const pos = this.taken.length;
    const index = pos < this.prefix.length ? (this.prefix[pos] as number) : 0;
    if (index >= size) throw new Error(`exploration is not deterministic: choice ${pos} (${label}) has ${size} alternatives on replay, the path says ${index}`);
    this.taken.push({ size, index });
    return index;
  }
}

interface Leaf {
  readonly concrete: Case;
  /**
   * The model's outcomes, computed on the lazy view of the state: those of the concrete case too
   * (every entry the model read was decided the same; entries only the program read, the model
   * does not read on the concrete state either), so judging the concrete case reuses them.
   */
  readonly traces: readonly Trace[] | null;
  readonly failure: Failure | null;
  readonly truncated: string | null;
}

function runLeaf(sk: Skeleton, oracle: Oracle, opts: ExploreOptions, holder: { d: Decisions | null; maps?: { clear(): void } }): Leaf {
  const d = new Decisions(opts.scope, oracle, sk.deviations);
  holder.d = d;
  holder.maps?.clear();
  const ops = operationsOf(sk, d);
  const lazy: Case = { state: lazyState(d), kind: 'raw', ...startOf(sk), ops };
  let traces: Trace[];
  let failure: Failure | null = null;
  try {
    traces = outcomes(lazy, opts.env);
    if (opts.vm && opts.readers === 'model') {
      failure = exactVerdict(concreteOf(d, lazy), opts.env, opts.vm, opts.scope, opts.invariants);
    } else if (opts.vm) {
      const vmOut = opts.vm.outcomeSet(lazy, { prandomDomain: prandomValues(opts.scope), maxRuns: VM_MAX_RUNS });
      // The spec judges a difference on the concrete case: reading the lazy one would decide more of it.
      failure = compareSets(lazy, traces, vmOut, { env: opts.env, ...(opts.invariants ? { invariants: opts.invariants } : {}), concrete: () => concreteOf(d, lazy) });
    }
  } catch (e) {
    if (e instanceof OutcomeLimitError) return { concrete: concreteOf(d, lazy), traces: null, failure: null, truncated: `model outcome limit: ${e.message}` };
    if (e instanceof Error && /explore: more than/.test(e.message)) return { concrete: concreteOf(d, lazy), traces: null, failure: null, truncated: `vm outcome set above ${VM_MAX_RUNS} runs` };
    throw e;
  }
  return { concrete: concreteOf(d, lazy), traces, failure, truncated: null };
}

/** The leaf's case, raw when its maps are, or when km_manage is written with a value other than the ABI's 0. */
function concreteOf(d: Decisions, lazy: Case): Case {
  const state = d.toState();
  const consistent = isConsistent(state).length === 0 && (lazy.enrolmentWrite ?? 0) === 0;
  return { ...lazy, state, kind: consistent ? 'consistent' : 'raw' };
}

export function pathText(skeletonIndex: number, inner: readonly number[]): string {
  return [String(skeletonIndex), ...inner.map(String)].join('.');
}

/** Order of leaves: by top-level choice, then depth-first (the lexicographic order of the choices). */
export function comparePaths(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

export function parsePath(path: string): { skeleton: number; inner: number[] } {
  const parts = path.split('.').map((x) => Number(x));
  if (parts.length === 0 || parts.some((x) => !Number.isInteger(x) || x < 0)) throw new Error(`exhaustive path ${path} is not a list of non-negative integers separated by dots`);
  return { skeleton: parts[0] as number, inner: parts.slice(1) };
}

/** The concrete case at the end of a path (for replay). */
export function caseAtPath(scope: number, path: string, env: Environment, vm?: ExploringVm): Case {
  const { skeleton, inner } = parsePath(path);
  return leafAt(scope, skeleton, inner, env, vm).case;
}

/**
 * The leaf a prefix of answers leads to under top-level choice `skeleton` (first alternatives
 * after the prefix): its concrete case, the model's outcomes as the exploration computed them, and
 * the choices taken (nextPrefix gives the next leaf's).
 */
export function leafAt(
  scope: number,
  skeleton: number,
  prefix: readonly number[],
  env: Environment,
  vm?: ExploringVm,
): { case: Case; traces: readonly Trace[] | null; taken: readonly { size: number; index: number }[] } {
  const sk = skeletons(scope)[skeleton];
  if (!sk) throw new Error(`exhaustive path ${pathText(skeleton, prefix)}: scope ${scope} has no top-level choice ${skeleton}`);
  const holder: { d: Decisions | null; maps?: { clear(): void } } = { d: null };
  const maps = vm?.lazyMaps(() => holder.d as Decisions);
  if (maps) holder.maps = maps;
  try {
    const oracle = new PrefixOracle(prefix);
    const leaf = runLeaf(sk, oracle, { scope, env, ...(vm ? { vm } : {}) }, holder);
    return { case: leaf.concrete, traces: leaf.traces, taken: oracle.taken };
  } finally {
    maps?.detach();
  }
}

/** Judges a concrete case as the exploration did: model against spec, then exact sets on the VM. */
export async function judgeExhaustive(c: Case, opts: Pick<ExploreOptions, 'scope' | 'env' | 'vm' | 'executor' | 'invariants'>): Promise<Failure | null> {
  const j = await judge(c, { env: opts.env, ...(opts.invariants ? { invariants: opts.invariants } : {}) });
  if (j.failure) return j.failure;
  if (opts.vm) {
    const f = exactVerdict(c, opts.env, opts.vm, opts.scope, opts.invariants);
    if (f) return f;
  }
  if (opts.executor) {
    const k = await judge(c, { env: opts.env, executor: opts.executor, ...(opts.invariants ? { invariants: opts.invariants } : {}) });
    if (k.failure) return k.failure;
  }
  return null;
}

export async function explore(opts: ExploreOptions): Promise<Exploration> {
  return finishExploration([await exploreRaw(opts)], opts);
}

/**
 * The enumeration of explore() without its findings' signatures and shrinking, so that the parts
 * of one exploration (jobs) can be run apart and finished as one (finishExploration).
 */
export async function exploreRaw(opts: ExploreOptions): Promise<RawExploration> {
  const started = Date.now();
  const deadline = opts.timeLimitMs !== undefined ? started + opts.timeLimitMs : undefined;
  const maxStates = opts.maxStates ?? Number.POSITIVE_INFINITY;
  const list = opts.invariants ?? allInvariants;
  const all = skeletons(opts.scope);
  const shard = opts.shard ?? { index: 0, count: 1 };
  const truncated: string[] = [];
  const found = new Map<string, RawFinding>();
  const seen = new Set<string>();
  let states = 0;
  let choicePoints = 0;
  let failing = 0;
  const exercised: Record<string, number> = {};
  const count = (name: string) => {
    exercised[name] = (exercised[name] ?? 0) + 1;
  };
  const holder: { d: Decisions | null; maps?: { clear(): void } } = { d: null };
  const pendingKernel: { path: string; case: Case }[] = [];
  let lastYield = Date.now();
  const stopRequested = async (): Promise<boolean> => {
    if (!opts.shouldStop) return false;
    if (Date.now() - lastYield >= YIELD_MS) {
      await new Promise(setImmediate);
      lastYield = Date.now();
    }
    return opts.shouldStop();
  };

  const record = (path: string, c: Case, f: Failure) => {
    failing++;
    // Clustered like the random phases' findings (one bug is one finding across phases), each
    // leaf by its own signature: an invariant's detail alone ("some prandom draw gives an
    // observation the model does not allow") would put every exact-set failure in one finding.
    // Kept at the first leaf in path order, whatever order the leaves were judged in (kernel
    // verdicts come in batches; jobs).
    const signature = signatureOf(c, f, opts.env);
    const where = signature.path ?? '-';
    const had = found.get(signature.id);
    if (!had) found.set(signature.id, { signature, path, case: c, failure: f, hits: 1, paths: { [where]: 1 }, invariants: { [f.invariant]: 1 } });
    else {
      had.hits++;
      had.paths[where] = (had.paths[where] ?? 0) + 1;
      had.invariants[f.invariant] = (had.invariants[f.invariant] ?? 0) + 1;
      if (comparePaths(path, had.path) < 0) found.set(signature.id, { signature, path, case: c, failure: f, hits: had.hits, paths: had.paths, invariants: had.invariants });
    }
  };
  // One executor round trip for the pending cases (the runs judging them one by one would make).
  // The executor (another process) runs a batch while the exploration goes on to the next one;
  // a batch's verdicts are taken when the next is sent, or at the end: at the same point of the
  // walk whatever the executor's speed, so a stop at the first finding stays deterministic.
  let inFlight: { batch: { path: string; case: Case }[]; judged: Promise<Judgement[]> } | null = null;
  const takeVerdicts = async () => {
    if (!inFlight) return;
    const { batch, judged } = inFlight;
    inFlight = null;
    (await judged).forEach((j, i) => j.failure && record(batch[i]!.path, batch[i]!.case, j.failure));
  };
  const flushKernel = async () => {
    await takeVerdicts();
    const batch = pendingKernel.splice(0);
    if (batch.length === 0) return;
    const judged = startBatch(
      batch.map((p) => p.case),
      { env: opts.env, executor: opts.executor as Executor, invariants: list },
    ).finish();
    // Awaited at the next flush; until then a failure must not count as unhandled.
    judged.catch(() => undefined);
    inFlight = { batch, judged };
  };

  // Pruned runs of the VM's prandom exploration are exceptions: no stack traces for them here.
  const stackLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const maps = opts.readers === 'model' ? undefined : opts.vm?.lazyMaps(() => holder.d as Decisions);
  if (maps) holder.maps = maps;
  try {
    const mine = all.map((_, s) => s).filter((s) => inShard(s, shard) && (!opts.onlySkeletons || opts.onlySkeletons.includes(s)));
    // Under a time limit the top-level choices share the time in rounds: each unfinished one gets
    // an equal slice of what is left and resumes where its last slice stopped, so small subtrees
    // finish and big ones get the rest. Without a limit each is walked to its end in order.
    let queue: { s: number; prefix: number[] }[] = mine.map((s) => ({ s, prefix: [] }));
    let stop = false;
    while (queue.length > 0 && !stop) {
      const next: { s: number; prefix: number[] }[] = [];
      for (let k = 0; k < queue.length && !stop; k++) {
        const item = queue[k] as { s: number; prefix: number[] };
        const sk = all[item.s] as Skeleton;
        if (deadline !== undefined && Date.now() >= deadline) {
          for (const rest of [...queue.slice(k), ...next].sort((a, b) => a.s - b.s)) truncated.push(`time limit reached in ${describeSkeleton(all[rest.s] as Skeleton)}`);
          next.length = 0;
          stop = true;
          break;
        }
        const slice = deadline === undefined ? undefined : Date.now() + (deadline - Date.now()) / (queue.length - k + next.length);
        let prefix = item.prefix;
        for (;;) {
          if (states >= maxStates) {
            truncated.push(`stopped at ${maxStates} states`);
            stop = true;
            break;
          }
          if (opts.shouldStop && (await stopRequested())) {
            truncated.push(STOPPED);
            stop = true;
            break;
          }
          if (slice !== undefined && Date.now() >= slice) {
            next.push({ s: item.s, prefix });
            break;
          }
          const oracle = new PrefixOracle(prefix);
          const leaf = runLeaf(sk, oracle, { ...opts, invariants: list }, holder);
          const taken = oracle.taken;
          choicePoints += taken.length - prefix.length;
          const path = pathText(
            item.s,
            taken.map((t) => t.index),
          );
          if (leaf.truncated) {
            if (!truncated.includes(leaf.truncated)) truncated.push(leaf.truncated);
          } else {
            // A digest, not the case's text: distinct states are counted in memory that does not
            // grow with the size of each case (scope 3 kept gigabytes of case texts).
            const key = createHash('sha256').update(JSON.stringify(leaf.concrete)).digest('base64');
            if (!seen.has(key)) {
              seen.add(key);
              states++;
              opts.onState?.(states);
              // The model against the spec on every outcome of the concrete case.
              const m = await judge(leaf.concrete, { env: opts.env, invariants: list, ...(leaf.traces ? { allowed: leaf.traces } : {}) });
              opts.statistics?.add(m.traits);
              for (const name of m.exercised) count(name);
              if (opts.vm) {
                count(MATCHES_MODEL.name);
                count(COVERS_MODEL.name);
              }
              if (m.failure) record(path, leaf.concrete, m.failure);
              else if (leaf.failure) record(path, leaf.concrete, leaf.failure);
              else if (opts.executor) {
                pendingKernel.push({ path, case: leaf.concrete });
                if (pendingKernel.length >= 64) await flushKernel();
              }
            }
          }
          if (opts.stopAtFirst && found.size > 0) {
            truncated.push('stopped at the first finding');
            stop = true;
            break;
          }
          const following = nextPrefix(taken);
          if (following === null) break;
          prefix = following;
        }
      }
      queue = next;
    }
  } finally {
    maps?.detach();
    Error.stackTraceLimit = stackLimit;
  }
  if (opts.executor) {
    await flushKernel();
    await takeVerdicts();
  }

  return {
    scope: opts.scope,
    states,
    choicePoints,
    complete: truncated.length === 0,
    truncated,
    found: [...found.values()],
    failingStates: failing,
    exercised,
    durationMs: Date.now() - started,
  };
}

/**
 * The parts of one exploration as one: counts added, each finding at its first leaf in path
 * order over all parts with the hits of all, then the first `maxFindings` in path order shrunk.
 * The result does not depend on how the top-level choices were split.
 */
export async function finishExploration(parts: readonly RawExploration[], opts: ExploreOptions): Promise<Exploration> {
  const started = Date.now();
  const list = opts.invariants ?? allInvariants;
  const maxFindings = opts.maxFindings ?? 5;
  const byId = new Map<string, RawFinding>();
  const exercised: Record<string, number> = {};
  for (const p of parts) {
    for (const [name, n] of Object.entries(p.exercised)) exercised[name] = (exercised[name] ?? 0) + n;
    for (const f of p.found) {
      const had = byId.get(f.signature.id);
      if (!had) byId.set(f.signature.id, f);
      else {
        const sums = { hits: had.hits + f.hits, paths: addPaths(had.paths, f.paths), invariants: addPaths(had.invariants, f.invariants) };
        byId.set(f.signature.id, comparePaths(f.path, had.path) < 0 ? { ...f, ...sums } : { ...had, ...sums });
      }
    }
  }
  const found = [...byId.values()].sort((a, b) => comparePaths(a.path, b.path));
  const counterexamples: Counterexample[] = [];
  const judgeOpts = { scope: opts.scope, env: opts.env, invariants: list, ...(opts.vm ? { vm: opts.vm } : {}), ...(opts.executor ? { executor: opts.executor } : {}) };
  for (const f of found.slice(0, maxFindings)) {
    const fails = async (c: Case) => (await judgeExhaustive(c, judgeOpts))?.invariant === f.failure.invariant;
    const minimal = await minimize(f.case, fails, { maxTries: 2_000 });
    const again = (await judgeExhaustive(minimal.case, judgeOpts)) ?? f.failure;
    counterexamples.push({
      phase: phaseName(opts.scope),
      seed: 0,
      path: f.path,
      case: minimal.case,
      shrunkFrom: caseSize(f.case),
      size: caseSize(minimal.case),
      failure: again,
      minimizeTries: minimal.tries,
      signature: f.signature,
      hits: f.hits,
      paths: f.paths,
      invariantHits: f.invariants,
    });
  }
  const truncated = [...new Set(parts.flatMap((p) => p.truncated))];
  return {
    scope: opts.scope,
    states: parts.reduce((n, p) => n + p.states, 0),
    choicePoints: parts.reduce((n, p) => n + p.choicePoints, 0),
    complete: parts.every((p) => p.complete),
    truncated,
    counterexamples,
    failingStates: parts.reduce((n, p) => n + p.failingStates, 0),
    exercised,
    // The parts ran side by side: the longest, then the shrinking.
    durationMs: Math.max(0, ...parts.map((p) => p.durationMs)) + (Date.now() - started),
  };
}
