// The checks of the phases that come after routing (connection reports, section 7; acceleration,
// section 8), one piece for both: generated cases (fast-check, seeded) run in one batch on the
// phase's executor and judged by the phase's invariants; each invariant that broke gives one
// finding, shrunk by fast-check from the first case that broke it (a shrink step must break the
// same invariant), with the number of generated cases that broke it. A finding replays from its
// seed and fast-check path, and a saved one from its case.

import fc from 'fast-check';
import { checkAtPath } from './replay-path.js';
import type { Verdict } from '../model/spec/types.js';
import { shardPart, shardSize, WHOLE, type EnumeratedPart, type Shard } from '../generators/shard.js';

/** What a phase brings: its cases, invariants, executor and printing. */
export interface SectionSpec<C, O> {
  /** Phase id in findings, the failure database and replay lines: 'report' or 'accel'. */
  readonly phase: SectionPhase;
  readonly arb: fc.Arbitrary<C>;
  readonly invariants: ReadonlyArray<{ readonly name: string; readonly statement: string }>;
  judge(c: C, o: O): ReadonlyArray<{ readonly name: string; readonly verdict: Verdict }>;
  /** Runs cases on the phase's executor; observations in the same order. */
  run(cases: readonly C[]): Promise<readonly O[]>;
  /** Size of a case (what shrinking makes small), for the finding's "shrunk from". */
  size(c: C): number;
  formatCase(c: C): string[];
  formatObservation(c: C, o: O): string[];
  /** Where a case really ran when that may not be the run's executor (a report case that lets time pass runs on the VM), and why. */
  ranOn?(c: C, o: O): { readonly executor: 'vm'; readonly why: string } | undefined;
  /** The phase's bounded-exhaustive cases of a scope, small first (phases that have them). */
  enumerate?(scope: number): Iterable<C>;
  /** The valid cases one piece smaller than `c` (a connection, a send, a list entry removed), for the 1-minimal pass. */
  removals?(c: C): C[];
}

/** Rounds of the 1-minimal pass at most (each runs the case's removals as one batch). */
const MAX_MINIMIZE_ROUNDS = 64;

export type SectionPhase = 'report' | 'accel';
export const SECTION_PHASES: readonly SectionPhase[] = ['report', 'accel'];

export interface SectionFinding<C = unknown, O = unknown> {
  readonly phase: SectionPhase;
  readonly invariant: string;
  readonly statement: string;
  readonly detail: string;
  readonly case: C;
  readonly observation: O;
  readonly seed: number;
  /**
   * fast-check path of the shrunk case (replay --phase P --seed S --path PATH); for an enumerated
   * case "scope.index" (dotted, like the routing exhaustive phase's paths).
   */
  readonly path: string;
  readonly size: number;
  readonly shrunkFrom: number;
  /** Generated cases that broke this invariant (0 for a replayed saved failure). */
  readonly hits: number;
  /**
   * The shapes of the cases that broke it (Verdict's shape: what kind of element broke which
   * rule), with how many cases each: where a routing finding has its model paths. Its own case's
   * alone for a replayed saved failure.
   */
  readonly shapes: Readonly<Record<string, number>>;
}

export interface SectionResult<C, O> {
  readonly runs: number;
  /** Cases that exercised each invariant (verdict not vacuous: it held or broke), as the main phases count them. */
  readonly exercised: Readonly<Record<string, number>>;
  /** Cases that broke each invariant. */
  readonly failed: Readonly<Record<string, number>>;
  /** One shrunk finding per invariant that broke, in the order they were first hit. */
  readonly findings: ReadonlyArray<SectionFinding<C, O>>;
  /** Per saved case given (SectionRunOptions.saved), in order: the finding it still is, or null. */
  readonly replayed: ReadonlyArray<SectionFinding<C, O> | null>;
  /** An enumerated run (exhaustiveScope): what part of the domain it was and how much of it ran. */
  readonly enumeration?: EnumeratedPart;
}

export interface SectionRunOptions {
  readonly seed: number;
  readonly runs: number;
  /** Shrunk findings at most (default 10); the other broken invariants are counted. */
  readonly maxFindings?: number;
  /** false: report the first failing case of each invariant as it is (mutation scores, fast). */
  readonly shrink?: boolean;
  /**
   * Instead of sampling: every case of the phase's bounded-exhaustive domain at this scope, each
   * finding the first enumerated case that broke its invariant (small first: not shrunk).
   */
  readonly exhaustiveScope?: number;
  /** --shard: only this shard's part of the enumeration (generators/shard.ts); sampling ignores it. */
  readonly shard?: Shard;
  /** Saved cases of the failure database, judged first (their case as it is). */
  readonly saved?: ReadonlyArray<{ readonly case: unknown; readonly seed: number; readonly path: string }>;
  /**
   * Stop at the first case that breaks an invariant (--stop-at-first, and a mutation score, which
   * needs no more): findings and counts are those of the cases up to it, as if they had been run
   * one by one. The executor runs STOP_CHUNK cases at once; the rest of the chunk is dropped.
   */
  readonly stopAtFirst?: boolean;
}

