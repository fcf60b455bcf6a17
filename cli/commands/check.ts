// `kmesh-check check`: the main job. Replays saved failures first, then generates cases through
// the properties, prints progress, a summary and a verdict, and writes the reports asked for.

import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ObjectPaths } from '../../model/executor.js';
import { PASS_PATHS } from '../../model/spec/passes.js';
import { judge } from '../../properties/judge.js';
import { runChecks, type Counterexample, type RunResult, type StatesOption } from '../../properties/run.js';
import { coverageOf } from '../../properties/statistics.js';
import { caseSize } from '../../properties/minimize.js';
import { FailureDb } from '../failure-db.js';
import { openExecutor, type ExecutorName } from '../executors.js';
import { progress } from '../progress.js';
import { formatCoverage } from '../../bpf/vm/coverage.js';
import { bpftoolBatch, regressionTest } from '../export.js';
import { defaultObjects } from '../../shared/package.js';
import { writeCoverageFiles } from '../coverage-files.js';
import { buildReport, formatCounterexample, formatSummary, junitXml } from '../report.js';
import { DEFAULT_EXHAUSTIVE_SCOPE, DEFAULT_RUN_EXHAUSTIVE_MS, DEFAULT_RUN_SCOPE, explorationJson, exhaustiveSetup, formatExploration, runExhaustive } from '../exhaustive.js';
import { COVERS_MODEL, type Exploration } from '../../properties/explore.js';
import { Statistics } from '../../properties/statistics.js';
import { invariants as specInvariants } from '../../model/spec/index.js';
import { MATCHES_MODEL } from '../../properties/judge.js';

export interface CheckCommandOptions {
  readonly seed: number;
  readonly runs: number;
  readonly timeLimitMs?: number;
  readonly executor: ExecutorName;
  readonly why: string;
  readonly objects: Partial<ObjectPaths>;
  readonly states: StatesOption;
  readonly json?: string;
  readonly junit?: string;
  /** lcov tracefile of the VM's C source coverage (an HTML page is written beside it). */
  readonly coverageOut?: string;
  readonly shard?: { index: number; count: number };
  readonly root: string;
  readonly failureDb: boolean;
  /** Only the bounded-exhaustive phase (no random sampling). */
  readonly exhaustive?: boolean;
  /** Scope of the exhaustive phase (default 2 with --exhaustive, 1 in a default run). */
  readonly scope?: number;
  /** The default budget of runs: the default run's exhaustive phase gets its share of 10 s. */
  readonly defaultRuns?: number;
}

/** Paths of section 3 a run must see to count as having checked it. */
export const REQUIRED_PATHS = PASS_PATHS;

/** The run result of an exhaustive-only check: the enumerated cases, the invariants the phase holds to. */
function emptyResult(e: Exploration, statistics: Statistics, withExecutor: boolean): RunResult {
  const rows = specInvariants.map((i) => ({ name: i.name, statement: i.statement, checked: e.exercised[i.name] ?? 0, failed: 0 }));
  if (withExecutor) {
    rows.push({ name: MATCHES_MODEL.name, statement: MATCHES_MODEL.statement, checked: e.exercised[MATCHES_MODEL.name] ?? 0, failed: 0 });
    rows.push({ name: COVERS_MODEL.name, statement: COVERS_MODEL.statement, checked: e.exercised[COVERS_MODEL.name] ?? 0, failed: 0 });
  }
  for (const cx of e.counterexamples) {
    const row = rows.find((r) => r.name === cx.failure.invariant);
    if (row) row.failed++;
    else rows.push({ name: cx.failure.invariant, statement: cx.failure.statement, checked: 0, failed: 1 });
  }
  return { cases: e.states, counterexamples: [], invariants: rows, statistics, interrupted: !e.complete, durationMs: e.durationMs };
}

