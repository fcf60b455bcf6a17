// `kmesh-check check`: the main job. Replays the saved failures of the objects it checks, then
// generates cases through the properties until the budget ends, keeping every distinct finding
// (one shrunk representative per signature, with its hit count), explains each on the VM, prints
// a summary and a verdict (against a baseline when given), and writes the reports asked for.
// Ctrl-C stops generation: what was found so far is still shrunk, saved and reported.

import { resolve } from 'node:path';
import type { ObjectPaths } from '../../model/executor.js';
import { PASS_PATHS } from '../../model/spec/passes.js';
import { DNS_SHARE, dnsPhaseRuns, runChecks, type RunResult, type StatesOption } from '../../properties/run.js';
import { coverageOf, type CoverageReport } from '../../properties/statistics.js';
import { belongsTo, FailureDb, objectsArgument, writeAtomic, type RunIdentity } from '../failure-db.js';
import { openExecutor, type ExecutorName } from '../executors.js';
import { progress } from '../progress.js';
import { formatCoverage, mergeCoverage } from '../../bpf/vm/coverage.js';
import { bpftoolBatch, regressionTest } from '../export.js';
import { defaultObjects, packageRoot } from '../../shared/package.js';
import { writeCoverageFiles } from '../coverage-files.js';
import {
  buildReport,
  exhaustiveHits,
  findingJson,
  formatCounterexample,
  formatSummary,
  junitXml,
  modelPathsOf,
  type FindingJson,
  type ReportedFinding,
  type RunContext,
  type SavedFailuresJson,
} from '../report.js';
import { applyBaseline, readBaseline, type Baseline } from '../baseline.js';
import { isKmeshCheckError } from '../../shared/errors.js';
import { ModelInputError, OutcomeLimitError } from '../../model/impl/index.js';
import { explainFinding, formatExplanation } from '../explain.js';
import {
  DEFAULT_EXHAUSTIVE_SCOPE,
  DEFAULT_RUN_EXHAUSTIVE_MS,
  DEFAULT_RUN_SCOPE,
  explorationJson,
  exhaustiveSetup,
  formatExploration,
  judgeSaved,
  savedCounterexample,
  runExhaustive,
  type ExhaustiveSetup,
} from '../exhaustive.js';
import type { Exploration } from '../../properties/explore.js';
import { COVERS_MODEL } from '../../properties/exact-set.js';
import { Statistics } from '../../properties/statistics.js';
import { addPaths } from '../../properties/tally.js';
import { invariants as specInvariants } from '../../model/spec/index.js';
import { MATCHES_MODEL } from '../../properties/judge.js';
import { defaultJobs, startRunThread, threadJobs } from '../jobs.js';
import { preflightSectionObjects } from '../object-preflight.js';
import { verifyRunObjects } from '../verify-objects.js';
import { STOPPED_AT_FIRST, printSectionFindings, runSectionPhases, sectionCoverage, sectionPhaseJson, stoppedPhasesOf, type SectionPhasesOutcome } from '../section-phases.js';
import type { SavedSectionFailure } from '../failure-db.js';
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
  /** Distinct findings shrunk and reported at most (default 10). */
  readonly maxFindings?: number;
  /** Stop at the first failing case (for bisecting). */
  readonly stopAtFirst?: boolean;
  /** A baseline file of accepted findings. */
  readonly baseline?: string;
  /** Explain each finding on the VM (default true). */
  readonly explain?: boolean;
  /** Only the bounded-exhaustive phase (no random sampling). */
  readonly exhaustive?: boolean;
  /** Scope of the exhaustive phase (default 1 in a default run and with --exhaustive). */
  readonly scope?: number;
  /** Runs from which the exhaustive phase gets its whole time budget (fewer: their share of it). */
  readonly fullExhaustiveRuns?: number;
  /** Parts of the random phases run at once, each on its own executor (default: defaultJobs of cli/jobs.ts). */
  readonly jobs?: number;
}

