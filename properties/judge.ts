// Judging one case: the reference model's outcome set against the spec, and an executor's
// observations against that set. A judgement says which invariants the case exercised (for the
// per-invariant counts), what it looked like (for the statistics), and the failure found: the
// model's first in the spec's order, an executor run's the one broken from the earliest operation.

import type { Case, Observation } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import { OutcomeSetLimitError, type Executor, type ExecutorOutcome } from '../model/executor.js';
import { outcomes, type Trace } from '../model/impl/index.js';
import { lbSpreadDomain } from '../model/lb-domain.js';
import { invariants, SpecRun, type Invariant, type SpecContext } from '../model/spec/index.js';
import { divergence, sameData, sameTrace } from './observation.js';
import { describeCase, type CaseTraits } from './traits.js';
import { signatureOf, type Signature } from './signature.js';
import { COVERS_MODEL, compareSets, type ExploringVm, type SetSpec } from './exact-set.js';

/** The differential relation itself, named like an invariant so reports treat it alike. */
export const MATCHES_MODEL = {
  name: 'executor-matches-model',
  statement: 'Every observation of the real data path (peer or error, socket storage, km_socket membership, bytes on the wire) is one the reference model allows for that case.',
} as const;

export interface Failure {
  readonly invariant: string;
  readonly statement: string;
  readonly detail: string;
  /** Where the failure was seen: the reference model's own outcomes, or an executor's run. */
  readonly source: 'model' | 'executor';
  readonly observed?: readonly Observation[];
  /** The model's allowed observations at the first step where the observed trace left them. */
  readonly allowedAtStep?: { readonly step: number; readonly allowed: readonly Observation[] };
}

export interface Judgement {
  readonly failure: Failure | null;
  /** Names of invariants the case exercised (verdict not vacuous), and which of them failed. */
  readonly exercised: ReadonlySet<string>;
  readonly traits: CaseTraits;
  /** What makes this failure "the same bug" as others (null when the case passed). */
  readonly signature: Signature | null;
}

export interface JudgeOptions {
  readonly env: Environment;
  readonly executor?: Executor;
  /** Runs per case when its outcome may depend on the executor's draws (random load balancing; mayDraw), unless the executor draws the same values each run (Executor.sameDrawsEachRun). */
  readonly repeatsWhenRandom?: number;
  /** The invariants to hold the model and executor to (default: all of model/spec). */
  readonly invariants?: readonly Invariant[];
  /**
   * The VM on the objects under test (the executor itself on the VM): a case with random draws
   * is also held to exact outcome sets over every prandom value that picks a distinct endpoint,
   * so that a draw no run took, or an outcome no draw gives, shows (executor-covers-model).
   */
  readonly exact?: Pick<ExploringVm, 'outcomeSet' | 'outcomeSets'>;
  /** The model's outcomes of the case, when the caller has them already (the exploration's leaves). */
  readonly allowed?: readonly Trace[];
}

function contextFor(c: Case, env: Environment, observations: readonly Observation[], trace?: Trace): SpecContext {
  // Literals of one shape each (no conditional spread, which V8 copies slowly): an executor run has no passes.
  const steps = trace
    ? c.ops.map((op, i) => ({ op, observation: observations[i] as Observation, passes: trace.passes[i] ?? [] }))
    : c.ops.map((op, i) => ({ op, observation: observations[i] as Observation }));
  return new SpecRun(c, env, steps);
}

/** Checks every applicable invariant; returns the first violation and records exercised ones. */
function applyInvariants(list: readonly Invariant[], ctx: SpecContext, withPasses: boolean, exercised: Set<string>, source: Failure['source'], observed: readonly Observation[]): Failure | null {
  for (const inv of list) {
    if (inv.needs === 'passes' && !withPasses) continue;
    const v = inv.check(ctx);
    if (v.status === 'vacuous') continue;
    exercised.add(inv.name);
    if (v.status === 'violated') {
      return { invariant: inv.name, statement: inv.statement, detail: v.detail, source, observed };
    }
  }
  return null;
}

