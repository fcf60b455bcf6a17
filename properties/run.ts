// The checker's engine: fast-check drives generated cases through `judge`, in phases (state kind x
// case shape, then targeted generation toward under-covered classes) with seeds derived from one
// seed. A run does not stop at its first failure: failing cases are clustered by signature, and
// the first case of each cluster is shrunk by fast-check (keeping the signature), then made
// 1-minimal; each finding carries the phase, seed and path that replay it exactly.

import fc from 'fast-check';
import type { Case, StateKind } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import type { Executor } from '../model/executor.js';
import { invariants as allInvariants, type Invariant } from '../model/spec/index.js';
import { caseArb, isConsistent } from '../generators/index.js';
import { judge, MATCHES_MODEL, type Failure, type Judgement } from './judge.js';
import { caseSize, minimize } from './minimize.js';
import type { Signature } from './signature.js';
import { KmeshCheckError } from '../shared/errors.js';
import { classAim, COVERAGE_FRACTION, requiredClasses, seenOf, Statistics } from './statistics.js';
import { hasClass } from './traits.js';
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
  /** The model paths where those cases left the model, with how many cases each. */
  readonly paths?: Readonly<Record<string, number>>;
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

export interface InvariantCount {
  readonly name: string;
  readonly statement: string;
  checked: number;
  failed: number;
}

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

function invariantTable(list: readonly Invariant[], withExecutor: boolean): InvariantCount[] {
  const rows = list.map((i) => ({ name: i.name, statement: i.statement, checked: 0, failed: 0 }));
  if (withExecutor) rows.push({ name: MATCHES_MODEL.name, statement: MATCHES_MODEL.statement, checked: 0, failed: 0 });
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
  if (t) return targetedCaseArb({ kind: t.kind, shape: t.shape, has: hasClass(t.cls, env) });
  const m = /^(consistent|raw)\/(single|sequence|dns)$/.exec(phase);
  if (!m) throw new KmeshCheckError('unsupported', `unknown phase ${phase}: use consistent|raw / single|sequence|dns`);
  return caseArb({ kind: m[1] as StateKind, shape: m[2] as Shape });
}

