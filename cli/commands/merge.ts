// `kmesh-check merge`: combines the JSON reports of shards into one verdict: cases, invariant
// counts, statistics and program coverage add up, coverage is judged on the sum, findings are kept
// (one per signature, hits summed); the exhaustive phases (routing, and the acceleration and
// report enumerations: cli/merge-sections.ts) are complete only when every shard's part is there.

import { readFileSync, writeFileSync } from 'node:fs';
import { KmeshCheckError } from '../../shared/errors.js';
import { coverageOf, Statistics } from '../../properties/statistics.js';
import { addPaths } from '../../properties/tally.js';
import type { StatesOption } from '../../properties/run.js';
import { formatSummary, type BaselineJson, type FindingJson, type ReportJson } from '../report.js';
import { applyBaseline } from '../baseline.js';
import { requiredPaths } from './check.js';
import { deviationsAt, scopeMeaning } from '../../generators/exhaustive/classes.js';
import { formatMergedEnumeration, mergedProgramCoverage, mergeSectionPhases, shardGaps, type ShardReport } from '../merge-sections.js';

function readReport(path: string): ReportJson {
  let r: Partial<ReportJson>;
  try {
    r = JSON.parse(readFileSync(path, 'utf8')) as Partial<ReportJson>;
  } catch (e) {
    throw new KmeshCheckError('codec', `${path}: not a readable JSON report (${(e as Error).message})`);
  }
  if (r.tool !== 'kmesh-check' || !Array.isArray(r.invariants) || !r.statistics) {
    throw new KmeshCheckError('codec', `${path}: not a kmesh-check JSON report (written by check --json)`);
  }
  return r as ReportJson;
}

type Explored = { scope: number; states: number; choicePoints: number; complete: boolean; truncated: string[]; durationMs: number; findings: number; deviations?: number; meaning?: string };

/** Accepted signatures hit on paths their acceptance does not name, over every shard: one entry each, the paths joined. */
function mergedNewPaths(all: BaselineJson['newPaths']): BaselineJson['newPaths'] {
  const bySig = new Map<string, BaselineJson['newPaths'][number]>();
  for (const n of all) {
    const had = bySig.get(n.signature);
    bySig.set(n.signature, had ? { ...had, paths: [...new Set([...had.paths, ...n.paths])].sort() } : n);
  }
  return [...bySig.values()];
}

/** The union of the shards' exhaustive phases: complete only when every shard's is, at one scope. */
export function mergeExplorations(reports: readonly (ReportJson & { exploration?: Explored })[]): Explored | null {
  const parts = reports.map((r) => r.exploration).filter((e): e is Explored => e !== undefined);
  if (parts.length === 0) return null;
  const scopes = new Set(parts.map((e) => e.scope));
  const truncated = parts.flatMap((e) => e.truncated);
  if (parts.length < reports.length) truncated.push(`${reports.length - parts.length} report(s) without an exhaustive phase`);
  if (scopes.size > 1) truncated.push(`shards explored different scopes (${[...scopes].join(', ')})`);
  // Every shard of the split must be there (once): the union of some shards is not the whole tree.
  truncated.push(...shardGaps(reports));
  const scope = Math.min(...scopes);
  return {
    scope,
    states: parts.reduce((n, e) => n + e.states, 0),
    choicePoints: parts.reduce((n, e) => n + e.choicePoints, 0),
    complete: truncated.length === 0 && parts.every((e) => e.complete),
    truncated,
    durationMs: Math.max(...parts.map((e) => e.durationMs)),
    findings: parts.reduce((n, e) => n + e.findings, 0),
    deviations: deviationsAt(scope),
    meaning: scopeMeaning(scope),
  };
}

