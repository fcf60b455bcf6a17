// Findings of the report and acceleration phases reported like the routing ones: one signature
// per phase and invariant, a printed counterexample with its replay line, an entry in the JSON
// report's findings (so baselines, the summary and JUnit see it), saved in the failure database
// and replayed from it, saved failures that pass now removed. One piece for both phases.

import { createHash } from 'node:crypto';
import type { InvariantCount } from '../properties/run.js';
import type { SectionFinding, SectionPhase, SectionResult, SectionSpec } from '../properties/section-check.js';
import { belongsTo, type FailureDb, type RunIdentity, type SavedSectionFailure } from './failure-db.js';
import { pathsText, replayCase, type FindingJson, type FindingStatus } from './report.js';
import { addPaths } from '../properties/tally.js';

export const SECTION_TITLES: Readonly<Record<SectionPhase, string>> = { report: 'connection reports (section 7)', accel: 'acceleration (section 8)' };

/** Where a section finding was found: the executor and the phase's objects flag (null: ours). */
export interface SectionRunContext {
  readonly executor: string;
  /** e.g. "--report-objects a.o,b.o,c.o,d.o"; null for our own objects. */
  readonly objectsFlag: string | null;
  /** The saved case file a replay runs (replay --case): it, not the seed and path, reproduces the case. */
  readonly caseFile?: string;
}

/**
 * One finding per phase and invariant: what baselines list. Its hits' shapes (what kind of
 * element broke which rule) are its model paths: a baseline accepts it on the shapes it was hit
 * in, and the same invariant broken in another shape (maybe another bug) is new.
 */
export function sectionSignature(f: Pick<SectionFinding, 'phase' | 'invariant'>): { id: string; text: string } {
  const id = createHash('sha256').update(`${f.phase}|${f.invariant}`).digest('hex').slice(0, 12);
  return { id, text: `${SECTION_TITLES[f.phase]}: ${f.invariant} broke` };
}

export function sectionReplayLine(f: Pick<SectionFinding, 'phase' | 'seed' | 'path'>, run: SectionRunContext): string {
  return `kmesh-check replay ${replayCase(f, run.caseFile)} --executor ${run.executor}${run.objectsFlag ? ` ${run.objectsFlag}` : ''}`;
}

export function formatSectionFinding(spec: SectionSpec<unknown, unknown>, f: SectionFinding, run: SectionRunContext, title = 'FINDING', hits = f.hits, shapes = f.shapes): string {
  const sig = sectionSignature(f);
  const elsewhere = spec.ranOn?.(f.case, f.observation);
  const where = elsewhere && elsewhere.executor !== run.executor ? `on the ${run.executor} executor; this case ran on the userspace VM: ${elsewhere.why}` : `on the ${run.executor} executor`;
  return [
    `${title}: invariant "${f.invariant}" broke (${SECTION_TITLES[f.phase]}, ${where})`,
    `  signature ${sig.id}: ${sig.text}${hits ? ` (hit by ${hits} generated case${hits === 1 ? '' : 's'}${pathsText(shapes, 'shape')})` : ''}`,
    `  ${f.statement}`,
    `  ${f.detail}`,
    ...spec.formatCase(f.case).map((l) => `  ${l}`),
    '  observed',
    ...spec.formatObservation(f.case, f.observation).map((l) => `    ${l}`),
    `  size ${f.size} (${run.caseFile !== undefined ? `as saved in ${run.caseFile}` : `shrunk from ${f.shrunkFrom}`})`,
    `  replay: ${sectionReplayLine(f, run)}`,
  ].join('\n');
}

export function sectionFindingJson(spec: SectionSpec<unknown, unknown>, f: SectionFinding, run: SectionRunContext, status: FindingStatus): FindingJson {
  const sig = sectionSignature(f);
  return {
    invariant: f.invariant,
    statement: f.statement,
    detail: f.detail,
    source: 'executor',
    phase: f.phase,
    seed: f.seed,
    path: f.path,
    size: f.size,
    shrunkFrom: f.shrunkFrom,
    case: f.case as FindingJson['case'],
    observed: jsonSafe(f.observation),
    allowedAtStep: null,
    replay: sectionReplayLine(f, run),
    text: formatSectionFinding(spec, f, run, status === 'saved' ? 'SAVED FAILURE' : 'FINDING'),
    signature: sig.id,
    signatureText: sig.text,
    hits: f.hits,
    modelPaths: { ...f.shapes },
    status,
    // What the executor observed, record by record: the report's explanation of the failure.
    explanation: { observed: spec.formatObservation(f.case, f.observation) },
  };
}