/** The invariant of the spec an executor's observations of `c` break (null: none) that heads the failure, as judgeRuns checks a run. */
export function executorSpecFailure(c: Case, observed: readonly Observation[], o: { readonly env: Environment; readonly invariants?: readonly Invariant[] }): Failure | null {
  const list = o.invariants ?? invariants;
  const ctx = contextFor(c, o.env, observed);
  const f = applyInvariants(list, ctx, false, new Set(), 'executor', observed);
  return f && earliestBroken(list, c, o.env, observed, f, ctx);
}

/**
 * The failure to head an executor's run with: of the invariants its observations break, the one
 * broken from the earliest operation on (the first in the list on a tie). When a run breaks two
 * rules, the later one is mostly a consequence of the first (a km_socket entry under a wrong key
 * leaves the socket out of the sockhash at its connect, then its send goes without a TLV), and
 * the list's order alone named the consequence. An invariant is broken from operation k on when
 * the case cut after each operation from k to the last breaks it, so a rule about what must
 * follow (broken by a cut before the operation that fulfils it) is dated by when it stays broken.
 * `first` is applyInvariants' failure (the first broken in list order) on the context `whole`.
 */
function earliestBroken(list: readonly Invariant[], c: Case, env: Environment, observed: readonly Observation[], first: Failure, whole: SpecContext): Failure {
  const at = list.findIndex((inv) => inv.name === first.invariant);
  if (at < 0) return first;
  const broken: { inv: Invariant; detail: string }[] = [];
  for (let i = at + 1; i < list.length; i++) {
    const inv = list[i]!;
    if (inv.needs === 'passes') continue;
    const v = inv.check(whole);
    if (v.status === 'violated') broken.push({ inv, detail: v.detail });
  }
  // Broken alone: nothing to date (the usual failing run).
  if (broken.length === 0) return first;
  broken.unshift({ inv: list[at]!, detail: first.detail });
  const cuts = new Map<number, SpecContext>();
  const cut = (k: number) => {
    let ctx = cuts.get(k);
    if (!ctx) cuts.set(k, (ctx = contextFor({ ...c, ops: c.ops.slice(0, k) }, env, observed.slice(0, k))));
    return ctx;
  };
  let best = broken[0]!;
  let bestFrom = Infinity;
  for (const b of broken) {
    let from = c.ops.length;
    while (from > 1 && b.inv.check(cut(from - 1)).status === 'violated') from--;
    if (from < bestFrom) {
      best = b;
      bestFrom = from;
    }
  }
  return best.inv === list[at] ? first : { invariant: best.inv.name, statement: best.inv.statement, detail: best.detail, source: 'executor', observed };
}

export async function judge(c: Case, opts: JudgeOptions): Promise<Judgement> {
  const m = judgeModel(c, opts);
  if (m.judgement) return m.judgement;
  return judgeRuns(m, await opts.executor!.run(new Array<Case>(m.repeats).fill(c)), opts);
}

/**
 * A case judged against the spec on the model's side: `judgement` is final when the model
 * failed or there is no executor; otherwise the executor must run the case `repeats` times and
 * judgeRuns finishes it (so that a batch of cases crosses to the executor at once).
 */
export interface ModelPart {
  readonly case: Case;
  readonly judgement: Judgement | null;
  readonly repeats: number;
  /**
   * The observations of the model's traces: all that judging the executor's runs needs. The
   * traces themselves (pass records, draws) are left behind, so that they die young while the
   * batch waits for the executor; a failure's signature computes them again.
   */
  readonly allowedObservations: readonly (readonly Observation[])[];
  readonly exercised: Set<string>;
  readonly traits: CaseTraits;
}