/** Paths of section 3 a run must see to count as having checked it. */
export const REQUIRED_PATHS = PASS_PATHS;

/**
 * Paths that need a map state the control plane never writes (section 5: every upstream id
 * resolves, every counted endpoint and its backend exist, the policy is 0, 1 or 2): a run on
 * consistent states only cannot see them, so it is not asked to.
 */
export const RAW_ONLY_PATHS: readonly string[] = ['direct-backend-missing', 'unknown-policy', 'endpoint-missing', 'backend-missing'];

/** The paths a run with these states must see. */
export function requiredPaths(states: StatesOption): readonly string[] {
  return states === 'consistent' ? REQUIRED_PATHS.filter((p) => !RAW_ONLY_PATHS.includes(p)) : REQUIRED_PATHS;
}

/** The run's identity for the failure database: the executor and the resolved objects. */
export function runIdentity(executor: ExecutorName, objects: Partial<ObjectPaths>): RunIdentity {
  if (executor === 'model') return { executor, objects: null };
  const all = { ...defaultObjects(packageRoot()), ...objects };
  return { executor, objects: Object.fromEntries(Object.entries(all).map(([k, v]) => [k, resolve(v)])), ours: Object.keys(objects).length === 0 };
}

/** Coverage of a finished run, with the reason for each class targeted generation could not reach. */
export function judgeCoverage(result: RunResult, findings: number, states: StatesOption, dns = true, paths = requiredPaths(states)): CoverageReport {
  if (result.stopped) return { ok: true, requirements: [], targeted: 0 };
  const base = coverageOf(result.statistics, findings ? [] : paths, undefined, dns);
  const targeted = result.targets.reduce((n, t) => n + t.tried, 0);
  const requirements = base.requirements.map((q) => {
    const t = result.targets.find((x) => x.class === q.class);
    if (q.ok || !t) return q;
    return { ...q, why: `targeted generation ran ${t.tried} of at most ${t.cap} cases toward it and reached it ${q.seen} times: the generators of --states ${states} rarely or never produce it` };
  });
  return { ok: base.ok, requirements, targeted, ...(findings && paths.length ? { pathsWaived: paths.length } : {}) };
}

/** The run result of an exhaustive-only check: the enumerated cases, the invariants the phase holds to. */
function exhaustiveOnlyResult(e: Exploration, statistics: Statistics, withExecutor: boolean, stopped: boolean): RunResult {
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
  // Interrupted as a sampled run is: by a time limit (the exploration's line says what else cut it short).
  const timedOut = e.truncated.some((t) => t.startsWith('time limit'));
  return { cases: e.states, counterexamples: [], unclustered: 0, invariants: rows, statistics, interrupted: timedOut, stopped, durationMs: e.durationMs, targets: [] };
}