/** A value JSON can hold: 64-bit counters (bigint) as decimal strings. */
export function jsonSafe(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)));
}

/** The phase's invariants as rows of the run's table (summary and JUnit). */
export function sectionInvariantRows(spec: SectionSpec<unknown, unknown>, r: Pick<SectionResult<unknown, unknown>, 'exercised' | 'failed'>): InvariantCount[] {
  return spec.invariants.map((i) => ({ name: i.name, statement: i.statement, checked: r.exercised[i.name] ?? 0, failed: r.failed[i.name] ?? 0 }));
}

/** What replaying the saved failures of a phase did, in the run's counts. */
export interface SectionSavedCounts {
  replayed: number;
  stillFailing: number;
  removed: number;
  skipped: number;
}

export interface SettledSection {
  readonly findings: ReadonlyArray<{ readonly finding: SectionFinding; readonly status: 'new' | 'saved'; readonly saved?: SavedSectionFailure }>;
  readonly counts: SectionSavedCounts;
}

/** The saved failures of this phase that belong to the phase's objects and executor. */
export function savedOfPhase(all: readonly SavedSectionFailure[], phase: SectionPhase, identity: RunIdentity): { mine: SavedSectionFailure[]; skipped: number } {
  const ofPhase = all.filter((s) => s.phase === phase);
  const mine = ofPhase.filter((s) => belongsTo(s, identity));
  return { mine, skipped: ofPhase.length - mine.length };
}

/**
 * Merges a phase's replayed saved failures (still failing, or passing: removed from the
 * database) with its new findings; a new finding with a saved one's signature is that one.
 */
export function settleSection(o: {
  readonly saved: readonly SavedSectionFailure[];
  /** Per saved failure, in order: the finding it still is, or null. */
  readonly replayed: ReadonlyArray<SectionFinding | null>;
  readonly findings: readonly SectionFinding[];
  readonly skipped: number;
  readonly db: FailureDb;
  readonly log: (s: string) => void;
}): SettledSection {
  const out: Array<{ finding: SectionFinding; status: 'new' | 'saved'; saved?: SavedSectionFailure }> = [];
  const counts: SectionSavedCounts = { replayed: o.saved.length, stillFailing: 0, removed: 0, skipped: o.skipped };
  o.saved.forEach((s, i) => {
    const f = o.replayed[i] ?? null;
    if (f) {
      counts.stillFailing++;
      o.log(`saved failure ${s.id} (${s.invariant}) still fails`);
      out.push({ finding: f, status: 'saved', saved: s });
    } else {
      counts.removed++;
      o.log(`saved failure ${s.id} (${s.invariant}) passes now on its own objects: removed from ${o.db.dir}`);
      o.db.remove(s.id, s.file);
    }
  });
  for (const f of o.findings) {
    const id = sectionSignature(f).id;
    const i = out.findIndex((x) => sectionSignature(x.finding).id === id);
    if (i < 0) out.push({ finding: f, status: 'new' });
    else {
      const had = out[i]!.finding;
      out[i] = { ...out[i]!, finding: { ...had, hits: had.hits + f.hits, shapes: addPaths(had.shapes, f.shapes) } };
    }
  }
  return { findings: out, counts };
}

/** Saves a new finding of a phase; its file is replayed first by the next run of these objects. */
export function saveSectionFinding(db: FailureDb, f: SectionFinding, identity: RunIdentity): string {
  const saved = db.saveFinding({ invariant: f.invariant, signature: sectionSignature(f), phase: f.phase, seed: f.seed, path: f.path, case: f.case }, identity);
  return db.files(saved.id).json;
}
