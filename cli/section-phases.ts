// The two phases of `check` after routing, acceleration (section 8) and connection reports
// (section 7), run with their saved failures and settled into the run's results: invariant rows
// for the summary and JUnit, findings for the JSON report (before the baseline is applied), and
// afterwards printed and saved in the failure database like the routing findings.

import { resolve } from 'node:path';
import { defaultAccelObjects } from '../bpf/kernel/accel/executor.js';
import type { AccelObjectPaths } from '../bpf/kernel/accel/loader.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import type { CoverageSummary } from '../bpf/vm/coverage.js';
import { accelSpec } from '../properties/accel.js';
import { reportSpec } from '../properties/report.js';
import { phaseSeed, type InvariantCount } from '../properties/run.js';
import type { SectionFinding, SectionPhase, SectionResult, SectionSpec } from '../properties/section-check.js';
import { accelPhase, type AccelPhase } from './accel-phase.js';
import type { ExecutorName } from './executors.js';
import type { FailureDb, RunIdentity, SavedSectionFailure } from './failure-db.js';
import { reportPhase, reportPhaseObjects, type ReportPhase } from './report-phase.js';
import type { BaselineJson, FindingJson } from './report.js';
import type { EnumeratedPart, Shard } from '../generators/shard.js';
import {
  formatSectionFinding,
  saveSectionFinding,
  savedOfPhase,
  sectionFindingJson,
  sectionSignature,
  sectionInvariantRows,
  settleSection,
  type SectionRunContext,
  type SectionSavedCounts,
} from './section-findings.js';

type Skipped = { readonly status: 'skipped'; readonly why: string };

interface Entry {
  readonly spec: SectionSpec<unknown, unknown>;
  readonly finding: SectionFinding;
  readonly status: 'new' | 'saved';
  readonly identity: RunIdentity;
  readonly run: SectionRunContext;
}

export interface SectionPhasesOutcome {
  readonly accel: AccelPhase | Skipped;
  readonly reports: ReportPhase | Skipped;
  /** Invariant rows of the phases that ran. */
  readonly rows: InvariantCount[];
  /** The phases' findings as the JSON report lists them (status new or saved). */
  readonly findings: FindingJson[];
  /** Parallel to `findings`: what printing and saving need. */
  readonly entries: readonly Entry[];
  readonly counts: SectionSavedCounts;
}

export interface SectionPhasesOptions {
  readonly executor: ExecutorName;
  readonly seed: number;
  readonly runs: number;
  /** --objects was given (the phases then need their own objects flags). */
  readonly userObjects: boolean;
  readonly accelObjects?: AccelObjectPaths;
  readonly reportObjects?: ReportObjectPaths;
  readonly maxFindings?: number;
  /** check --exhaustive: the phases enumerate their domains at this scope. */
  readonly exhaustiveScope?: number;
  /** --shard: each phase enumerates only this shard's part of its domain. */
  readonly shard?: Shard;
  /** --stop-at-first: each phase stops at its first failing case, and a failing phase skips the next. */
  readonly stopAtFirst?: boolean;
  /** Saved failures of the two phases (the failure database's `sections`). */
  readonly saved: readonly SavedSectionFailure[];
  readonly db: FailureDb;
  readonly log: (s: string) => void;
}

function identityOf(executor: string, objects: Record<string, string> | null, ours: boolean): RunIdentity {
  return { executor, objects: objects ? Object.fromEntries(Object.entries(objects).map(([k, v]) => [k, resolve(v)])) : null, ours };
}

/**
 * A sampled phase under --shard: the shard's own seed (the first shard keeps the run's) and its
 * share of the budget, so that shards do not sample the same cases and merge counts none twice.
 * (Under --exhaustive the shards split the enumeration instead: generators/shard.ts.)
 */
