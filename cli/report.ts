// The run's results in the three forms people and machines read: the summary on the terminal,
// the JSON report and JUnit XML for CI systems.

import { formatCase, formatObservation, socketFamilies } from '../properties/format.js';
import type { Counterexample, InvariantCount, RunResult } from '../properties/run.js';
import type { CoverageReport, StatisticsJson } from '../properties/statistics.js';

export interface CounterexampleJson {
  readonly invariant: string;
  readonly statement: string;
  readonly detail: string;
  readonly source: string;
  readonly phase: string;
  readonly seed: number;
  readonly path: string;
  readonly size: number;
  readonly shrunkFrom: number;
  readonly case: Counterexample['case'];
  readonly observed: unknown;
  readonly allowedAtStep: unknown;
  readonly replay: string;
  readonly text: string;
}

export interface ReportJson {
  readonly tool: 'kmesh-check';
  readonly version: 1;
  readonly executor: string;
  readonly objects: Record<string, string> | null;
  readonly seed: number;
  readonly runs: number;
  readonly states: string;
  readonly shard: { index: number; count: number } | null;
  readonly cases: number;
  readonly durationMs: number;
  readonly interrupted: boolean;
  readonly verdict: 'pass' | 'fail';
  readonly failures: number;
  readonly invariants: InvariantCount[];
  readonly statistics: StatisticsJson;
  readonly coverage: CoverageReport;
  readonly counterexamples: CounterexampleJson[];
}

export function replayCommand(cx: Pick<Counterexample, 'phase' | 'seed' | 'path'>, executor: string): string {
  return `kmesh-check replay --phase ${cx.phase} --seed ${cx.seed} --path ${cx.path} --executor ${executor}`;
}

/** A counterexample as a person reads it. */
export function formatCounterexample(cx: Counterexample, executor: string): string {
  const f = cx.failure;
  const families = socketFamilies(cx.case.ops);
  const familyAt = (i: number) => {
    const op = cx.case.ops[i];
    return op && op.op !== 'apply' ? families.get(op.sock) ?? 'inet' : 'inet';
  };
  const lines = [
    `COUNTEREXAMPLE: invariant "${f.invariant}" broke (${f.source === 'model' ? 'in the reference model' : `on the ${executor} executor`})`,
    `  ${f.statement}`,
    `  ${f.detail}`,
    ...formatCase(cx.case).map((l) => `  ${l}`),
  ];
  if (f.observed) {
    lines.push('  observed');
    f.observed.forEach((o, i) => lines.push(`    ${i + 1}. ${formatObservation(o, familyAt(i))}`));
  }
  if (f.allowedAtStep) {
    const { step, allowed } = f.allowedAtStep;
    lines.push(`  allowed at operation ${step + 1} (${allowed.length} possibilit${allowed.length === 1 ? 'y' : 'ies'})`);
    for (const o of allowed) lines.push(`    - ${formatObservation(o, familyAt(step))}`);
  }
  lines.push(
    `  size ${cx.size} (map entries + operations; 1-minimal, shrunk from ${cx.shrunkFrom})`,
    `  replay: ${replayCommand(cx, executor)}`,
  );
  return lines.join('\n');
}

export function counterexampleJson(cx: Counterexample, executor: string): CounterexampleJson {
  return {
    invariant: cx.failure.invariant,
    statement: cx.failure.statement,
    detail: cx.failure.detail,
    source: cx.failure.source,
    phase: cx.phase,
    seed: cx.seed,
    path: cx.path,
    size: cx.size,
    shrunkFrom: cx.shrunkFrom,
    case: cx.case,
    observed: cx.failure.observed ?? null,
    allowedAtStep: cx.failure.allowedAtStep ?? null,
    replay: replayCommand(cx, executor),
    text: formatCounterexample(cx, executor),
  };
}

function pct(n: number, total: number): string {
  return total ? `${((100 * n) / total).toFixed(1)}%` : '-';
}

/** The end-of-run summary: statistics, per-invariant counts, coverage, verdict. */
export function formatSummary(r: ReportJson): string {
  const s = r.statistics;
  const dist = (title: string, counter: Record<string, number>) =>
    `  ${title.padEnd(13)} ` +
    Object.entries(counter)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${pct(v, s.cases)}`)
      .join(', ');
  const lines = [
    `summary: ${r.cases} cases in ${(r.durationMs / 1000).toFixed(1)} s on the ${r.executor} executor (seed ${r.seed})${r.interrupted ? ', stopped by the time limit' : ''}`,
    dist('state kind', s.stateKind),
    dist('family', s.family),
    dist('LB policy', s.policy),
    dist('chain length', s.chainLength),
    dist('operations', s.operations),
    dist('path', s.path),
    'invariants (cases that exercised each / failed)',
    ...r.invariants.map((i) => `  ${i.failed ? 'FAIL' : 'ok  '} ${i.name.padEnd(38)} ${String(i.checked).padStart(7)} / ${i.failed}`),
  ];
  const missing = r.coverage.requirements.filter((q) => !q.ok);
  lines.push(
    missing.length
      ? `coverage: FAIL, exercised too rarely: ${missing.map((q) => `${q.class} (${q.seen} < ${q.required})`).join(', ')}`
      : `coverage: ok (${r.coverage.requirements.length} classes, each in at least ${r.coverage.requirements[0]?.required ?? 0} cases)`,
  );
  lines.push(
    r.verdict === 'pass'
      ? `verdict: PASS: every invariant held on ${r.cases} cases`
      : `verdict: FAIL: ${r.failures} counterexample${r.failures === 1 ? '' : 's'}${missing.length ? ', coverage requirements not met' : ''}`,
  );
  return lines.join('\n');
}

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JUnit XML: one test case per invariant, plus one for coverage. */
export function junitXml(r: ReportJson): string {
  const cases = r.invariants.map((i) => {
    const cx = r.counterexamples.find((c) => c.invariant === i.name);
    const body = i.failed || cx ? `<failure message="${xml(i.statement)}">${xml(cx?.text ?? `${i.failed} failing cases`)}</failure>` : '';
    return `    <testcase classname="kmesh-check.${xml(r.executor)}" name="${xml(i.name)}" time="0">${body}</testcase>`;
  });
  const missing = r.coverage.requirements.filter((q) => !q.ok);
  cases.push(
    `    <testcase classname="kmesh-check.${xml(r.executor)}" name="coverage">${
      missing.length ? `<failure message="exercised too rarely">${xml(missing.map((q) => q.class).join(', '))}</failure>` : ''
    }</testcase>`,
  );
  const failures = r.invariants.filter((i) => i.failed).length + (missing.length ? 1 : 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="kmesh-check" tests="${cases.length}" failures="${failures}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="kmesh-check ${xml(r.executor)} seed ${r.seed}" tests="${cases.length}" failures="${failures}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export function buildReport(
  result: RunResult,
  meta: Pick<ReportJson, 'executor' | 'objects' | 'seed' | 'runs' | 'states' | 'shard'>,
  coverage: CoverageReport,
  extraCounterexamples: Counterexample[] = [],
): ReportJson {
  const all = [...extraCounterexamples, ...result.counterexamples];
  const failed = all.length > 0 || !coverage.ok;
  return {
    tool: 'kmesh-check',
    version: 1,
    ...meta,
    cases: result.cases,
    durationMs: result.durationMs,
    interrupted: result.interrupted,
    verdict: failed ? 'fail' : 'pass',
    failures: all.length,
    invariants: result.invariants,
    statistics: result.statistics.toJSON(),
    coverage,
    counterexamples: all.map((c) => counterexampleJson(c, meta.executor)),
  };
}