/** Cases run at once when stopping at the first failure (the executors run a batch at once). */
export const STOP_CHUNK = 64;
/** Cases of an enumeration run at once. */
const ENUMERATION_CHUNK = 256;

/** The first violated invariant of a judged case (`only`: that one). */
function violation(spec: SectionSpec<unknown, unknown>, c: unknown, o: unknown, only: string | null): { name: string; detail: string; shape?: string } | null {
  for (const j of spec.judge(c, o)) if (j.verdict.status === 'violated' && (only === null || j.name === only)) return { name: j.name, detail: j.verdict.detail, shape: j.verdict.shape };
  return null;
}

/** A case's shape counted once more in `shapes` (a verdict without one counts nowhere). */
function countShape(shapes: Record<string, number>, shape: string | undefined): void {
  if (shape !== undefined) shapes[shape] = (shapes[shape] ?? 0) + 1;
}

function statementOf(spec: SectionSpec<unknown, unknown>, name: string): string {
  return spec.invariants.find((i) => i.name === name)?.statement ?? '';
}

export async function runSectionChecks<C, O>(spec: SectionSpec<C, O>, o: SectionRunOptions): Promise<SectionResult<C, O>> {
  const replayed: Array<SectionFinding<C, O> | null> = [];
  for (const s of o.saved ?? []) replayed.push(await judgeSectionCase(spec, s.case as C, s));
  const shard = o.shard ?? WHOLE;
  // An enumerated case keeps its index in the whole domain, whichever shard runs it.
  const domain = o.exhaustiveScope !== undefined && spec.enumerate ? [...spec.enumerate(o.exhaustiveScope)] : null;
  const enumerated = domain ? [...shardPart(domain, shard)] : null;
  const all = enumerated ? enumerated.map(([, c]) => c) : fc.sample(spec.arb, { seed: o.seed, numRuns: o.runs });
  const pathOf = (i: number) => (enumerated ? `${o.exhaustiveScope}.${enumerated[i]![0]}` : String(i));
  const exercised: Record<string, number> = Object.fromEntries(spec.invariants.map((i) => [i.name, 0]));
  const failed: Record<string, number> = Object.fromEntries(spec.invariants.map((i) => [i.name, 0]));
  const shapes: Record<string, Record<string, number>> = Object.fromEntries(spec.invariants.map((i) => [i.name, {}]));
  const firstAt = new Map<string, number>();
  const obs: O[] = [];
  // An enumeration runs in batches of ENUMERATION_CHUNK: a scope's thousands of cases in one request would hold every observation twice.
  const chunk = o.stopAtFirst ? STOP_CHUNK : enumerated ? ENUMERATION_CHUNK : Math.max(1, all.length);
  const stopped = () => o.stopAtFirst === true && firstAt.size > 0;
  for (let from = 0; from < all.length && !stopped(); from += chunk) {
    const part = all.slice(from, from + chunk);
    const ran = await spec.run(part);
    for (let k = 0; k < part.length && !stopped(); k++) {
      const i = from + k;
      obs.push(ran[k]!);
      for (const j of spec.judge(part[k]!, ran[k]!)) {
        if (j.verdict.status === 'vacuous') continue;
        exercised[j.name] = (exercised[j.name] ?? 0) + 1;
        if (j.verdict.status !== 'violated') continue;
        failed[j.name] = (failed[j.name] ?? 0) + 1;
        countShape((shapes[j.name] ??= {}), j.verdict.shape);
        if (!firstAt.has(j.name)) firstAt.set(j.name, i);
      }
    }
  }
  const cases = all.slice(0, obs.length);
  const findings: Array<SectionFinding<C, O>> = [];
  for (const [name, i] of [...firstAt].slice(0, o.maxFindings ?? 10)) {
    const asFound = () => foundAt(spec, o.seed, pathOf(i), name, cases[i]!, obs[i]!, spec.size(cases[i]!));
    const f = o.shrink === false || enumerated ? asFound() : await shrinkSection(spec, o.seed, pathOf(i), { invariant: name });
    // A case that broke the invariant in the batch but not alone is reported as the batch saw it.
    findings.push({ ...(f ?? asFound()), hits: failed[name] ?? 0, shapes: shapes[name] ?? {} });
  }
  const enumeration =
    domain && o.exhaustiveScope !== undefined
      ? { scope: o.exhaustiveScope, shard, part: shardSize(domain.length, shard), ran: cases.length, total: domain.length, complete: cases.length === all.length }
      : null;
  return { runs: cases.length, exercised, failed, findings, replayed, ...(enumeration ? { enumeration } : {}) };
}