export function shardSampling(o: Pick<SectionPhasesOptions, 'seed' | 'runs' | 'shard'>, phase: SectionPhase): { seed: number; runs: number } {
  const s = o.shard;
  if (!s || s.count === 1) return { seed: o.seed, runs: o.runs };
  return { seed: s.index === 0 ? o.seed : phaseSeed(o.seed, phase, s.index), runs: Math.ceil(o.runs / s.count) };
}

export async function runSectionPhases(o: SectionPhasesOptions): Promise<SectionPhasesOutcome> {
  const rows: InvariantCount[] = [];
  const entries: Entry[] = [];
  const counts: SectionSavedCounts = { replayed: 0, stillFailing: 0, removed: 0, skipped: 0 };
  const common = {
    executor: o.executor,
    seed: o.seed,
    runs: o.runs,
    userObjects: o.userObjects,
    log: o.log,
    ...(o.maxFindings !== undefined ? { maxFindings: o.maxFindings } : {}),
    ...(o.shard ? { shard: o.shard } : {}),
    ...(o.stopAtFirst ? { stopAtFirst: true } : {}),
  };
  /** Runs one phase with its saved failures and settles what it found into the run's results. */
  const one = async <P extends { result?: SectionResult<unknown, unknown> }>(
    phase: SectionPhase,
    objects: object | null,
    given: string[] | null,
    spec: SectionSpec<unknown, unknown>,
    start: (saved: SavedSectionFailure[]) => Promise<P>,
  ): Promise<P> => {
    const identity = identityOf(o.executor, objects ? { ...(objects as Record<string, string>) } : null, given === null && !o.userObjects);
    const { mine, skipped } = savedOfPhase(o.saved, phase, identity);
    const p = await start(mine);
    if (!p.result) return p;
    const run = { executor: o.executor, objectsFlag: given ? `--${phase}-objects ${given.join(',')}` : null };
    rows.push(...sectionInvariantRows(spec, p.result));
    const s = settleSection({ saved: mine, replayed: p.result.replayed, findings: p.result.findings, skipped, db: o.db, log: o.log });
    for (const k of Object.keys(counts) as Array<keyof SectionSavedCounts>) counts[k] += s.counts[k];
    // A saved failure that still fails replays from its file (its seed and path give the case unshrunk).
    for (const f of s.findings) entries.push({ spec, finding: f.finding, status: f.status, identity, run: f.saved ? { ...run, caseFile: f.saved.file ?? o.db.files(f.saved.id).json } : run });
    return p;
  };
  const a = o.accelObjects;
  const accel = await one('accel', a ?? (o.userObjects ? null : defaultAccelObjects()), a ? [a.ops, a.redirect] : null, accelSpec() as SectionSpec<unknown, unknown>, (saved) =>
    accelPhase({ ...common, ...shardSampling(o, 'accel'), ...(a ? { objects: a } : {}), saved, ...(o.exhaustiveScope !== undefined ? { exhaustiveScope: o.exhaustiveScope } : {}) }),
  );
  const r = o.reportObjects;
  const reportObjects = reportPhaseObjects({ userObjects: o.userObjects, ...(r ? { objects: r } : {}) });
  const spec = reportSpec({ executor: o.executor === 'vm' ? 'vm' : 'kernel' }) as SectionSpec<unknown, unknown>;
  if (o.stopAtFirst && accel.status === 'fail') {
    o.log(`connection reports (section 7): skipped: ${STOPPED_AT_FIRST}`);
    return outcome(accel, { status: 'skipped', why: STOPPED_AT_FIRST });
  }
  const reports = await one('report', reportObjects, r ? [r.connect, r.sockops, r.sendmsg, r.skb] : null, spec, (saved) =>
    reportPhase({ ...common, ...shardSampling(o, 'report'), ...(r ? { objects: r } : {}), saved, ...(o.exhaustiveScope !== undefined ? { exhaustiveScope: o.exhaustiveScope } : {}) }),
  );
  return outcome(accel, reports);

  function outcome(accel: AccelPhase | Skipped, reports: ReportPhase | Skipped): SectionPhasesOutcome {
    const findings = entries.map((e) => sectionFindingJson(e.spec, e.finding, e.run, e.status));
    return { accel, reports, rows, findings, entries, counts };
  }
}