export async function checkCommand(o: CheckCommandOptions): Promise<number> {
  const opened = await openExecutor(o.executor, o.objects, o.why);
  const log = (s: string) => process.stdout.write(s + '\n');
  log(`kmesh-check: executor ${opened.name} (${opened.why})`);
  try {
    const db = FailureDb.at(o.root);
    const known: Counterexample[] = [];
    if (o.failureDb) {
      for (const saved of db.list()) {
        const j = await judge(saved.case, { env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) });
        if (j.failure) {
          log(`saved failure ${saved.id} (${saved.invariant}) still fails`);
          known.push({ phase: saved.phase, seed: saved.seed, path: saved.path, case: saved.case, shrunkFrom: caseSize(saved.case), size: caseSize(saved.case), failure: j.failure, minimizeTries: 0 });
        } else {
          log(`saved failure ${saved.id} (${saved.invariant}) passes now: removed from ${db.dir}`);
          db.remove(saved.id);
        }
      }
    }
    // Bounded-exhaustive phase first: all of --exhaustive, or a small scope before random sampling.
    const setup = await exhaustiveSetup(opened.name, opened.executor, o.objects);
    let exploration: Exploration;
    const exhaustiveStats = new Statistics();
    const exhaustiveStart = Date.now();
    try {
      const share = Math.min(1, o.runs / (o.defaultRuns ?? o.runs));
      const budget = o.exhaustive ? o.timeLimitMs : Math.min(DEFAULT_RUN_EXHAUSTIVE_MS * share, o.timeLimitMs !== undefined ? o.timeLimitMs * 0.2 : Infinity);
      exploration = await runExhaustive(setup, {
        scope: o.scope ?? (o.exhaustive ? DEFAULT_EXHAUSTIVE_SCOPE : DEFAULT_RUN_SCOPE),
        env: opened.env,
        ...(budget !== undefined ? { timeLimitMs: budget } : {}),
        ...(o.shard ? { shard: o.shard } : {}),
        statistics: exhaustiveStats,
      });
    } finally {
      await setup.close();
    }
    log(formatExploration(exploration));
    const left = o.timeLimitMs !== undefined ? Math.max(1, o.timeLimitMs - (Date.now() - exhaustiveStart)) : undefined;
    const bar = progress(o.exhaustive ? 0 : o.runs, 'checking');
    const result = o.exhaustive ? emptyResult(exploration, exhaustiveStats, opened.executor !== undefined) : await runChecks({
      seed: o.seed,
      runs: o.runs,
      states: o.states,
      env: opened.env,
      ...(opened.executor ? { executor: opened.executor } : {}),
      ...(left !== undefined ? { timeLimitMs: left } : {}),
      ...(o.shard ? { shard: o.shard } : {}),
      onCase: (n, phase) => bar.update(n, phase),
    });
    bar.stop();
    for (const cx of [...exploration.counterexamples, ...result.counterexamples]) {
      log('');
      log(formatCounterexample(cx, opened.name));
      if (o.failureDb) {
        const objects = Object.keys(o.objects).length ? ({ ...o.objects } as Record<string, string>) : null;
        const saved = db.save(cx, opened.name, objects);
        const files = db.files(saved.id);
        writeFileSync(files.test, regressionTest(saved, objects));
        writeFileSync(files.bpftool, bpftoolBatch(saved.case, { id: saved.id, connectObject: resolve(objects?.connect ?? defaultObjects().connect), batchFile: resolve(files.bpftool) }));
        log(`  saved as ${files.json} (replayed first on the next run)`);
        log(`  exports: regression test ${files.test}, bpftool batch file ${files.bpftool}`);
      }
    }
    for (const cx of known) {
      log('');
      log(formatCounterexample(cx, opened.name));
    }
    const found = exploration.counterexamples.length + result.counterexamples.length;
    // An exhaustive-only run is judged by its completeness, not by sampling quotas.
    const coverage = o.exhaustive ? { ok: true, requirements: [] } : coverageOf(result.statistics, found ? [] : REQUIRED_PATHS);
    const built = buildReport(
      result,
      { executor: opened.name, objects: opened.executor ? { ...o.objects } as Record<string, string> : null, seed: o.seed, runs: o.runs, states: o.states, shard: o.shard ?? null },
      coverage,
      [...known, ...exploration.counterexamples],
    );
    const report = { ...built, exploration: explorationJson(exploration) };
    log('');
    log(formatSummary(report));
    log(formatExploration(exploration));
    if (!o.exhaustive) log(`phases: exhaustive (scope ${exploration.scope}) found ${exploration.counterexamples.length}, random sampling found ${result.counterexamples.length}`);
    // The VM counts which instructions and branches of each program the run executed.
    const vmCoverage = opened.executor?.coverage?.() ?? null;
    if (vmCoverage) log(`program coverage (vm)\n${formatCoverage(vmCoverage)}`);
    if (o.json) writeFileSync(o.json, JSON.stringify(vmCoverage ? { ...report, programCoverage: vmCoverage } : report, null, 2) + '\n');
    if (o.junit) writeFileSync(o.junit, junitXml(report));
    if (o.coverageOut && vmCoverage) log(writeCoverageFiles(vmCoverage, o.coverageOut));
    return report.verdict === 'pass' ? 0 : 1;
  } finally {
    await opened.executor?.close();
  }
}