function withSignature(c: Case, j: Judgement, opts: JudgeOptions, allowed?: readonly Trace[]): Judgement {
  return j.failure ? { ...j, signature: signatureOf(c, j.failure, opts.env, allowed) } : j;
}

export function judgeModel(c: Case, opts: JudgeOptions): ModelPart {
  const allowed = opts.allowed ?? outcomes(c, opts.env);
  const list = opts.invariants ?? invariants;
  const exercised = new Set<string>();
  const traits = describeCase(c, allowed, opts.env);
  // A final judgement needs no observations: only a case left to the executor keeps them.
  const part = (judgement: Judgement | null, repeats: number): ModelPart => ({ case: c, judgement, repeats, allowedObservations: judgement ? [] : observationsOf(allowed), exercised, traits });
  // The model must refine the spec for every choice.
  for (const t of allowed) {
    const f = applyInvariants(list, contextFor(c, opts.env, t.observations, t), true, exercised, 'model', t.observations);
    if (f) return part(withSignature(c, { failure: f, exercised, traits, signature: null }, opts, allowed), 0);
  }
  if (!opts.executor) return part({ failure: null, exercised, traits, signature: null }, 0);
  return part(null, mayDraw(traits) && opts.executor.sameDrawsEachRun !== true ? Math.max(1, opts.repeatsWhenRandom ?? 3) : 1);
}

/**
 * Whether an executor's run of a case may depend on its prandom draws: the model draws, or a pass
 * meets an LB policy outside 0..2, which fails the pass by the model whatever the counts, while a
 * program that takes it for a known one (a narrower read of lb_policy, a default branch) picks an
 * endpoint by a draw: one run of such a case finds that bug only on some draws.
 */
function mayDraw(traits: CaseTraits): boolean {
  return traits.randomDraws > 0 || traits.paths.has('unknown-policy');
}

/** Whether judgeRuns holds the case to an exact outcome set when its runs pass (what a batch asks the VM for ahead). */
export function wantsExactSet(m: ModelPart, opts: JudgeOptions): boolean {
  return m.judgement === null && opts.exact !== undefined && m.traits.randomDraws > 0;
}

/**
 * Finishes a case's judgement from the executor's runs of it (`repeats` of them). `exactSet` is
 * the case's outcome set under EXACT_SET_OPTIONS when the caller asked for it ahead (null: too
 * many paths); otherwise judging enumerates it, if it needs it.
 */
export function judgeRuns(m: ModelPart, runs: readonly (readonly Observation[])[], opts: JudgeOptions, exactSet?: readonly ExecutorOutcome[] | null): Judgement {
  const { case: c, allowedObservations: allowed, exercised, traits } = m;
  const list = opts.invariants ?? invariants;
  const signature = null;
  exercised.add(MATCHES_MODEL.name);
  for (let r = 0; r < runs.length; r++) {
    const observed = runs[r]!;
    // A run deeply equal to an earlier (passing) one passes as it did: invariants are functions of the case and the trace.
    if (repeatsEarlier(runs, r)) continue;
    // A run identical to a trace of the model's, which judgeModel held to the same invariants, passes them too and
    // exercises none that trace did not: without the trace's passes an invariant only checks less. Most runs are
    // one: looked for first, it spares them the comparison that ignores errno names.
    const identical = allowed.find((t) => sameData(observed, t));
    const match = identical ?? allowed.find((t) => sameTrace(observed, t));
    if (!identical) {
      const ctx = contextFor(c, opts.env, observed);
      const f = applyInvariants(list, ctx, false, exercised, 'executor', observed);
      if (f) {
        const failure = earliestBroken(list, c, opts.env, observed, f, ctx);
        // The invariant that heads the failure was checked, and broke: the table counts it so.
        exercised.add(failure.invariant);
        return withSignature(c, { failure, exercised, traits, signature }, opts);
      }
    }
    if (!match) {
      const d = divergence(observed, allowed);
      const failure: Failure = {
        invariant: MATCHES_MODEL.name,
        statement: MATCHES_MODEL.statement,
        detail: `operation ${d.step + 1} observed something the model does not allow`,
        source: 'executor',
        observed,
        allowedAtStep: d,
      };
      return withSignature(c, { failure, exercised, traits, signature }, opts);
    }
  }
  if (wantsExactSet(m, opts)) {
    const f = exactSets(c, allowed, opts.exact!, { env: opts.env, invariants: list }, exactSet);
    if (f !== undefined) exercised.add(COVERS_MODEL.name);
    if (f) return withSignature(c, { failure: f, exercised, traits, signature }, opts);
  }
  return { failure: null, exercised, traits, signature };
}