export function mergeReports(reports: readonly ReportJson[]): ReportJson {
  const first = reports[0];
  if (!first) throw new KmeshCheckError('unsupported', 'merge needs at least one report');
  const executors = new Set(reports.map((r) => r.executor));
  const seeds = new Set(reports.map((r) => r.seed));
  if (executors.size > 1 || seeds.size > 1) {
    throw new KmeshCheckError('unsupported', `merge combines shards of one run: the reports differ in executor (${[...executors]}) or seed (${[...seeds]})`);
  }
  const stats = new Statistics();
  const invariants = new Map<string, ReportJson['invariants'][number]>();
  for (const r of reports) {
    stats.merge(r.statistics);
    for (const i of r.invariants) {
      const row = invariants.get(i.name) ?? { name: i.name, statement: i.statement, checked: 0, failed: 0 };
      row.checked += i.checked;
      row.failed += i.failed;
      invariants.set(i.name, row);
    }
  }
  // One finding per signature over all shards, hits summed; new beats known beats saved.
  const bySig = new Map<string, FindingJson>();
  for (const f of reports.flatMap((r) => r.findings ?? [])) {
    const had = bySig.get(f.signature);
    if (!had) bySig.set(f.signature, f);
    else {
      const modelPaths = addPaths(had.modelPaths, f.modelPaths ?? {});
      // A finding without invariantHits broke only its own invariant.
      const broke = (x: FindingJson) => x.invariantHits ?? { [x.invariant]: x.hits };
      const invariantHits = addPaths(broke(had), broke(f));
      const others = Object.keys(invariantHits).some((n) => n !== had.invariant);
      const exhaustiveHits = (had.exhaustiveHits ?? 0) + (f.exhaustiveHits ?? 0);
      bySig.set(f.signature, {
        ...had,
        hits: had.hits + f.hits,
        ...(exhaustiveHits ? { exhaustiveHits } : {}),
        modelPaths,
        ...(others ? { invariantHits } : {}),
        status: had.status === 'new' || f.status === 'new' ? 'new' : had.status,
      });
    }
  }
  let findings = [...bySig.values()];
  const baselines = reports.map((r) => r.baseline).filter((b): b is NonNullable<typeof b> => b !== null && b !== undefined);
  let baseline: BaselineJson | null = baselines.length
    ? {
        ...baselines[0]!,
        known: [...new Set(baselines.flatMap((b) => b.known))],
        fixed: baselines[0]!.fixed.filter((f) => baselines.every((b) => b.fixed.some((g) => g.signature === f.signature))),
        newPaths: mergedNewPaths(baselines.flatMap((b) => b.newPaths ?? [])),
      }
    : null;
  // A path rare in each shard may not be in their sum: the shards' findings are held again, together,
  // to the acceptances that held them (shards of older versions keep their own verdicts).
  if (baseline && baselines.length === reports.length && baselines.every((b) => b.held)) {
    const held = new Map(baselines.flatMap((b) => b.held!).map((a) => [a.signature, a]));
    const again = applyBaseline(
      findings.map((f) => (f.status === 'known' ? { ...f, status: 'new' as const } : f)),
      { tool: 'kmesh-check-baseline', version: 1, accepted: [...held.values()] },
      baseline.file,
    );
    findings = again.findings;
    baseline = { ...baseline, known: again.baseline.known, newPaths: again.baseline.newPaths, rarePaths: again.baseline.rarePaths, held: again.baseline.held };
  }
  const failing = findings.filter((f) => f.status !== 'known').length;
  // Shards whose objects had no cgroup/sendmsg4 ran no DNS phase: its classes are not required then.
  // Shards that no class requirement applied to (check --exhaustive) are judged by completeness.
  const judged = reports.some((r) => r.coverage.requirements.length > 0);
  // A shard's phase that stopped half-way fails the merged run as it failed the shard.
  const stoppedPhases = reports.flatMap((r) => r.stoppedPhases ?? []);
  const paths = requiredPaths(first.states as StatesOption);
  const coverage = judged
    ? { ...coverageOf(stats, findings.length ? [] : paths, undefined, stats.dnsCases > 0), ...(findings.length ? { pathsWaived: paths.length } : {}) }
    : { ok: true, requirements: [], targeted: 0 };
  return {
    ...first,
    shard: null,
    runs: reports.reduce((n, r) => n + r.runs, 0),
    cases: reports.reduce((n, r) => n + r.cases, 0),
    durationMs: Math.max(...reports.map((r) => r.durationMs)),
    interrupted: reports.some((r) => r.interrupted),
    invariants: [...invariants.values()],
    statistics: stats.toJSON(),
    coverage,
    findings,
    unclustered: reports.reduce((n, r) => n + (r.unclustered ?? 0), 0),
    stopped: reports.some((r) => r.stopped),
    baseline,
    stoppedPhases,
    failures: failing,
    verdict: failing || !coverage.ok || stoppedPhases.length > 0 ? 'fail' : 'pass',
  };
}

export function mergeCommand(files: string[], o: { json?: string }): number {
  const reports: ShardReport[] = files.map(readReport);
  const exploration = mergeExplorations(reports);
  const sections = mergeSectionPhases(reports);
  // All the reports' program coverage over the first's (mergeReports starts from the first).
  const merged = { ...mergeReports(reports), ...mergedProgramCoverage(reports), ...(exploration ? { exploration } : {}), ...sections };
  process.stdout.write(`merged ${files.length} reports\n${formatSummary(merged)}\n`);
  if (exploration) {
    const figures = `${exploration.states} states, ${exploration.choicePoints} choice points, ${(exploration.durationMs / 1000).toFixed(1)} s`;
    process.stdout.write(
      `exhaustive: ${exploration.complete ? 'complete' : 'incomplete'} for scope ${exploration.scope}: ${figures}${exploration.complete ? '' : `; ${exploration.truncated.join('; ')}`}\n`,
    );
  }
  for (const [name, p] of [
    ['acceleration', sections.acceleration],
    ['connection reports', sections.reports],
  ] as const) {
    if (p?.enumeration) process.stdout.write(formatMergedEnumeration(name, p.enumeration) + '\n');
  }
  if (o.json) writeFileSync(o.json, JSON.stringify(merged, null, 2) + '\n');
  return merged.verdict === 'pass' ? 0 : 1;
}
