// The checker's engine: fast-check drives generated cases through `judge`, in phases (state kind x
// case shape, then targeted generation toward under-covered classes) with seeds derived from one
// seed. A run does not stop at its first failure: failing cases are clustered by signature, and
// the first case of each cluster is shrunk by fast-check (keeping the signature), then made
// 1-minimal; each finding carries the phase, seed and path that replay it exactly.

import fc from 'fast-check';
import { checkAtPath } from './replay-path.js';
import type { Case, StateKind } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import type { Executor } from '../model/executor.js';
import { invariants as allInvariants, type Invariant } from '../model/spec/index.js';
import { caseArb, isConsistent } from '../generators/index.js';
import { judge, MATCHES_MODEL, type Failure, type JudgeOptions, type Judgement } from './judge.js';
import { COVERS_MODEL } from './exact-set.js';
import { caseSize, minimize } from './minimize.js';
import type { Signature } from './signature.js';
import { KmeshCheckError } from '../shared/errors.js';
import { classAim, COVERAGE_FRACTION, requiredClasses, seenOf, type Statistics } from './statistics.js';
import { runPhase } from './phase.js';
import { representative, Tally, type Cluster, type HitAt, type InvariantCount, type TallyJson } from './tally.js';
import { hasClass } from './traits.js';
import { HISTORY_TARGET_DRAWS } from './history-traits.js';
import { parseTargetPhaseId, targetedCaseArb, targetPhaseId } from '../generators/index.js';

/** Targeted cases per under-covered class at most: a base plus a share per missing case. */
export const TARGET_CAP_BASE = 32;
export const TARGET_CAP_PER_CASE = 8;

export type { Shape } from '../generators/cases.js';
import type { Shape } from '../generators/cases.js';
export type StatesOption = StateKind | 'both';

export interface Phase {
  readonly kind: StateKind;
  readonly shape: Shape;
  /** Share of the run budget. */
  readonly share: number;
}

/** Phases of a run: every requested state kind, mostly single connects, some sequences, some DNS cases (section 6). */
export function phasesFor(states: StatesOption, dns = true): Phase[] {
  const kinds: StateKind[] = states === 'both' ? ['consistent', 'raw'] : [states];
  return kinds.flatMap((kind) => [
    { kind, shape: 'single' as const, share: 0.8 / kinds.length },
    { kind, shape: 'sequence' as const, share: 0.2 / kinds.length },
    // On top of the connect phases' budget, so that they run exactly the cases they ran before.
    ...(dns ? [{ kind, shape: 'dns' as const, share: DNS_SHARE / kinds.length }] : []),
  ]);
}

/** The DNS phase's budget, as a share of --runs added to the connect phases' whole. */
export const DNS_SHARE = 0.1;

/**
 * Whether the DNS phase runs: always on the model; on an executor only when its objects have
 * cgroup/sendmsg4 (without it there is no DNS over sendto to check; a missing receive hook is a
 * finding the phase reports).
 */
export function dnsPhaseRuns(executor: Executor | undefined): boolean {
  return executor?.dnsHooks === undefined || executor.dnsHooks.includes('sendmsg4');
}

export function phaseId(p: Pick<Phase, 'kind' | 'shape'>): string {
  return `${p.kind}/${p.shape}`;
}