export async function checkCommand(o: CheckCommandOptions): Promise<number> {
  // Read the baseline first: a bad baseline is a usage error before any work is done.
  const baseline: Baseline | null = o.baseline ? readBaseline(o.baseline) : null;
  // So are section objects named that are missing, no BPF object, or without their programs:
  // their phase would skip, and the run pass, unseen.
  preflightSectionObjects({ ...(o.reportObjects ? { report: o.reportObjects } : {}), ...(o.accelObjects ? { accel: o.accelObjects } : {}) });
  // And objects the kernel's verifier refuses (where this process may ask it).
  const verified = o.executor === 'model' ? null : await verifyRunObjects(o);
  const log = (s: string) => process.stdout.write(s + '\n');
  let stopRequested = false;
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    stopRequested = true;
    process.stderr.write('\nkmesh-check: stopping (Ctrl-C again to quit at once); shrinking and reporting what was found so far\n');
  };
  process.on('SIGINT', onSigint);
  let opened;
  try {
    opened = await openExecutor(o.executor, o.objects, o.why);
  } catch (e) {
    process.off('SIGINT', onSigint);
    throw e;
  }
  log(`kmesh-check: executor ${opened.name} (${opened.why})`);
  if (verified !== null) log(verified);
  // The replay line names the objects by absolute path, so it works from any directory.
  const given = Object.fromEntries(Object.entries(o.objects).map(([k, v]) => [k, resolve(v as string)]));
  const run: RunContext = { executor: opened.name, objects: Object.keys(given).length ? objectsArgument(given) : null };
  const identity = runIdentity(opened.name, o.objects);
  // One setup (the VM beside the kernel) for the saved failures, the exhaustive phase and the exact
  // outcome sets of the random phases.
  let setup: ExhaustiveSetup | undefined;
  try {
    setup = await exhaustiveSetup(opened.name, opened.executor, o.objects);
    // The VM's run thread for a one-job run starts now, beside the saved failures and the
    // exhaustive phase, which run here (it loads its modules and objects in about 0.1 s).
    const plannedJobs = o.jobs ?? defaultJobs(o.runs, opened.name);
    const runThread = o.exhaustive !== true ? startRunThread(opened.executor, plannedJobs) : undefined;
    runThread?.catch(() => undefined);
    const db = FailureDb.at(o.root);
    const reported: ReportedFinding[] = [];
    let savedFailures: SavedFailuresJson | null = null;
    // Saved findings of the acceleration and report phases: replayed by those phases.
    let sectionSaved: SavedSectionFailure[] = [];
    if (o.failureDb) {
      const { failures, sections, invalid } = db.list();
      sectionSaved = sections;
      for (const line of invalid) log(`kmesh-check: ${line}`);
      let replayed = 0;
      let stillFailing = 0;
      let removed = 0;
      let skipped = 0;
      for (const saved of failures) {
        if (stopRequested) break;
        if (!belongsTo(saved, identity)) {
          skipped++;
          continue;
        }
        let j;
        try {
          // A finding of the exhaustive phase replays by exact outcome sets, as it was found.
          j = await judgeSaved(saved, { name: opened.name, executor: opened.executor, objects: o.objects, env: opened.env, setup });
        } catch (e) {
          // A case the executor or the model cannot take (hand-edited, or from another version).
          if (!isKmeshCheckError(e) && !(e instanceof ModelInputError) && !(e instanceof OutcomeLimitError)) throw e;
          const line = `${saved.file ?? db.files(saved.id).json}: cannot be replayed (${e.message}); skipped: delete it or restore it from version control`;
          log(`kmesh-check: ${line}`);
          invalid.push(line);
          continue;
        }
        replayed++;
        if (j.failure && j.signature) {
          stillFailing++;
          log(`saved failure ${saved.id} (${saved.invariant}) still fails`);
          reported.push({
            cx: savedCounterexample(saved, { failure: j.failure, signature: j.signature }, saved.file ?? db.files(saved.id).json),
            status: 'saved',
          });
        } else {
          removed++;
          log(`saved failure ${saved.id} (${saved.invariant}) passes now on its own objects: removed from ${db.dir}`);
          db.remove(saved.id, saved.file);
        }
      }
      if (skipped) log(`saved failures: ${skipped} of other objects or executors skipped (replay them with kmesh-check replay --case FILE)`);
      savedFailures = { replayed, stillFailing, removed, skipped, invalid };
    }
    const hooks = opened.executor?.dnsHooks;
    const dns = dnsPhaseRuns(opened.executor);
    if (hooks !== undefined) {
      const missing = ['sendmsg4', 'recvmsg4', 'recvmsg6'].filter((h) => !hooks.includes(h)).map((h) => `cgroup/${h}`);
      log(
        missing.length === 0
          ? 'DNS over UDP sends (section 6): cgroup/sendmsg4, recvmsg4 and recvmsg6 attached'
          : `DNS over UDP sends (section 6): the objects have no ${missing.join(', ')}: checked without ${missing.length === 1 ? 'it' : 'them'}${dns ? '' : ' (the dns phase and the exhaustive datagram sequences are skipped)'}`,
      );
    }
    // Bounded-exhaustive phase first: all of --exhaustive, or a small scope before random sampling.
    const exhaustiveStats = new Statistics();
    const exhaustiveStart = Date.now();
    const share = Math.min(1, o.runs / (o.fullExhaustiveRuns ?? o.runs));
    const budget = o.exhaustive ? o.timeLimitMs : Math.min(DEFAULT_RUN_EXHAUSTIVE_MS * share, o.timeLimitMs !== undefined ? o.timeLimitMs * 0.2 : Infinity);
    const exploration = await runExhaustive(setup, {
      scope: o.scope ?? (o.exhaustive ? DEFAULT_EXHAUSTIVE_SCOPE : DEFAULT_RUN_SCOPE),
      env: opened.env,
      ...(budget !== undefined ? { timeLimitMs: budget } : {}),
      ...(o.shard ? { shard: o.shard } : {}),
      ...(o.maxFindings !== undefined ? { maxFindings: o.maxFindings } : {}),
      statistics: exhaustiveStats,
      shouldStop: () => stopRequested,
      ...(o.stopAtFirst ? { stopAtFirst: true } : {}),
      // Only an explicit --jobs splits the exploration: a job's thread and executor start cold,
      // which the default scope's seconds do not repay. Not to stop at the first finding, which
      // needs one ordered enumeration.
      ...(o.jobs !== undefined && o.jobs > 1 && o.stopAtFirst !== true
        ? {
            jobs: {
              count: o.jobs,
              spec: { executor: opened.name, objects: o.objects, seed: o.seed, runs: o.runs, states: o.states },
              ...(opened.executor ? { into: opened.executor } : {}),
            },
          }
        : {}),
    });
    log(formatExploration(exploration));
    const left = o.timeLimitMs !== undefined ? Math.max(1, o.timeLimitMs - (Date.now() - exhaustiveStart)) : undefined;
    // --stop-at-first and the exhaustive phase found a failing case: no phase runs after it.
    const stoppedAtFirst = o.stopAtFirst === true && exploration.counterexamples.length > 0;
    const skipRandom = o.exhaustive === true || stopRequested || stoppedAtFirst;
    const bar = progress(skipRandom ? 0 : Math.round(o.runs * (dns ? 1 + DNS_SHARE : 1)), 'checking');
    const jobs = skipRandom ? 1 : plannedJobs;
    if (!skipRandom) await runThread;
    const spec = {
      executor: opened.name,
      objects: o.objects,
      seed: o.seed,
      runs: o.runs,
      states: o.states,
      ...(left !== undefined ? { timeLimitMs: left } : {}),
      ...(o.shard ? { shard: o.shard } : {}),
      exact: true,
    };
    const result = skipRandom
      ? exhaustiveOnlyResult(exploration, exhaustiveStats, opened.executor !== undefined, stopRequested)
      : await runChecks({
          ...(setup.vm ? { exact: setup.vm } : {}),
          seed: o.seed,
          runs: o.runs,
          states: o.states,
          env: opened.env,
          ...(opened.executor ? { executor: opened.executor } : {}),
          ...(left !== undefined ? { timeLimitMs: left } : {}),
          ...(o.shard ? { shard: o.shard } : {}),
          ...(o.maxFindings !== undefined ? { maxFindings: o.maxFindings } : {}),
          stopAtFirst: o.stopAtFirst === true,
          shouldStop: () => stopRequested,
          targetCoverage: { paths: requiredPaths(o.states) },
          onCase: (n, phase) => bar.update(n, phase),
          ...(jobs > 1 ? { jobs: threadJobs(spec, jobs, { shouldStop: () => stopRequested, ...(opened.executor ? { into: opened.executor } : {}) }) } : {}),
        });
    bar.stop();
    await opened.executor?.collectThreadCoverage?.();
    // A saved failure that the run found again is one finding, not two.
    const savedSigs = new Set(reported.map((r) => r.cx.signature.id));
    // The exhaustive phase's findings first; a signature both phases hit is one finding.
    for (const cx of [...exploration.counterexamples, ...result.counterexamples]) {
      const i = reported.findIndex((r) => r.cx.signature.id === cx.signature.id);
      if (i < 0) {
        reported.push({ cx, status: 'new' });
        continue;
      }
      const had = reported[i]!.cx;
      const joined = {
        ...had,
        hits: had.hits + cx.hits,
        exhaustiveHits: exhaustiveHits(had) + exhaustiveHits(cx),
        paths: addPaths(modelPathsOf(had), modelPathsOf(cx)),
        invariantHits: addPaths(had.invariantHits ?? {}, cx.invariantHits ?? {}),
      };
      reported[i] = savedSigs.has(cx.signature.id) ? { cx: joined, status: 'saved' } : { ...reported[i]!, cx: joined };
    }
    const explained: ReportedFinding[] = [];
    for (const f of reported) {
      const explanation = o.explain === false || opened.name === 'model' ? null : await explainFinding(f.cx.case, opened.env, identity.objects ?? {});
      explained.push(explanation ? { ...f, explanation } : f);
    }
    // The acceleration and report phases run after the routing checks (not after a Ctrl-C, nor after
    // a failing case under --stop-at-first); their findings join the run's, before the baseline.
    const userObjects = Object.keys(o.objects).length > 0;
    const sections: SectionPhasesOutcome | null =
      result.stopped || stoppedAtFirst
        ? null
        : await runSectionPhases({
            executor: opened.name,
            seed: o.seed,
            runs: o.runs,
            userObjects,
            saved: sectionSaved,
            db,
            log,
            ...(o.accelObjects ? { accelObjects: o.accelObjects } : {}),
            ...(o.reportObjects ? { reportObjects: o.reportObjects } : {}),
            ...(o.maxFindings !== undefined ? { maxFindings: o.maxFindings } : {}),
            ...(o.exhaustive ? { exhaustiveScope: o.scope ?? DEFAULT_EXHAUSTIVE_SCOPE } : {}),
            ...(o.shard ? { shard: o.shard } : {}),
            ...(o.stopAtFirst ? { stopAtFirst: true } : {}),
          });
    if (sections && savedFailures) {
      const c = sections.counts;
      savedFailures = {
        ...savedFailures,
        replayed: savedFailures.replayed + c.replayed,
        stillFailing: savedFailures.stillFailing + c.stillFailing,
        removed: savedFailures.removed + c.removed,
        skipped: savedFailures.skipped + c.skipped,
      };
    }
    let findings: FindingJson[] = [...explained.map((f) => findingJson(f, run)), ...(sections?.findings ?? [])];
    let baselineJson = null;
    if (baseline && o.baseline) {
      const b = applyBaseline(findings, baseline, o.baseline);
      findings = b.findings;
      baselineJson = b.baseline;
    }
    explained.forEach((f, i) => {
      const status = findings[i]!.status;
      log('');
      const newPath = baselineJson?.newPaths.find((p) => p.signature === f.cx.signature.id);
      const title = status === 'known' ? 'KNOWN FINDING (accepted by the baseline)' : status === 'saved' ? 'SAVED FAILURE' : 'FINDING';
      log(formatCounterexample(f.cx, run, newPath ? `${title} (the baseline accepts its signature, not on model path ${newPath.paths.join(', ')})` : title));
      if (f.explanation)
        log(
          formatExplanation(f.explanation as never)
            .map((l) => `  ${l}`)
            .join('\n'),
        );
      // A case that did not fail alone would pass its replay and be taken for fixed: not saved.
      if (o.failureDb && f.status === 'new' && f.cx.unreproduced) {
        log('  not saved: it did not fail when run alone, so a replay of it would say nothing');
      } else if (o.failureDb && f.status === 'new') {
        const saved = db.save(f.cx, identity);
        const files = db.files(saved.id);
        writeAtomic(files.test, regressionTest(saved, identity.objects));
        writeAtomic(files.bpftool, bpftoolBatch(saved.case, { id: saved.id, connectObject: resolve(identity.objects?.connect ?? defaultObjects().connect), batchFile: resolve(files.bpftool) }));
        log(`  saved as ${files.json} (replayed first on the next run of these objects)`);
        log(`  exports: regression test ${files.test}, bpftool batch file ${files.bpftool}`);
      }
    });
    if (sections)
      printSectionFindings(
        sections,
        findings.slice(explained.length).map((f) => f.status),
        { failureDb: o.failureDb, db, log, newPaths: baselineJson?.newPaths ?? [] },
      );
    // An exhaustive-only run is judged by its completeness, not by sampling quotas; nor is a run
    // that stopped at its first finding on purpose.
    const quotasMoot = o.exhaustive === true || (o.stopAtFirst === true && explained.length > 0);
    const coverage = quotasMoot ? { ok: true, requirements: [], targeted: 0 } : judgeCoverage(result, explained.length, o.states, dns);
    const withSections = sections ? { ...result, invariants: [...result.invariants, ...sections.rows] } : result;
    const stoppedPhases = sections ? stoppedPhasesOf(sections) : [];
    const report = buildReport(withSections, { executor: opened.name, objects: identity.objects, seed: o.seed, runs: o.runs, states: o.states, shard: o.shard ?? null }, coverage, findings, {
      savedFailures,
      baseline: baselineJson,
      stoppedPhases,
    });
    log('');
    // The VM counts which instructions and branches of each program the run executed.
    const vmCoverage = opened.executor?.coverage?.() ?? null;
    // sockops holds the report paths too, which only the report phase runs (its own coverage line).
    if (vmCoverage) log(`program coverage (vm, routing and DNS cases; sockops's report paths are the report phase's)\n${formatCoverage(vmCoverage)}`);
    if (!o.exhaustive) {
      const of = (phase: string) => sections?.entries.filter((e) => e.spec.phase === phase).length ?? 0;
      const sectionPart = sections ? `, acceleration found ${of('accel')}, connection reports found ${of('report')}` : '';
      const explored = `scope ${exploration.scope}, ${exploration.complete ? 'complete' : 'incomplete'}`;
      log(`phases: exhaustive (${explored}) found ${exploration.counterexamples.length}, random sampling found ${result.counterexamples.length}${sectionPart}`);
    }
    // The summary last, ending with the verdict (the exhaustive phase's line was printed as it ended).
    log(formatSummary(report, skipRandom ? 'states of the exhaustive phase' : 'sampled cases'));
    // The routing checks stopped: by Ctrl-C, or at their first failing case under --stop-at-first.
    const notRun = { status: 'skipped' as const, why: stopRequested ? 'interrupted' : STOPPED_AT_FIRST };
    const accel = sections?.accel ?? notRun;
    const reports = sections?.reports ?? notRun;
    const json = {
      ...report,
      exploration: explorationJson(exploration),
      ...(hooks !== undefined ? { dnsHooks: hooks } : {}),
      ...(vmCoverage ? { programCoverage: vmCoverage } : {}),
      acceleration: sectionPhaseJson(accel),
      reports: sectionPhaseJson(reports),
    };
    if (o.json) writeAtomic(o.json, JSON.stringify(json, null, 2) + '\n');
    if (o.junit) writeAtomic(o.junit, junitXml(report));
    // The C source files: every phase's VM runs (the section phases' programs too).
    if (o.coverageOut && vmCoverage) log(writeCoverageFiles(mergeCoverage([vmCoverage, ...sectionCoverage(sections)]), o.coverageOut));
    if (result.stopped) return 130;
    // The phases' findings are the run's findings: the verdict (and the baseline) covers them.
    return report.verdict === 'pass' ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    await setup?.close();
    await opened.executor?.close();
  }
}