/** A failing case found while generating: the first of its signature. */
interface Cluster {
  readonly signature: Signature;
  readonly phase: string;
  readonly seed: number;
  /** fast-check path of the generated case (its run index). */
  readonly path: string;
  hits: number;
  /** Model paths the hits left the model on. */
  readonly paths: Record<string, number>;
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
  const details = await fc.check(property, { seed, path, numRuns: 1, endOnFailure: replayOnly });
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

/** Runs one phase of generated cases; failing ones go to `found` (keyed by signature). */
async function runPhase(
  phase: string,
  arb: fc.Arbitrary<Case>,
  seed: number,
  runs: number,
  opts: RunOptions,
  record: (j: Judgement, phase: string) => void,
  deadline: number | undefined,
  found: Map<string, Cluster>,
  overflow: { count: number },
  until?: () => boolean,
): Promise<{ interrupted: boolean; stop: boolean; tried: number }> {
  let index = 0;
  let stop = false;
  let done = false;
  let tried = 0;
  let lastYield = Date.now();
  const maxFindings = Math.max(1, opts.maxFindings ?? 10);
  const property = fc.asyncProperty(arb, async (c: Case) => {
    const i = index++;
    if (stop || done || opts.shouldStop?.()) {
      stop = !done;
      return false;
    }
    if (until?.()) {
      done = true;
      return false;
    }
    tried++;
    // Executors that never wait on I/O (model, VM) would keep signals (Ctrl-C) from ever being
    // handled: let the event loop run now and then.
    if (opts.shouldStop && Date.now() - lastYield > 100) {
      await new Promise<void>((r) => setImmediate(r));
      lastYield = Date.now();
      if (opts.shouldStop()) {
        stop = true;
        return false;
      }
    }
    const j = await judge(c, opts);
    record(j, phase);
    if (j.signature) {
      const cl = found.get(j.signature.id);
      const where = j.signature.path ?? '-';
      if (cl) {
        cl.hits++;
        cl.paths[where] = (cl.paths[where] ?? 0) + 1;
      } else if (found.size < maxFindings) found.set(j.signature.id, { signature: j.signature, phase, seed, path: String(i), hits: 1, paths: { [where]: 1 } });
      else overflow.count++;
      if (opts.stopAtFirst) {
        stop = true;
        return false;
      }
    }
    return true;
  });
  const params: fc.Parameters<[Case]> = {
    seed,
    numRuns: Math.max(1, runs),
    endOnFailure: true,
    ...(deadline !== undefined ? { interruptAfterTimeLimit: Math.max(1, deadline - Date.now()) } : {}),
    markInterruptAsFailure: false,
  };
  const details = await fc.check(property, params);
  return { interrupted: details.interrupted, stop: stop || opts.shouldStop?.() === true, tried };
}

export async function runChecks(opts: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const list = opts.invariants ?? allInvariants;
  const table = invariantTable(list, opts.executor !== undefined);
  const byName = new Map(table.map((r) => [r.name, r]));
  const statistics = new Statistics();
  let cases = 0;
  const record = (j: Judgement, phase: string) => {
    cases++;
    statistics.add(j.traits, phase.endsWith('/dns'));
    for (const name of j.exercised) {
      const row = byName.get(name);
      if (row) row.checked++;
    }
    if (j.failure) {
      const row = byName.get(j.failure.invariant);
      if (row) row.failed++;
    }
    opts.onCase?.(cases, phase);
  };
  const deadline = opts.timeLimitMs !== undefined ? started + opts.timeLimitMs : undefined;
  const shardCount = opts.shard?.count ?? 1;
  const shard = opts.shard?.index ?? 0;
  const perShard = Math.ceil(opts.runs / shardCount);
  const found = new Map<string, Cluster>();
  const overflow = { count: 0 };
  const o = { ...opts, invariants: list };
  let interrupted = false;
  let stopped = false;
  const phases = phasesFor(opts.states, dnsPhaseRuns(opts.executor));
  const totalShare = phases.reduce((n, p) => n + p.share, 0);
  for (const phase of phases) {
    if (deadline !== undefined && Date.now() >= deadline) {
      interrupted = true;
      break;
    }
    // A time limit is shared out like the runs, so that every phase (raw states too) gets its turn.
    const phaseDeadline = deadline === undefined ? undefined : Math.min(deadline, Date.now() + (opts.timeLimitMs! * phase.share) / totalShare);
    const id = phaseId(phase);
    const r = await runPhase(id, arbOf(id, opts.env), phaseSeed(opts.seed, phase, shard), Math.round(perShard * phase.share), o, record, phaseDeadline, found, overflow);
    interrupted ||= r.interrupted;
    if (r.stop) {
      stopped = opts.shouldStop?.() === true;
      break;
    }
  }
  // Targeted generation toward classes the random phases left under-covered: a coverage
  // requirement then fails only when the generators cannot reach the class within the cap.
  const targets: TargetResult[] = [];
  if (!stopped && !(opts.stopAtFirst && found.size) && opts.targetCoverage) {
    const fraction = opts.targetCoverage.fraction ?? COVERAGE_FRACTION;
    const kind = opts.states;
    for (const cls of requiredClasses(
      opts.targetCoverage.paths,
      phases.some((p) => p.shape === 'dns'),
    )) {
      // Aim at the rounded-up share, so that shards that each meet it also meet it summed by merge.
      const aim = () => classAim(statistics, cls, fraction);
      const deficit = aim() - seenOf(statistics, cls);
      if (deficit <= 0) continue;
      if (opts.shouldStop?.()) {
        stopped = true;
        break;
      }
      const cap = TARGET_CAP_BASE + TARGET_CAP_PER_CASE * deficit;
      const id = targetPhaseId(cls, kind, cls.startsWith('dns:') ? 'dns' : 'single');
      const r = await runPhase(id, arbOf(id, opts.env), phaseSeed(opts.seed, id, shard), cap, o, record, undefined, found, overflow, () => seenOf(statistics, cls) >= aim());
      targets.push({ class: cls, tried: r.tried, cap, met: seenOf(statistics, cls) >= aim() });
      if (r.stop) {
        stopped = opts.shouldStop?.() === true;
        break;
      }
    }
  }
  const counterexamples: Counterexample[] = [];
  for (const cl of found.values()) {
    const cx = await shrinkFinding(cl.phase, arbOf(cl.phase, opts.env), cl.seed, cl.path, o, cl.signature.id, false);
    if (cx) counterexamples.push({ ...cx, hits: cl.hits, paths: cl.paths });
  }
  return { cases, counterexamples, unclustered: overflow.count, invariants: table, statistics, interrupted, stopped, durationMs: Date.now() - started, targets };
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