/** A deterministic seed per phase and shard, so shards split the seed space without overlap. */
export function phaseSeed(seed: number, p: Pick<Phase, 'kind' | 'shape'> | string, shard = 0): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const ch of `${typeof p === 'string' ? p : phaseId(p)}#${shard}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h | 0;
}

export interface Counterexample {
  readonly phase: string;
  readonly seed: number;
  readonly path: string;
  readonly case: Case;
  readonly shrunkFrom: number;
  readonly size: number;
  readonly failure: Failure;
  readonly minimizeTries: number;
  /** What makes it "the same bug" as other failing cases. */
  readonly signature: Signature;
  /** Generated cases of the run that failed with this signature (0 for a replayed saved failure). */
  readonly hits: number;
  /** Of `hits`, the states of the exhaustive phase (the rest are sampled cases); absent: all of them when `phase` is exhaustive, else none. */
  readonly exhaustiveHits?: number;
  /** The model paths where those cases left the model, with how many cases each. */
  readonly paths?: Readonly<Record<string, number>>;
  /**
   * The invariants those cases broke (each case the one heading its failure), with how many cases each: cases of
   * one signature may break other invariants than the shrunk one.
   */
  readonly invariantHits?: Readonly<Record<string, number>>;
  /**
   * The saved case file it was replayed from (replay --case): the file, not the seed and path
   * (which give the case as first generated, before shrinking or any edit), reproduces it.
   */
  readonly caseFile?: string;
  /** It did not fail when judged again alone (run.ts unreproduced): the case as generated, not shrunk. */
  readonly unreproduced?: true;
}

export interface RunOptions {
  readonly seed: number;
  readonly runs: number;
  readonly states: StatesOption;
  readonly env: Environment;
  readonly executor?: Executor;
  readonly timeLimitMs?: number;
  readonly shard?: { readonly index: number; readonly count: number };
  readonly invariants?: readonly Invariant[];
  readonly repeatsWhenRandom?: number;
  /** The VM on the objects under test, for the exact outcome sets of cases with draws (JudgeOptions.exact). */
  readonly exact?: JudgeOptions['exact'];
  /** Called after every generated (not shrinking) case. */
  readonly onCase?: (done: number, phase: string) => void;
  /** Stop after the first counterexample (for bisecting); default false: run the whole budget. */
  readonly stopAtFirst?: boolean;
  /** Distinct findings (signatures) shrunk and reported at most; default 10. */
  readonly maxFindings?: number;
  /** Checked between cases: true stops the run (Ctrl-C); what was found so far is still shrunk. */
  readonly shouldStop?: () => boolean;
  /**
   * After the random phases, generate toward every coverage class seen in fewer than
   * ceil(cases x fraction) cases (targeted generation), up to a cap per class.
   */
  readonly targetCoverage?: { readonly paths: readonly string[]; readonly fraction?: number };
  /** Cases judged per batch (default batchSizeFor of properties/batch.ts; 1: one at a time). */
  readonly batchSize?: number;
  /**
   * Runs the random phases as `count` parts at once (the CLI's --jobs: worker threads, each with
   * its own executor): part 0 runs here, part i > 0 through run(), which runs
   * runRandomPart(opts, { index: i, count }) and returns what it found; abort() stops them all.
   * Not used with stopAtFirst, which needs one ordered stream.
   */
  readonly jobs?: {
    readonly count: number;
    run(index: number, count: number, started: number, progress: (done: number) => void): Promise<PartResult>;
    abort(): void;
  };
}

/** What one part (job) of the random phases found. */
export interface PartResult {
  readonly tally: TallyJson;
  readonly interrupted: boolean;
  /** Stopped by shouldStop (Ctrl-C). */
  readonly stopped: boolean;
  /** Stopped early (Ctrl-C or the first failure with stopAtFirst): no targeted generation then. */
  readonly stop: boolean;
}

/** What targeted generation did for one under-covered class. */
export interface TargetResult {
  readonly class: string;
  /** Targeted cases run for it (each the best of up to TARGET_DRAWS ordinary cases). */
  readonly tried: number;
  readonly cap: number;
  /** Whether the class reached its requirement. */
  readonly met: boolean;
}

export type { InvariantCount } from './tally.js';

export interface RunResult {
  readonly cases: number;
  /** One shrunk representative per distinct finding, in the order they were first hit. */
  readonly counterexamples: Counterexample[];
  /** Failing cases whose signature came after --max-findings distinct ones (counted, not shrunk). */
  readonly unclustered: number;
  readonly invariants: InvariantCount[];
  readonly statistics: Statistics;
  readonly interrupted: boolean;
  /** Stopped by shouldStop (Ctrl-C), not by the budget or time limit. */
  readonly stopped: boolean;
  readonly durationMs: number;
  /** Targeted generation toward under-covered classes (empty when none was needed). */
  readonly targets: TargetResult[];
}

export function invariantTable(list: readonly Invariant[], withExecutor: boolean): InvariantCount[] {
  const rows = list.map((i) => ({ name: i.name, statement: i.statement, checked: 0, failed: 0 }));
  if (withExecutor) {
    rows.push({ name: MATCHES_MODEL.name, statement: MATCHES_MODEL.statement, checked: 0, failed: 0 });
    // Cases with random draws, when the run has a VM for their exact outcome sets (RunOptions.exact).
    rows.push({ name: COVERS_MODEL.name, statement: COVERS_MODEL.statement, checked: 0, failed: 0 });
  }
  return rows;
}

/** Whether a case fails as the same finding (same signature). */
/**
 * Whether a case fails with this signature; matching judgements are kept by case, so that a case
 * that failed once keeps its failure when a later run does not repeat it (the kernel draws its
 * own random numbers: a random-policy finding shows on some runs only).
 */
function failsWith(signature: string, opts: RunOptions, seen: WeakMap<Case, Judgement>) {
  return async (c: Case): Promise<boolean> => {
    const j = await judge(c, opts);
    const ok = j.signature !== null && j.signature.id === signature;
    if (ok) seen.set(c, j);
    return ok;
  };
}

/** The arbitrary of a phase: a state kind x shape, or targeted generation toward a class. */
function arbOf(phase: string, env: Environment): fc.Arbitrary<Case> {
  const t = parseTargetPhaseId(phase);
  if (t) return targetedCaseArb({ kind: t.kind, shape: t.shape, has: hasClass(t.cls, env), ...(t.cls.startsWith('history:') ? { draws: HISTORY_TARGET_DRAWS } : {}) });
  const m = /^(consistent|raw)\/(single|sequence|dns)$/.exec(phase);
  if (!m) throw new KmeshCheckError('unsupported', `unknown phase ${phase}: use consistent|raw / single|sequence|dns`);
  return caseArb({ kind: m[1] as StateKind, shape: m[2] as Shape });
}

/**
 * Shrinks one finding from the case at (seed, path): fast-check shrinks it keeping the signature,
 * then the 1-minimal pass. With `replayOnly`, the case at the path is taken as it is (that is how
 * a printed replay line reproduces a finding: its path already includes the shrink steps).
 */
async function shrinkFinding(
  phase: string,
  arb: fc.Arbitrary<Case>,
  seed: number,
  path: string,
  opts: RunOptions,
  signature: string | null,
  replayOnly: boolean,
): Promise<Omit<Counterexample, 'hits'> | null> {
  let want = signature;
  const seen = new WeakMap<Case, Judgement>();
  const property = fc.asyncProperty(arb, async (c: Case) => {
    const j = await judge(c, opts);
    if (!j.signature) return true;
    if (want === null) want = j.signature.id;
    if (j.signature.id === want) seen.set(c, j);
    return j.signature.id !== want;
  });
  const details = await checkAtPath(property, { seed, path, numRuns: 1, endOnFailure: replayOnly });
  if (!details.failed || !details.counterexample) return null;
  const shrunk = details.counterexample[0];
  const sig = want as string | null;
  if (sig === null) return null;
  const minimal = await minimize(shrunk, failsWith(sig, opts, seen), { consistencyViolations: isConsistent });
  let j = await judge(minimal.case, opts);
  if (!j.failure || !j.signature || j.signature.id !== sig) j = seen.get(minimal.case) ?? j;
  if (!j.failure || !j.signature) throw new Error(`phase ${phase}: a shrunk finding does not reproduce`);
  return {
    phase,
    seed,
    path: details.counterexamplePath ?? path,
    case: minimal.case,
    shrunkFrom: caseSize(shrunk),
    size: caseSize(minimal.case),
    failure: j.failure,
    minimizeTries: minimal.tries,
    signature: j.signature,
  };
}

/**
 * A finding whose case passes when judged again alone: what an earlier case left behind in the
 * executor decided it (a buggy object that withdraws the namespace from km_manage on a connect the
 * harness does not take for a control connect: the kernel executor keeps enrolment from case to
 * case). It is still a finding, reported with the case as generated, unshrunk, and why.
 */
async function unreproduced(arb: fc.Arbitrary<Case>, at: HitAt, cl: Cluster, opts: RunOptions, table: readonly InvariantCount[]): Promise<Omit<Counterexample, 'hits'>> {
  let generated: Case | null = null;
  await checkAtPath(
    fc.asyncProperty(arb, (c: Case) => {
      generated = c;
      return Promise.resolve(true);
    }),
    { seed: at.seed, path: at.path, numRuns: 1 },
  );
  const c = generated as Case | null;
  if (c === null) throw new Error(`phase ${at.phase}: no case at path ${at.path}`);
  const invariant = Object.entries(cl.invariants).sort((a, b) => b[1] - a[1])[0]?.[0] ?? MATCHES_MODEL.name;
  const statement = table.find((i) => i.name === invariant)?.statement ?? '';
  const detail = `failed in the run but not when run again alone: the cases before it left state behind in the ${opts.executor?.name ?? 'executor'} executor (the VM starts every case afresh: its run gives a case that fails alone)`;
  return {
    phase: at.phase,
    seed: at.seed,
    path: at.path,
    case: c,
    shrunkFrom: caseSize(c),
    size: caseSize(c),
    failure: { invariant, statement, detail, source: 'executor' },
    minimizeTries: 0,
    signature: cl.signature,
    unreproduced: true,
  };
}

/** The random phases of a run and their case counts (the part of them this shard runs). */
function planOf(opts: RunOptions): { phase: Phase; id: string; runs: number; seed: number }[] {
  const shardCount = opts.shard?.count ?? 1;
  const shard = opts.shard?.index ?? 0;
  const perShard = Math.ceil(opts.runs / shardCount);
  return phasesFor(opts.states, dnsPhaseRuns(opts.executor)).map((phase) => ({
    phase,
    id: phaseId(phase),
    runs: Math.max(1, Math.round(perShard * phase.share)),
    seed: phaseSeed(opts.seed, phase, shard),
  }));
}

/** The cases the random phases of a run generate, in run order (for measuring an executor on them). */
export function generatedCases(opts: Pick<RunOptions, 'seed' | 'runs' | 'states' | 'env' | 'executor' | 'shard'>): Case[] {
  return planOf(opts as RunOptions).flatMap((p) => fc.sample(arbOf(p.id, opts.env), { seed: p.seed, numRuns: p.runs }));
}

/**
 * Part `index` of `count` of the random phases: of every phase, the contiguous slice of its one
 * case stream that falls to it. Parts share the seeds, so the union of the parts is the cases one
 * part of one would run, whatever the count.
 */
export async function runRandomPart(opts: RunOptions, part: { index: number; count: number }, tally: Tally, started: number): Promise<Omit<PartResult, 'tally'>> {
  const plan = planOf(opts);
  const totalShare = plan.reduce((n, p) => n + p.phase.share, 0);
  const deadline = opts.timeLimitMs !== undefined ? started + opts.timeLimitMs : undefined;
  const o = { ...opts, invariants: opts.invariants ?? allInvariants };
  let interrupted = false;
  for (const [order, p] of plan.entries()) {
    if (deadline !== undefined && Date.now() >= deadline) {
      interrupted = true;
      break;
    }
    // A time limit is shared out like the runs, so that every phase (raw states too) gets its turn.
    const phaseDeadline = deadline === undefined ? undefined : Math.min(deadline, Date.now() + (opts.timeLimitMs! * p.phase.share) / totalShare);
    const start = Math.floor((p.runs * part.index) / part.count);
    const end = Math.floor((p.runs * (part.index + 1)) / part.count);
    const r = await runPhase({
      phase: p.id,
      order,
      arb: arbOf(p.id, opts.env),
      seed: p.seed,
      start,
      count: end - start,
      opts: o,
      tally,
      ...(phaseDeadline !== undefined ? { deadline: phaseDeadline } : {}),
    });
    interrupted ||= r.interrupted;
    if (r.stop) return { interrupted, stop: true, stopped: opts.shouldStop?.() === true };
  }
  return { interrupted, stop: false, stopped: false };
}

/**
 * The random phases as `jobs.count` parts at once: part 0 here, on this executor (no thread or
 * executor to start for it), the others through `jobs`; their tallies merge into `tally`. A
 * failing part stops the others; its error is thrown once all have ended.
 */
async function runParts(opts: RunOptions, jobs: NonNullable<RunOptions['jobs']>, tally: Tally, started: number): Promise<Omit<PartResult, 'tally'>> {
  const done = new Array<number>(jobs.count).fill(0);
  const progress = (i: number) => (n: number) => {
    done[i] = n;
    opts.onCase?.(
      done.reduce((a, b) => a + b, 0),
      `random (${jobs.count} jobs)`,
    );
  };
  let failed = false;
  const others = done.slice(1).map((_, k) =>
    jobs.run(k + 1, jobs.count, started, progress(k + 1)).catch((e: unknown) => {
      failed = true;
      throw e;
    }),
  );
  const mine = new Tally(invariantTable(opts.invariants ?? allInvariants, opts.executor !== undefined), progress(0));
  // Always a shouldStop here: checking it lets the event loop take the other parts' messages.
  const local = runRandomPart({ ...opts, shouldStop: () => failed || opts.shouldStop?.() === true }, { index: 0, count: jobs.count }, mine, started)
    .then((r) => ({ ...r, tally: mine.toJSON() }))
    .catch((e: unknown) => {
      jobs.abort();
      throw e;
    });
  const settled = await Promise.allSettled([local, ...others]);
  const rejected = settled.find((p) => p.status === 'rejected');
  if (rejected) throw rejected.reason;
  const parts = settled.map((p) => (p as PromiseFulfilledResult<PartResult>).value);
  for (const p of parts) tally.merge(p.tally);
  return { interrupted: parts.some((p) => p.interrupted), stopped: parts.some((p) => p.stopped), stop: parts.some((p) => p.stop) };
}

export async function runChecks(opts: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const list = opts.invariants ?? allInvariants;
  const tally = new Tally(invariantTable(list, opts.executor !== undefined), opts.onCase);
  const o = { ...opts, invariants: list };
  // Jobs rebuild the options from plain data: not for hand-picked invariants, nor for one ordered stream.
  const jobs = opts.jobs && opts.jobs.count > 1 && !opts.stopAtFirst && !opts.invariants ? opts.jobs : null;
  let random: Omit<PartResult, 'tally'>;
  if (jobs) random = await runParts(o, jobs, tally, started);
  else random = await runRandomPart(o, { index: 0, count: 1 }, tally, started);
  const interrupted = random.interrupted;
  let stopped = random.stopped;
  const statistics = tally.statistics;
  const shard = opts.shard?.index ?? 0;
  const phases = phasesFor(opts.states, dnsPhaseRuns(opts.executor));
  // Targeted generation toward classes the random phases left under-covered: a coverage
  // requirement then fails only when the generators cannot reach the class within the cap.
  let targets: TargetResult[] = [];
  if (!stopped && !(opts.stopAtFirst && tally.findings) && opts.targetCoverage) {
    const t = await targetClasses(
      opts,
      o,
      tally,
      requiredClasses(
        opts.targetCoverage.paths,
        phases.some((p) => p.shape === 'dns'),
      ),
      phases.length,
      shard,
    );
    targets = t.targets;
    if (t.stopped) stopped = true;
  }
  const kept = tally.kept(Math.max(1, opts.maxFindings ?? 10));
  const counterexamples: Counterexample[] = [];
  for (const cl of kept.clusters) {
    const at = representative(cl);
    const arb = arbOf(at.phase, opts.env);
    const cx = (await shrinkFinding(at.phase, arb, at.seed, at.path, o, cl.signature.id, false)) ?? (await unreproduced(arb, at, cl, opts, tally.invariants));
    counterexamples.push({ ...cx, hits: cl.hits, paths: cl.paths, invariantHits: cl.invariants });
  }
  return {
    cases: tally.cases,
    counterexamples,
    unclustered: kept.overflow,
    invariants: tally.invariants,
    statistics,
    interrupted,
    stopped,
    durationMs: Date.now() - started,
    targets,
  };
}

/**
 * Rounds of targeted generation at most. Each class's requirement is a share of all the cases,
 * targeted ones included, so the cases targeted at one class raise the aim of the others: at
 * 200,000 runs two DNS classes met in their turn fell short (210 and 213 of 216) once the later
 * classes' targeted DNS cases were counted. A round targets every class still short, from where
 * its cases left off; the aims move less in each.
 */
export const TARGET_ROUNDS = 4;

/** Targeted generation toward each of `classes` short of its aim (runChecks); a class whose cap ran out is not tried again. */
async function targetClasses(
  opts: RunOptions,
  judging: Parameters<typeof runPhase>[0]['opts'],
  tally: Tally,
  classes: readonly string[],
  order: number,
  shard: number,
): Promise<{ targets: TargetResult[]; stopped: boolean }> {
  const statistics = tally.statistics;
  const fraction = opts.targetCoverage?.fraction ?? COVERAGE_FRACTION;
  const done = new Map<string, { tried: number; cap: number; exhausted: boolean }>();
  let phasesRun = 0;
  for (let round = 0; round < TARGET_ROUNDS; round++) {
    let ran = false;
    for (const cls of classes) {
      // Aim at the rounded-up share, so that shards that each meet it also meet it summed by merge.
      const aim = () => classAim(statistics, cls, fraction);
      const deficit = aim() - seenOf(statistics, cls);
      const had = done.get(cls) ?? { tried: 0, cap: 0, exhausted: false };
      if (deficit <= 0 || had.exhausted) continue;
      if (opts.shouldStop?.()) return { targets: targetResults(done, statistics, fraction), stopped: true };
      const cap = TARGET_CAP_BASE + TARGET_CAP_PER_CASE * deficit;
      // History classes need a history within a case (a socket that connects again, an enrolment change): only sequences have one.
      const id = targetPhaseId(cls, opts.states, cls.startsWith('dns:') ? 'dns' : cls.startsWith('history:') ? 'sequence' : 'single');
      const r = await runPhase({
        phase: id,
        order: order + phasesRun++,
        arb: arbOf(id, opts.env),
        seed: phaseSeed(opts.seed, id, shard),
        // A later round goes on with the class's stream where the last one stopped.
        start: had.tried,
        count: cap,
        opts: judging,
        tally,
        until: () => seenOf(statistics, cls) >= aim(),
      });
      done.set(cls, { tried: had.tried + r.tried, cap: had.cap + cap, exhausted: r.tried >= cap && seenOf(statistics, cls) < aim() });
      ran = true;
      if (r.stop) return { targets: targetResults(done, statistics, fraction), stopped: opts.shouldStop?.() === true };
    }
    if (!ran) break;
  }
  return { targets: targetResults(done, statistics, fraction), stopped: false };
}

function targetResults(done: ReadonlyMap<string, { tried: number; cap: number }>, statistics: Statistics, fraction: number): TargetResult[] {
  return [...done].map(([cls, d]) => ({ class: cls, tried: d.tried, cap: d.cap, met: seenOf(statistics, cls) >= classAim(statistics, cls, fraction) }));
}

/**
 * Replays a finding from the phase, seed and path it printed: the case at that path (already
 * shrunk by fast-check), made 1-minimal again keeping its signature.
 */
export async function replayCounterexample(phase: Pick<Phase, 'kind' | 'shape'> | string, seed: number, path: string, opts: RunOptions): Promise<Counterexample | null> {
  const id = typeof phase === 'string' ? phase : phaseId(phase);
  const cx = await shrinkFinding(id, arbOf(id, opts.env), seed, path, { ...opts, invariants: opts.invariants ?? allInvariants }, null, true);
  return cx ? { ...cx, hits: 1 } : null;
}