/** The exact-set verdict of a case with draws; undefined when its draws are too many to enumerate. */
function exactSets(c: Case, allowed: readonly (readonly Observation[])[], vm: Pick<ExploringVm, 'outcomeSet'>, spec: SetSpec, ahead?: readonly ExecutorOutcome[] | null): Failure | null | undefined {
  const enumerate = (prandomDomain?: readonly number[]) => {
    try {
      return vm.outcomeSet(c, { ...EXACT_SET_OPTIONS, ...(prandomDomain ? { prandomDomain } : {}) });
    } catch (e) {
      if (e instanceof OutcomeSetLimitError) return undefined;
      throw e;
    }
  };
  const set = ahead === undefined ? enumerate() : (ahead ?? undefined);
  if (set === undefined) return undefined;
  const model = allowed.map((observations) => ({ observations }));
  const f = compareSets(c, model, set, spec);
  if (f?.invariant !== COVERS_MODEL.name) return f;
  // Before saying no draw gives an outcome, the draws of other uniform picks too; a case whose
  // wider set cannot be enumerated is left unjudged rather than blamed.
  const wider = enumerate(lbSpreadDomain(c));
  return wider === undefined ? undefined : compareSets(c, model, wider, spec);
}

/**
 * Runs of the VM per sampled case at most for its exact set, every combination of draws run
 * without pruning. Cases with more (long waypoint chains of draws, many connects) are left to the
 * exhaustive phase: of 865 drawn cases in 22,000, 151 were, and the rest cost a fifth of what
 * pruned enumerations of all cost (0.2 against 0.9 s; the pruned ones doubled a VM check's time).
 * A pruned enumeration of the others (at most 24-64 runs) took 711 -> 847 cases, but slowed
 * every later case of a long VM run by 40-65% (46 -> 64-80 us of main-thread CPU per case).
 */
const EXACT_MAX_RUNS = 16;

/**
 * Combinations a path's choice points may make before the case is given up, after the run that
 * shows them (ExploreOptions.forecast): the cases over the bound cost 0.8 ms each in 16 runs, 60% of
 * all exact sets. At twice EXACT_MAX_RUNS, the same 182 of 214 drawn cases in 5,500 keep their
 * sets (at EXACT_MAX_RUNS itself, a case of 15 outcomes lost its set) for a third of that cost.
 */
const EXACT_FORECAST = 2 * EXACT_MAX_RUNS;

/** How a sampled case's exact set is enumerated (over lbDomain first; lbSpreadDomain when that misses an outcome). */
export const EXACT_SET_OPTIONS = { maxRuns: EXACT_MAX_RUNS, prune: false, forecast: EXACT_FORECAST } as const;

function observationsOf(traces: readonly Trace[]): Array<readonly Observation[]> {
  const out: Array<readonly Observation[]> = [];
  for (const t of traces) out.push(t.observations);
  return out;
}

/** Whether run `r` is the same data as an earlier run (errno names included, which sameTrace does not compare). */
function repeatsEarlier(runs: readonly (readonly Observation[])[], r: number): boolean {
  for (let i = 0; i < r; i++) if (sameData(runs[i], runs[r])) return true;
  return false;
}
