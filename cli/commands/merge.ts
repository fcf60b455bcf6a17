// `kmesh-check merge`: combines the JSON reports of shards into one verdict: cases, invariant
// counts and statistics add up, coverage is judged on the sum, counterexamples are kept.

import { readFileSync, writeFileSync } from 'node:fs';
import { KmeshCheckError } from '../../shared/errors.js';
import { coverageOf, Statistics } from '../../properties/statistics.js';
import { formatSummary, type ReportJson } from '../report.js';
import { REQUIRED_PATHS } from './check.js';

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

type Explored = { scope: number; states: number; choicePoints: number; complete: boolean; truncated: string[]; durationMs: number; findings: number };

/** The union of the shards' exhaustive phases: complete only when every shard's is, at one scope. */
export function mergeExplorations(reports: readonly (ReportJson & { exploration?: Explored })[]): Explored | null {
  const parts = reports.map((r) => r.exploration).filter((e): e is Explored => e !== undefined);
  if (parts.length === 0) return null;
  const scopes = new Set(parts.map((e) => e.scope));
  const truncated = parts.flatMap((e) => e.truncated);
  if (parts.length < reports.length) truncated.push(`${reports.length - parts.length} report(s) without an exhaustive phase`);
  if (scopes.size > 1) truncated.push(`shards explored different scopes (${[...scopes].join(', ')})`);
  return {
    scope: Math.min(...scopes),
    states: parts.reduce((n, e) => n + e.states, 0),
    choicePoints: parts.reduce((n, e) => n + e.choicePoints, 0),
    complete: truncated.length === 0 && parts.every((e) => e.complete),
    truncated,
    durationMs: Math.max(...parts.map((e) => e.durationMs)),
    findings: parts.reduce((n, e) => n + e.findings, 0),
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
  const counterexamples = reports.flatMap((r) => r.counterexamples);
  const coverage = coverageOf(stats, counterexamples.length ? [] : REQUIRED_PATHS);
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
    counterexamples,
    failures: counterexamples.length,
    verdict: counterexamples.length || !coverage.ok ? 'fail' : 'pass',
  };
}

export function mergeCommand(files: string[], o: { json?: string }): number {
  const reports = files.map(readReport);
  const exploration = mergeExplorations(reports);
  const merged = exploration ? { ...mergeReports(reports), exploration } : mergeReports(reports);
  process.stdout.write(`merged ${files.length} reports\n${formatSummary(merged)}\n`);
  if (exploration) {
    const figures = `${exploration.states} states, ${exploration.choicePoints} choice points, ${(exploration.durationMs / 1000).toFixed(1)} s`;
    process.stdout.write(`exhaustive: ${exploration.complete ? 'complete' : 'incomplete'} for scope ${exploration.scope}: ${figures}${exploration.complete ? '' : `; ${exploration.truncated.join('; ')}`}\n`);
  }
  if (o.json) writeFileSync(o.json, JSON.stringify(merged, null, 2) + '\n');
  return merged.verdict === 'pass' ? 0 : 1;
}