/** Why a phase did not run after an earlier one failed under --stop-at-first. */
export const STOPPED_AT_FIRST = 'an earlier phase found a failing case (--stop-at-first)';

/** What the section phases that ran on the VM executed of their programs (none on the kernel). */
export function sectionCoverage(s: SectionPhasesOutcome | null): CoverageSummary[] {
  return s ? [phaseCoverage(s.accel), phaseCoverage(s.reports)].filter((c): c is CoverageSummary => c !== undefined) : [];
}

/** The program coverage of a phase that ran on a VM of its own. */
function phaseCoverage(p: AccelPhase | ReportPhase | Skipped): CoverageSummary | undefined {
  if ('coverage' in p) return p.coverage;
  return 'result' in p && p.result && 'coverage' in p.result ? p.result.coverage : undefined;
}

/**
 * A phase in the JSON report: its status and counts (its findings are among the run's findings),
 * and under --exhaustive the part of its enumerated domain this shard ran (merge sums the parts).
 */
export function sectionPhaseJson(p: AccelPhase | ReportPhase | Skipped): SectionPhaseJson {
  const r = 'result' in p ? p.result : undefined;
  return {
    status: p.status,
    ...(p.why ? { why: p.why } : {}),
    ...(r ? { runs: r.runs, exercised: r.exercised, failed: r.failed, findings: r.findings.length } : {}),
    ...(r?.enumeration ? { enumeration: r.enumeration } : {}),
    ...(phaseCoverage(p) ? { programCoverage: phaseCoverage(p) } : {}),
  };
}

export interface SectionPhaseJson {
  readonly status: 'pass' | 'fail' | 'skipped' | 'stopped';
  readonly why?: string;
  readonly runs?: number;
  readonly exercised?: Readonly<Record<string, number>>;
  readonly failed?: Readonly<Record<string, number>>;
  readonly findings?: number;
  readonly enumeration?: EnumeratedPart;
  /** On a VM: the instructions and branches of the phase's programs its cases ran. */
  readonly programCoverage?: CoverageSummary;
}

/** The phases that stopped half-way, as "acceleration: why" (each fails the run). */
export function stoppedPhasesOf(out: Pick<SectionPhasesOutcome, 'accel' | 'reports'>): string[] {
  const named = [
    ['acceleration', out.accel],
    ['connection reports', out.reports],
  ] as const;
  return named.flatMap(([name, p]) => (p.status === 'stopped' ? [`${name}: ${p.why ?? ''}`] : []));
}

/** Prints the phases' findings (their status after the baseline) and saves the new ones. */
export function printSectionFindings(
  out: SectionPhasesOutcome,
  statuses: readonly FindingJson['status'][],
  o: { failureDb: boolean; db: FailureDb; log: (s: string) => void; newPaths?: BaselineJson['newPaths'] },
): void {
  out.entries.forEach((e, i) => {
    const status = statuses[i] ?? e.status;
    const title = status === 'known' ? 'KNOWN FINDING (accepted by the baseline)' : status === 'saved' ? 'SAVED FAILURE' : 'FINDING';
    const newShapes = o.newPaths?.find((p) => p.signature === sectionSignature(e.finding).id)?.paths;
    o.log('');
    o.log(formatSectionFinding(e.spec, e.finding, e.run, newShapes ? `${title} (the baseline accepts its signature, not in shape ${newShapes.join(', ')})` : title));
    if (o.failureDb && e.status === 'new') o.log(`  saved as ${saveSectionFinding(o.db, e.finding, e.identity)} (replayed first on the next run of these objects)`);
  });
}