function foundAt<C, O>(spec: SectionSpec<C, O>, seed: number, path: string, name: string, c: C, o: O, shrunkFrom: number): SectionFinding<C, O> {
  const v = violation(spec as SectionSpec<unknown, unknown>, c, o, name);
  return {
    phase: spec.phase,
    invariant: name,
    statement: statementOf(spec as SectionSpec<unknown, unknown>, name),
    detail: v?.detail ?? '',
    case: c,
    observation: o,
    seed,
    path,
    size: spec.size(c),
    shrunkFrom,
    hits: 1,
    shapes: v?.shape !== undefined ? { [v.shape]: 1 } : {},
  };
}

/**
 * The case at `path` of the phase's generation with `seed`, shrunk while it breaks the same
 * invariant (the first it breaks, or `invariant`); null when it breaks none. `replayOnly`: no
 * shrinking, the case at the path as it is.
 */
export async function shrinkSection<C, O>(spec: SectionSpec<C, O>, seed: number, path: string, o: { invariant?: string; replayOnly?: boolean } = {}): Promise<SectionFinding<C, O> | null> {
  const dotted = /^(\d+)\.(\d+)$/.exec(path);
  if (dotted) {
    // An enumerated case: scope and index into the phase's bounded-exhaustive domain.
    const c = nth(spec.enumerate?.(Number(dotted[1])) ?? [], Number(dotted[2]));
    if (c === undefined) return null;
    const f = await judgeSectionCase(spec, c, { seed, path });
    return f ? { ...f, hits: 1 } : null;
  }
  let want = o.invariant ?? null;
  let firstSize: number | null = null;
  const seen = new WeakMap<object, { o: O; name: string }>();
  const property = fc.asyncProperty(spec.arb, async (c: C) => {
    firstSize ??= spec.size(c);
    const [ob] = await spec.run([c]);
    const v = violation(spec as SectionSpec<unknown, unknown>, c, ob, want);
    if (!v) return true;
    want ??= v.name;
    seen.set(c as object, { o: ob!, name: v.name });
    return false;
  });
  const details = await checkAtPath(property, { seed, path, numRuns: 1, endOnFailure: o.replayOnly === true });
  if (!details.failed || !details.counterexample || want === null) return null;
  const shrunk = details.counterexample[0];
  const got = seen.get(shrunk as object);
  const m = await minimizeSection(spec, shrunk, got ? got.o : (await spec.run([shrunk]))[0]!, want);
  return foundAt(spec, seed, details.counterexamplePath ?? path, want, m.c, m.o, firstSize ?? spec.size(shrunk));
}

/**
 * fast-check's shrinking gets a case small; this makes it 1-minimal where the phase says how to
 * remove a piece: while one of the case's removals still breaks `invariant`, take the first that
 * does. The removals of a round run as one batch; a replay, which shrinks the same way, reaches
 * the same case.
 */
async function minimizeSection<C, O>(spec: SectionSpec<C, O>, c: C, o: O, invariant: string): Promise<{ c: C; o: O }> {
  let cur = { c, o };
  for (let round = 0; round < MAX_MINIMIZE_ROUNDS; round++) {
    const candidates = spec.removals?.(cur.c) ?? [];
    if (candidates.length === 0) break;
    const obs = await spec.run(candidates);
    const i = candidates.findIndex((k, j) => violation(spec as SectionSpec<unknown, unknown>, k, obs[j], invariant) !== null);
    if (i < 0) break;
    cur = { c: candidates[i]!, o: obs[i]! };
  }
  return cur;
}

/** A saved case judged once more: the finding it still is (replayed, 0 hits), or null when it passes. */
export async function judgeSectionCase<C, O>(spec: SectionSpec<C, O>, c: C, at: { seed: number; path: string }): Promise<SectionFinding<C, O> | null> {
  const [ob] = await spec.run([c]);
  const v = violation(spec as SectionSpec<unknown, unknown>, c, ob, null);
  if (!v) return null;
  return { ...foundAt(spec, at.seed, at.path, v.name, c, ob!, spec.size(c)), hits: 0 };
}

/** The n-th element of an iterable (enumerations may be generators). */
function nth<T>(items: Iterable<T>, n: number): T | undefined {
  let i = 0;
  for (const x of items) if (i++ === n) return x;
  return undefined;
}
