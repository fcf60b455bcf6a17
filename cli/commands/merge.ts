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
  const merged = mergeReports(files.map(readReport));
  process.stdout.write(`merged ${files.length} reports\n${formatSummary(merged)}\n`);
  if (o.json) writeFileSync(o.json, JSON.stringify(merged, null, 2) + '\n');
  return merged.verdict === 'pass' ? 0 : 1;
}
