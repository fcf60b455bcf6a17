// The checker's engine: fast-check drives generated cases through `judge`, in phases (state kind x
// case shape) with seeds derived from one seed; a failure is shrunk by fast-check, then made
// 1-minimal, and carries the phase, seed and path that replay it exactly.

import fc from 'fast-check';
import type { Case, StateKind } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import type { Executor } from '../model/executor.js';
import { invariants as allInvariants, type Invariant } from '../model/spec/index.js';
import { caseArb, isConsistent } from '../generators/index.js';
import { judge, MATCHES_MODEL, type Failure, type Judgement } from './judge.js';
import { caseSize, minimize } from './minimize.js';
import { Statistics } from './statistics.js';

export type { Shape } from '../generators/cases.js';
import type { Shape } from '../generators/cases.js';
export type StatesOption = StateKind | 'both';

export interface Phase {
  readonly kind: StateKind;
  readonly shape: Shape;
  /** Share of the run budget. */
  readonly share: number;
}

/** Phases of a run: every requested state kind, mostly single connects, some sequences. */
export function phasesFor(states: StatesOption): Phase[] {
  const kinds: StateKind[] = states === 'both' ? ['consistent', 'raw'] : [states];
  return kinds.flatMap((kind) => [
    { kind, shape: 'single' as const, share: 0.8 / kinds.length },
    { kind, shape: 'sequence' as const, share: 0.2 / kinds.length },
  ]);
}

export function phaseId(p: Pick<Phase, 'kind' | 'shape'>): string {
  return `${p.kind}/${p.shape}`;
}

/** A deterministic seed per phase and shard, so shards split the seed space without overlap. */
export function phaseSeed(seed: number, p: Pick<Phase, 'kind' | 'shape'>, shard = 0): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const ch of `${phaseId(p)}#${shard}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
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
  /** Stop after the first counterexample (default true: one shrunk finding per run). */
  readonly stopAtFirst?: boolean;
}

export interface InvariantCount {
  readonly name: string;
  readonly statement: string;
  checked: number;
  failed: number;
}

export interface RunResult {
  readonly cases: number;
  readonly counterexamples: Counterexample[];
  readonly invariants: InvariantCount[];
  readonly statistics: Statistics;
  readonly interrupted: boolean;
  readonly durationMs: number;
}

function invariantTable(list: readonly Invariant[], withExecutor: boolean): InvariantCount[] {
  const rows = list.map((i) => ({ name: i.name, statement: i.statement, checked: 0, failed: 0 }));
  if (withExecutor) rows.push({ name: MATCHES_MODEL.name, statement: MATCHES_MODEL.statement, checked: 0, failed: 0 });
  return rows;
}

/** Whether a case fails the same way (same invariant) as the original finding. */
function failsLike(failure: Failure, opts: RunOptions) {
  return async (c: Case): Promise<boolean> => {
    const j = await judge(c, opts);
    return j.failure !== null && j.failure.invariant === failure.invariant;
  };
}

/** Runs one phase; returns the shrunk counterexample, if any. */
async function runPhase(
  phase: Phase,
  runs: number,
  opts: RunOptions,
  record: (j: Judgement, phase: string) => void,
  deadline: number | undefined,
  replay?: { seed: number; path: string },
): Promise<{ counterexample: Counterexample | null; interrupted: boolean }> {
  const id = phaseId(phase);
  let shrinking = false;
  let lastFailure: Failure | null = null;
  const property = fc.asyncProperty(caseArb({ kind: phase.kind, shape: phase.shape }), async (c: Case) => {
    const j = await judge(c, opts);
    if (!shrinking) record(j, id);
    if (j.failure) {
      shrinking = true;
      lastFailure = j.failure;
    }
    return j.failure === null;
  });
  const seed = replay?.seed ?? phaseSeed(opts.seed, phase, opts.shard?.index ?? 0);
  const params: fc.Parameters<[Case]> = {
    seed,
    numRuns: replay ? 1 : Math.max(1, runs),
    ...(replay ? { path: replay.path } : {}),
    ...(deadline !== undefined ? { interruptAfterTimeLimit: Math.max(1, deadline - Date.now()) } : {}),
    markInterruptAsFailure: false,
  };
  const details = await fc.check(property, params);
  if (!details.failed || !details.counterexample) {
    return { counterexample: null, interrupted: details.interrupted };
  }
  const shrunk = details.counterexample[0];
  // The last failure judged during shrinking belongs to the shrunk case; judge again to be sure.
  const final = (await judge(shrunk, opts)).failure ?? (lastFailure as Failure | null);
  if (!final) throw new Error(`phase ${id}: fast-check reported a failure that does not reproduce`);
  const minimal = await minimize(shrunk, failsLike(final, opts), { consistencyViolations: isConsistent });
  const again = (await judge(minimal.case, opts)).failure ?? final;
  return {
    counterexample: {
      phase: id,
      seed: details.seed,
      path: details.counterexamplePath ?? '',
      case: minimal.case,
      shrunkFrom: caseSize(shrunk),
      size: caseSize(minimal.case),
      failure: again,
      minimizeTries: minimal.tries,
    },
    interrupted: details.interrupted,
  };
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
    statistics.add(j.traits);
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
  const perShard = Math.ceil(opts.runs / shardCount);
  const counterexamples: Counterexample[] = [];
  let interrupted = false;
  for (const phase of phasesFor(opts.states)) {
    if (deadline !== undefined && Date.now() >= deadline) {
      interrupted = true;
      break;
    }
    // A time limit is shared out like the runs, so that every phase (raw states too) gets its turn.
    const phaseDeadline = deadline === undefined ? undefined : Math.min(deadline, Date.now() + opts.timeLimitMs! * phase.share);
    const r = await runPhase(phase, Math.round(perShard * phase.share), { ...opts, invariants: list }, record, phaseDeadline);
    interrupted ||= r.interrupted;
    if (r.counterexample) {
      counterexamples.push(r.counterexample);
      if (opts.stopAtFirst !== false) break;
    }
  }
  return { cases, counterexamples, invariants: table, statistics, interrupted, durationMs: Date.now() - started };
}

/** Replays one phase's case from its seed and path, then makes it 1-minimal again. */
export async function replayCounterexample(
  phase: Pick<Phase, 'kind' | 'shape'>,
  seed: number,
  path: string,
  opts: RunOptions,
): Promise<Counterexample | null> {
  const r = await runPhase({ ...phase, share: 1 }, 1, opts, () => {}, undefined, { seed, path });
  return r.counterexample;
}
