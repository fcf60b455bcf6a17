// `merge` for the acceleration and connection-report phases (sections 8 and 7): their counts and
// program coverage summed over the shards, and under --exhaustive the union of the parts of each enumerated domain
// the shards ran (generators/shard.ts): complete only when every shard of the split is there and
// ran all of its part, so that the parts add up to the whole domain, each case counted once.

import type { ReportJson } from './report.js';
import type { SectionPhaseJson } from './section-phases.js';
import { mergeShardCoverage, type CoverageSummary } from '../bpf/vm/coverage.js';

/** The union of the shards' parts of one enumerated domain. */
export interface MergedEnumeration {
  readonly scope: number;
  readonly total: number;
  /** Cases run over all shards. */
  readonly ran: number;
  readonly complete: boolean;
  /** Why not complete. */
  readonly truncated: string[];
}

export type MergedSectionPhase = Omit<SectionPhaseJson, 'enumeration'> & { enumeration?: MergedEnumeration };

/** The shard reports and their JSON phases as check writes them. */
export type ShardReport = ReportJson & { acceleration?: SectionPhaseJson; reports?: SectionPhaseJson; programCoverage?: CoverageSummary };

/** Why the reports are not every shard of one split (empty: they are). */
export function shardGaps(reports: readonly Pick<ReportJson, 'shard'>[]): string[] {
  const counts = new Set(reports.map((r) => r.shard?.count ?? 1));
  if (counts.size > 1) return [`the reports split the tree differently (${[...counts].join(', ')} shards)`];
  const n = [...counts][0] ?? 1;
  const have = new Set(reports.map((r) => r.shard?.index ?? 0));
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !have.has(i));
  const twice = reports.length - have.size;
  return [
    ...(missing.length > 0 ? [`shard${missing.length === 1 ? '' : 's'} ${missing.map((i) => `${i + 1}/${n}`).join(', ')} missing`] : []),
    ...(twice > 0 ? [`${twice} report(s) of a shard already given`] : []),
  ];
}

function sumRecords(rs: ReadonlyArray<Readonly<Record<string, number>> | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) for (const [k, n] of Object.entries(r ?? {})) out[k] = (out[k] ?? 0) + n;
  return out;
}

function mergeEnumerations(parts: readonly (SectionPhaseJson | undefined)[], gaps: readonly string[]): MergedEnumeration | undefined {
  const mine = parts.map((p) => p?.enumeration);
  const given = mine.filter((e) => e !== undefined);
  if (given.length === 0) return undefined;
  const truncated = [...gaps];
  if (given.length < mine.length) truncated.push(`${mine.length - given.length} report(s) without this enumeration`);
  const scopes = new Set(given.map((e) => e.scope));
  const totals = new Set(given.map((e) => e.total));
  if (scopes.size > 1 || totals.size > 1) truncated.push(`shards enumerated different domains (scopes ${[...scopes].join(', ')}; ${[...totals].join(', ')} cases)`);
  const stopped = given.filter((e) => !e.complete).length;
  if (stopped > 0) truncated.push(`${stopped} shard(s) stopped at a failure before the end of their part`);
  const total = Math.max(...given.map((e) => e.total));
  const ran = given.reduce((n, e) => n + e.ran, 0);
  // Parts of one split are disjoint: complete parts of every shard add up to the whole domain.
  if (truncated.length === 0 && ran !== total) truncated.push(`the parts hold ${ran} of ${total} cases`);
  return { scope: Math.min(...scopes), total, ran, complete: truncated.length === 0, truncated };
}

/** The programCoverage of the parts that have one, merged (none when none has). */
export function mergedProgramCoverage(parts: readonly { readonly programCoverage?: CoverageSummary }[]): { programCoverage?: CoverageSummary } {
  const given = parts.flatMap((p) => (p.programCoverage ? [p.programCoverage] : []));
  return given.length > 0 ? { programCoverage: mergeShardCoverage(given) } : {};
}

/** One phase over the shards: counts summed, failing if any shard failed, skipped if every shard skipped it. */
export function mergeSectionPhase(parts: readonly (SectionPhaseJson | undefined)[], gaps: readonly string[]): MergedSectionPhase | undefined {
  const given = parts.filter((p) => p !== undefined);
  const first = given[0];
  if (!first) return undefined;
  const ran = given.filter((p) => p.status !== 'skipped');
  if (ran.length === 0) return { status: 'skipped', ...(first.why ? { why: first.why } : {}) };
  const enumeration = mergeEnumerations(parts, gaps);
  return {
    status: ran.some((p) => p.status === 'fail') ? 'fail' : 'pass',
    runs: ran.reduce((n, p) => n + (p.runs ?? 0), 0),
    exercised: sumRecords(ran.map((p) => p.exercised)),
    failed: sumRecords(ran.map((p) => p.failed)),
    findings: ran.reduce((n, p) => n + (p.findings ?? 0), 0),
    ...(enumeration ? { enumeration } : {}),
    ...mergedProgramCoverage(ran),
  };
}

/** Both phases of the shard reports, for the merged report (absent where no report had them). */
export function mergeSectionPhases(reports: readonly ShardReport[]): { acceleration?: MergedSectionPhase; reports?: MergedSectionPhase } {
  const gaps = shardGaps(reports);
  const acceleration = mergeSectionPhase(
    reports.map((r) => r.acceleration),
    gaps,
  );
  const rep = mergeSectionPhase(
    reports.map((r) => r.reports),
    gaps,
  );
  return { ...(acceleration ? { acceleration } : {}), ...(rep ? { reports: rep } : {}) };
}

/** A line for merge's output: `acceleration: scope 1, 280 of 280 cases, complete` (or why not). */
export function formatMergedEnumeration(name: string, e: MergedEnumeration): string {
  return `${name}: exhaustive scope ${e.scope}, ${e.ran} of ${e.total} cases, ${e.complete ? 'complete' : `incomplete: ${e.truncated.join('; ')}`}`;
}
