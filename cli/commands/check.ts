// `kmesh-check check`: the main job. Replays saved failures first, then generates cases through
// the properties, prints progress, a summary and a verdict, and writes the reports asked for.

import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ObjectPaths } from '../../model/executor.js';
import { PASS_PATHS } from '../../model/spec/passes.js';
import { judge } from '../../properties/judge.js';
import { DNS_SHARE, dnsPhaseRuns, runChecks, type Counterexample, type StatesOption } from '../../properties/run.js';
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
import { accelPhase } from '../accel-phase.js';
import { reportPhase } from '../report-phase.js';
import type { ReportObjectPaths } from '../../bpf/kernel/report/loader.js';
import type { AccelObjectPaths } from '../../bpf/kernel/accel/loader.js';

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
  /** The same-node acceleration objects (section 8); default ours unless --objects is given. */
  readonly accelObjects?: AccelObjectPaths;
  /** The report objects (section 7): connect, sockops, sendmsg and cgroup_skb; default ours unless --objects is given. */
  readonly reportObjects?: ReportObjectPaths;
}

/** Paths of section 3 a run must see to count as having checked it. */
export const REQUIRED_PATHS = PASS_PATHS;

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
    const hooks = opened.executor?.dnsHooks;
    const dns = dnsPhaseRuns(opened.executor);
    if (hooks !== undefined) {
      const missing = ['sendmsg4', 'recvmsg4', 'recvmsg6'].filter((h) => !hooks.includes(h)).map((h) => `cgroup/${h}`);
      log(
        missing.length === 0
          ? 'DNS over UDP sends (section 6): cgroup/sendmsg4, recvmsg4 and recvmsg6 attached'
          : `DNS over UDP sends (section 6): the objects have no ${missing.join(', ')}: checked without ${missing.length === 1 ? 'it' : 'them'}${dns ? '' : ' (the dns phase is skipped)'}`,
      );
    }
    const bar = progress(Math.round(o.runs * (dns ? 1 + DNS_SHARE : 1)), 'checking');
    const result = await runChecks({
      seed: o.seed,
      runs: o.runs,
      states: o.states,
      env: opened.env,
      ...(opened.executor ? { executor: opened.executor } : {}),
      ...(o.timeLimitMs !== undefined ? { timeLimitMs: o.timeLimitMs } : {}),
      ...(o.shard ? { shard: o.shard } : {}),
      onCase: (n, phase) => bar.update(n, phase),
    });
    bar.stop();
    for (const cx of result.counterexamples) {
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
    const coverage = coverageOf(result.statistics, result.counterexamples.length ? [] : REQUIRED_PATHS, undefined, dns);
    const report = buildReport(
      result,
      { executor: opened.name, objects: opened.executor ? { ...o.objects } as Record<string, string> : null, seed: o.seed, runs: o.runs, states: o.states, shard: o.shard ?? null },
      coverage,
      known,
    );
    log('');
    log(formatSummary(report));
    // The VM counts which instructions and branches of each program the run executed.
    const vmCoverage = opened.executor?.coverage?.() ?? null;
    if (vmCoverage) log(`program coverage (vm)\n${formatCoverage(vmCoverage)}`);
    const accel = await accelPhase({ executor: opened.name, seed: o.seed, runs: o.runs, userObjects: Object.keys(o.objects).length > 0, log, ...(o.accelObjects ? { objects: o.accelObjects } : {}) });
    const reports = reportPhase({ executor: opened.name, seed: o.seed, runs: o.runs, userObjects: Object.keys(o.objects).length > 0, log, ...(o.reportObjects ? { objects: o.reportObjects } : {}) });
    const json = { ...report, ...(hooks !== undefined ? { dnsHooks: hooks } : {}), ...(vmCoverage ? { programCoverage: vmCoverage } : {}), acceleration: accel, reports };
    if (o.json) writeFileSync(o.json, JSON.stringify(json, null, 2) + '\n');
    if (o.junit) writeFileSync(o.junit, junitXml(report));
    if (o.coverageOut && vmCoverage) log(writeCoverageFiles(vmCoverage, o.coverageOut));
    return report.verdict === 'pass' && accel.status !== 'fail' && reports.status !== 'fail' ? 0 : 1;
  } finally {
    await opened.executor?.close();
  }
}
