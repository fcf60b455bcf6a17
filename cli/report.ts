// The run's results in the three forms people and machines read: the summary on the terminal,
// the JSON report and JUnit XML for CI systems.

import { formatCase, formatObservation, socketFamilies } from '../properties/format.js';
import type { Counterexample, InvariantCount, RunResult } from '../properties/run.js';
import type { CoverageReport, StatisticsJson } from '../properties/statistics.js';
import { COVERS_MODEL } from '../properties/exact-set.js';
import { ANY_ADDRESS, DEFAULT_ENVIRONMENT, LOOPBACK } from '../model/environment.js';
import { canonicalIpAddr, v4Mapped } from '../model/address.js';
import type { Case, Observation } from '../model/domain.js';
import type { AcceptedFinding } from './baseline.js';

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
  /** It failed in the run but not when judged again alone: the case as generated, not shrunk. */
  readonly unreproduced?: true;
}

/** How a finding stands against the baseline and the failure database. */
export type FindingStatus = 'new' | 'known' | 'saved';

export interface FindingJson extends CounterexampleJson {
  /** Stable id of the finding's signature: what baselines list. */
  readonly signature: string;
  readonly signatureText: string;
  /** Generated cases that failed with this signature. */
  readonly hits: number;
  /** Of those, the states of the exhaustive phase (the rest were sampled). */
  readonly exhaustiveHits?: number;
  /** The model paths those cases left the model on, with how many cases each. */
  readonly modelPaths: Record<string, number>;
  /** The invariants those cases broke (each the one that heads its failure), with how many cases each; absent where only the finding's own. */
  readonly invariantHits?: Record<string, number>;
  /** new: fails the run; known: accepted by the baseline; saved: a saved failure that still fails. */
  readonly status: FindingStatus;
  /** What the compiled program did on the shrunk case, beside the model's path (null: not explained). */
  readonly explanation: unknown;
  /** The signature of an earlier finding whose shrunk case is this one's (null: none): likely one bug breaking two invariants. */
  readonly sameCaseAs?: string | null;
}

/** What the run did with the failure database. */
export interface SavedFailuresJson {
  readonly replayed: number;
  readonly stillFailing: number;
  readonly removed: number;
  /** Saved failures of other objects or executors: left alone. */
  readonly skipped: number;
  /** One line per unusable file. */
  readonly invalid: string[];
}

export interface BaselineJson {
  readonly file: string;
  readonly accepted: number;
  /** Accepted signatures seen again in this run. */
  readonly known: string[];
  /** Accepted signatures this run did not see: fixed (or not reached). */
  readonly fixed: { signature: string; text: string; invariant: string }[];
  /** Accepted signatures this run hit on model paths the baseline does not name: new findings, maybe other bugs. */
  readonly newPaths: { signature: string; text: string; paths: string[]; accepted: string[] }[];
  /**
   * Accepted signatures this run also hit on paths the baseline does not name, but too seldom to
   * tell another bug from the accepted one's rarer cases (cli/baseline.ts unseenPathIsNew): known.
   * `hits` of the finding's `of` were on them; the baseline's run hit it `acceptedHits` times.
   */
  readonly rarePaths?: { signature: string; text: string; paths: string[]; hits: number; of: number; acceptedHits: number }[];
  /** The acceptances of the signatures this run hit (cli/baseline.ts), for `merge` to hold the shards' summed hits to. */
  readonly held?: AcceptedFinding[];
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
  /** Every distinct finding, shrunk, with its hit count (new, known to the baseline, or saved). */
  readonly findings: FindingJson[];
  /** Failing cases past --max-findings distinct signatures: counted, not shrunk. */
  readonly unclustered: number;
  /** Stopped by Ctrl-C: the report holds what the run had found so far. */
  readonly stopped: boolean;
  readonly savedFailures: SavedFailuresJson | null;
  readonly baseline: BaselineJson | null;
  /** Phases that stopped half-way (cli/phase-stopped.ts), as "acceleration: why": each fails the run. */
  readonly stoppedPhases: string[];
}

/** Where a finding was found: enough for its replay line to reproduce it verbatim. */
export interface RunContext {
  readonly executor: string;
  /** The --objects argument of the run (null: our own objects). */
  readonly objects: string | null;
}

/** The command that reproduces a finding exactly (same case, same shrinking, same objects). */
export function replayCommand(cx: Pick<Counterexample, 'phase' | 'seed' | 'path' | 'caseFile'>, run: RunContext | string): string {
  const r = typeof run === 'string' ? { executor: run, objects: null } : run;
  return `kmesh-check replay ${replayCase(cx, cx.caseFile)} --executor ${r.executor}${r.objects ? ` --objects ${r.objects}` : ''}`;
}

/**
 * Which case a replay line names, for every phase: a saved case file (replay --case) by the file,
 * since its seed and path give the case as first generated (before shrinking, or an edit).
 */
export function replayCase(where: { readonly phase: string; readonly seed: number; readonly path: string }, caseFile: string | undefined): string {
  return caseFile !== undefined ? `--case ${caseFile}` : `--phase ${where.phase} --seed ${where.seed} --path ${where.path}`;
}

/** Of a finding's hits, the exhaustive phase's states (Counterexample.exhaustiveHits). */
export function exhaustiveHits(cx: Pick<Counterexample, 'phase' | 'hits' | 'exhaustiveHits'>): number {
  return cx.exhaustiveHits ?? (cx.phase.startsWith('exhaustive') ? cx.hits : 0);
}

/**
 * "32 exhaustive states and 4 sampled cases": what a finding's hits were, as the exploration's
 * line counts its failing states and the invariant table its sampled cases.
 */
function hitsText(cx: Pick<Counterexample, 'phase' | 'hits' | 'exhaustiveHits'>): string {
  const states = exhaustiveHits(cx);
  const sampled = cx.hits - states;
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return [states ? plural(states, 'exhaustive state') : '', sampled ? plural(sampled, 'sampled case') : ''].filter(Boolean).join(' and ');
}

/** Model paths a finding's line names at most; the rest are counted. */
const LISTED_PATHS = 8;

/**
 * "on model paths a (3), b (1)": where the hits of a finding left the model, the most hit first;
 * a section finding's are its shapes ("in shapes ...").
 */
export function pathsText(paths: Readonly<Record<string, number>> | undefined, what: 'model path' | 'shape' = 'model path'): string {
  const list = Object.entries(paths ?? {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (list.length === 0) return '';
  // '-': the failing step ran no connect program (a sendto, a recvfrom), so it left the model on no path.
  const shown = list.slice(0, LISTED_PATHS).map(([p, n]) => `${what === 'model path' && p === '-' ? '- (no connect pass)' : compactPath(p)} (${n})`);
  const rest = list.slice(LISTED_PATHS);
  const more = rest.length ? `, and ${rest.length} more ${what === 'shape' ? 'shapes' : 'paths'} (${rest.reduce((n, [, k]) => n + k, 0)} cases)` : '';
  return ` ${what === 'shape' ? 'in' : 'on'} ${what}${list.length === 1 ? '' : 's'} ${shown.join(', ')}${more}`;
}

/** Paths as read (compactPath), the first few of them and how many more. */
function compactList(paths: readonly string[], most = 4): string {
  const shown = paths.slice(0, most).map((p) => (p === '-' ? '- (no connect pass)' : compactPath(p)));
  return `${shown.join(', ')}${paths.length > most ? `, and ${paths.length - most} more` : ''}`;
}

/**
 * A chain path as read: a run of a repeated sequence of passes written once with its count
 * ("(backend-waypoint > service-waypoint) x17"), as a run of one pass is already ("service-waypoint
 * x34"). Only for reading: the path itself (signatures, baselines) keeps its text.
 */
export function compactPath(path: string): string {
  const parts = path.split(' > ');
  const out: string[] = [];
  for (let i = 0; i < parts.length;) {
    let best = { len: 1, times: 1 };
    for (let len = 2; len <= 4 && i + 2 * len <= parts.length; len++) {
      let times = 1;
      while (i + (times + 1) * len <= parts.length && parts.slice(i + times * len, i + (times + 1) * len).join(' > ') === parts.slice(i, i + len).join(' > ')) times++;
      if (times > 1 && len * times > best.len * best.times) best = { len, times };
    }
    out.push(best.times > 1 ? `(${parts.slice(i, i + best.len).join(' > ')}) x${best.times}` : parts[i]!);
    i += best.len * best.times;
  }
  return out.join(' > ');
}

/**
 * Whether the case names an address of all zeros (a backend's, a waypoint's, a connect's or a
 * sendto's destination) and a peer or datagram arrival shown is where the kernel sends such an
 * address (datagramPeer, kernelPeer): loopback, or a socket's IPv4 source (an address a socket
 * is bound to, the pod's address of a connected one). A reader would otherwise see the model
 * allow a place the maps never name.
 */
function reachesAnyAddress(c: Case, shown: readonly Observation[]): boolean {
  // Compared as addresses (texts differ: '::' and '0:0::0'); a saved case's text that is no address as it is.
  const canonical = (a: string): string => {
    try {
      return canonicalIpAddr(a);
    } catch {
      return a;
    }
  };
  const any = new Set<string>(Object.values(ANY_ADDRESS).map(canonical));
  const bound = c.ops.flatMap((o) => (o.op === 'socket' && o.bindTo !== undefined ? [o.bindTo, v4Mapped(o.bindTo)] : []));
  const pod = DEFAULT_ENVIRONMENT.podAddress.inet;
  const sources = new Set<string>([...Object.values(LOOPBACK), ...bound, pod, v4Mapped(pod)].map(canonical));
  // A waypoint of port 0 is none (NO_WAYPOINT): its address names nothing the program goes to.
  const waypoints = [...c.state.backends, ...c.state.services].flatMap((x) => (x.waypoint.port !== 0 ? [x.waypoint.addr] : []));
  const named = [...c.state.backends.map((b) => b.addr), ...waypoints, ...c.ops.flatMap((o) => (o.op === 'connect' || o.op === 'sendto' ? [o.dest.addr] : []))];
  const place = (o: Observation) => o.peer ?? o.arrivedAt ?? null;
  return named.some((a) => any.has(canonical(a))) && shown.some((o) => place(o) !== null && sources.has(canonical(place(o)!.addr)));
}

/**
 * Where a finding's invariant broke: in the model, on the run's executor, or (executor-covers-model
 * on another executor) on the userspace VM, which runs the objects under test with every prandom
 * draw where a kernel run gets the draws the kernel happens to make.
 */
function whereBroken(f: Pick<Counterexample['failure'], 'source' | 'invariant'>, executor: string): string {
  if (f.source === 'model') return 'in the reference model';
  if (f.invariant === COVERS_MODEL.name && executor !== 'vm') return `on the objects under test, run on the userspace VM with every prandom draw (the ${executor} executor draws only at random)`;
  return `on the ${executor} executor`;
}

/** A counterexample as a person reads it. */
export function formatCounterexample(cx: Counterexample, run: RunContext | string, title = 'COUNTEREXAMPLE'): string {
  const executor = typeof run === 'string' ? run : run.executor;
  const f = cx.failure;
  const families = socketFamilies(cx.case.ops);
  const familyAt = (i: number) => {
    const op = cx.case.ops[i];
    return op && op.op !== 'apply' ? (families.get(op.sock) ?? 'inet') : 'inet';
  };
  const lines = [
    `${title}: invariant "${f.invariant}" broke (${whereBroken(f, executor)})`,
    `  signature ${cx.signature.id}: ${cx.signature.text}${cx.hits ? ` (hit by ${hitsText(cx)}${pathsText(cx.paths)})` : ''}`,
    ...(otherInvariants(cx) ? [`  its cases broke ${invariantsText(cx.invariantHits!)}: one difference that breaks several rules`] : []),
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
    // For executor-covers-model the list is what the model allows and no draw gave (the observed run was allowed).
    const heading = f.invariant === COVERS_MODEL.name ? 'allowed by the model and given by no draw tried, at operation' : 'allowed at operation';
    lines.push(`  ${heading} ${step + 1} (${allowed.length} possibilit${allowed.length === 1 ? 'y' : 'ies'})`);
    for (const o of allowed) lines.push(`    - ${formatObservation(o, familyAt(step))}`);
  }
  if (reachesAnyAddress(cx.case, [...(f.observed ?? []), ...(f.allowedAtStep?.allowed ?? [])])) {
    lines.push(
      "  note: the kernel sends a destination of all zeros (0.0.0.0, ::ffff:0.0.0.0) to the socket's own IPv4 address when it has one (bound, or connected before), else to loopback (127.0.0.1, ::ffff:127.0.0.1; :: to ::1): a rewrite to one shows as that peer or arrival",
    );
  }
  // An exhaustive path names the enumerated state, which minimisation then made smaller.
  const enumerated = cx.phase.startsWith('exhaustive/') && cx.size !== cx.shrunkFrom ? ` (the enumerated case, of size ${cx.shrunkFrom}; replay --case on the saved failure runs the one above)` : '';
  const size = cx.caseFile !== undefined ? `as saved in ${cx.caseFile}` : cx.unreproduced ? 'as generated: it did not fail alone, so it was not shrunk' : `1-minimal, shrunk from ${cx.shrunkFrom}`;
  lines.push(`  size ${cx.size} (map entries + operations; ${size})`, `  replay: ${replayCommand(cx, run)}${enumerated}`);
  return lines.join('\n');
}

export function counterexampleJson(cx: Counterexample, run: RunContext | string): CounterexampleJson {
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
    replay: replayCommand(cx, run),
    text: formatCounterexample(cx, run),
    ...(cx.unreproduced ? { unreproduced: true as const } : {}),
  };
}

function pct(n: number, total: number): string {
  if (!total) return '-';
  const p = (100 * n) / total;
  // A rare class seen at all is not printed as 0.0%.
  return n > 0 && p < 0.1 ? `${n} cases` : `${p.toFixed(1)}%`;
}

/** How many cases the classes needed: one number, or one per kind of class where they differ ("40 (dns: 11, history: 2)"). */
function requiredText(reqs: readonly { readonly class: string; readonly required: number }[]): string {
  const first = reqs[0]?.required ?? 0;
  const other = new Map<string, number>();
  for (const q of reqs) if (q.required !== first) other.set(q.class.split(':')[0]!, q.required);
  return other.size ? `${first} (${[...other].map(([k, n]) => `${k}: ${n}`).join(', ')})` : String(first);
}

/**
 * The end-of-run summary: statistics, per-invariant counts, coverage, verdict. `what` names the
 * report's cases: a run's summary counts its random phase (the exhaustive phase has its own line),
 * an exhaustive-only run's the states it enumerated.
 */
export function formatSummary(r: ReportJson, what = 'cases'): string {
  const s = r.statistics;
  const dist = (title: string, counter: Record<string, number>) =>
    `  ${title.padEnd(13)} ` +
    Object.entries(counter)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${pct(v, s.cases)}`)
      .join(', ');
  const lines = [
    `summary: ${r.cases} ${what} in ${(r.durationMs / 1000).toFixed(1)} s on the ${r.executor} executor (seed ${r.seed})${r.interrupted ? ', stopped by the time limit' : ''}`,
    dist('state kind', s.stateKind),
    dist('family', s.family),
    dist('LB policy', s.policy),
    dist('chain length', s.chainLength),
    dist('operations', s.operations),
    dist('path', s.path),
    // Rules only a history within a case reaches (properties/history-traits.ts).
    dist('histories', s.history ?? {}),
    // A finding names the invariant its shrunk case broke first, which a hit may not have.
    'invariants (cases that exercised each / failed; a failing case counts under the first invariant it broke)',
    ...r.invariants.map((i) => `  ${i.failed ? 'FAIL' : 'ok  '} ${i.name.padEnd(38)} ${String(i.checked).padStart(7)} / ${i.failed}`),
  ];
  const missing = r.coverage.requirements.filter((q) => !q.ok);
  lines.push(
    missing.length
      ? `coverage: FAIL, exercised too rarely: ${missing.map((q) => `${q.class} (${q.seen} < ${q.required}${q.why ? `: ${q.why}` : ''})`).join(', ')}`
      : r.coverage.requirements.length === 0
        ? 'coverage: no class requirement applies to this run (exhaustive only, or stopped early)'
        : `coverage: ok (${r.coverage.requirements.length} classes, each in at least ${requiredText(r.coverage.requirements)} cases${r.coverage.targeted ? `; targeted generation added ${r.coverage.targeted} cases` : ''}${r.coverage.pathsWaived ? `; the ${r.coverage.pathsWaived} model-path classes are not required of a run with findings` : ''})`,
  );
  if (r.savedFailures) {
    const s = r.savedFailures;
    lines.push(
      `saved failures: ${s.replayed} replayed (${s.stillFailing} still fail, ${s.removed} pass now and were removed), ${s.skipped} of other objects or executors skipped${s.invalid.length ? `, ${s.invalid.length} unusable file${s.invalid.length === 1 ? '' : 's'} skipped` : ''}`,
    );
  }
  if (r.findings.length) {
    lines.push(`findings: ${r.findings.length} distinct${r.unclustered ? ` (and ${r.unclustered} failing cases past --max-findings, not shrunk)` : ''}`);
    for (const f of r.findings) {
      const tag = f.status === 'known' ? 'known' : f.status === 'saved' ? 'saved' : 'NEW  ';
      const also = Object.keys(f.invariantHits ?? {}).filter((n) => n !== f.invariant);
      lines.push(
        `  ${tag} ${f.signature} ${String(f.hits).padStart(6)} hit${f.hits === 1 ? ' ' : 's'}  ${f.signatureText}  (${f.invariant}${also.length ? `, also ${also.join(', ')}` : ''}, size ${f.size})`,
      );
      if (f.sameCaseAs) lines.push(`        the same shrunk case as ${f.sameCaseAs}: likely one bug that breaks both invariants`);
    }
  }
  for (const p of r.stoppedPhases ?? []) lines.push(`phase stopped: ${p} (fails the run)`);
  if (r.baseline) {
    const b = r.baseline;
    lines.push(`baseline ${b.file}: ${b.accepted} accepted, ${b.known.length} seen again (known, not failing the run), ${b.fixed.length} no longer seen${b.fixed.length ? ':' : ''}`);
    for (const f of b.fixed) lines.push(`  fixed ${f.signature}  ${f.text}`);
    for (const f of b.newPaths ?? [])
      lines.push(`  new path ${f.signature}  ${f.text}: hit on ${compactList(f.paths)}, accepted on ${compactList(f.accepted) || 'no path'} (another bug there? accept it with baseline --merge)`);
    for (const f of b.rarePaths ?? [])
      lines.push(
        `  rare path ${f.signature}  ${f.text}: also hit on ${compactList(f.paths)} (${f.hits} of its ${f.of} hits, none of the baseline's ${f.acceptedHits}: as many as chance puts in one run): known`,
      );
  }
  const failing = r.findings.filter((f) => f.status !== 'known').length;
  lines.push(
    r.verdict === 'pass'
      ? `verdict: PASS: ${failing === 0 && r.findings.length ? `no new finding (${r.findings.length} known to the baseline)` : 'every invariant held'} on ${r.cases} cases${r.stopped ? ' (stopped early by Ctrl-C)' : ''}`
      : `verdict: FAIL: ${[
          r.failures || !(missing.length || r.stoppedPhases?.length) ? `${r.failures} finding${r.failures === 1 ? '' : 's'}` : '',
          missing.length ? 'coverage requirements not met' : '',
          r.stoppedPhases?.length ? `${r.stoppedPhases.length} phase${r.stoppedPhases.length === 1 ? '' : 's'} stopped` : '',
        ]
          .filter(Boolean)
          .join(', ')}${r.stopped ? ' (stopped early by Ctrl-C)' : ''}`,
  );
  return lines.join('\n');
}

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JUnit XML: one test case per invariant, plus one for coverage. */
export function junitXml(r: ReportJson): string {
  const cases = r.invariants.map((i) => {
    const mine = r.findings.filter((c) => c.invariant === i.name && c.status !== 'known');
    const body = mine.length ? `<failure message="${xml(i.statement)}">${xml(mine.map((c) => c.text).join('\n\n'))}</failure>` : '';
    return `    <testcase classname="kmesh-check.${xml(r.executor)}" name="${xml(i.name)}" time="0">${body}</testcase>`;
  });
  const missing = r.coverage.requirements.filter((q) => !q.ok);
  cases.push(
    `    <testcase classname="kmesh-check.${xml(r.executor)}" name="coverage">${
      missing.length ? `<failure message="exercised too rarely">${xml(missing.map((q) => `${q.class}${q.why ? `: ${q.why}` : ''}`).join(', '))}</failure>` : ''
    }</testcase>`,
  );
  const failures = cases.filter((c) => c.includes('<failure')).length;
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

/** The model paths a finding was hit on (a saved or older finding without them: its signature's path, once). */
export function modelPathsOf(cx: Pick<Counterexample, 'paths' | 'signature'>): Readonly<Record<string, number>> {
  return cx.paths ?? (cx.signature.path ? { [cx.signature.path]: 1 } : {});
}

/** Whether a finding's cases broke an invariant other than its shrunk case's (the table counts them there). */
function otherInvariants(cx: Pick<Counterexample, 'failure' | 'invariantHits'>): boolean {
  return Object.keys(cx.invariantHits ?? {}).some((n) => n !== cx.failure.invariant);
}

/** "executor-matches-model (1354), via-waypoint-sticky (842)": the most broken first. */
function invariantsText(hits: Readonly<Record<string, number>>): string {
  return Object.entries(hits)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([n, k]) => `${n} (${k})`)
    .join(', ');
}

/** A finding of the run (or a saved failure that still fails) with its status and explanation. */
export interface ReportedFinding {
  readonly cx: Counterexample;
  readonly status: FindingStatus;
  readonly explanation?: unknown;
}

export function findingJson(f: ReportedFinding, run: RunContext): FindingJson {
  return {
    ...counterexampleJson(f.cx, run),
    signature: f.cx.signature.id,
    signatureText: f.cx.signature.text,
    hits: f.cx.hits,
    exhaustiveHits: exhaustiveHits(f.cx),
    modelPaths: { ...modelPathsOf(f.cx) },
    ...(otherInvariants(f.cx) ? { invariantHits: { ...f.cx.invariantHits } } : {}),
    status: f.status,
    explanation: f.explanation ?? null,
  };
}

/**
 * Each finding with the signature of the first earlier one that shrank to the same case: two
 * invariants that one bug breaks on one case give two signatures, and the reader should know.
 */
function withSameCases(findings: readonly FindingJson[]): FindingJson[] {
  const firstOfCase = new Map<string, string>();
  return findings.map((f) => {
    const key = JSON.stringify(f.case);
    const first = firstOfCase.get(key) ?? null;
    if (first === null) firstOfCase.set(key, f.signature);
    return { ...f, sameCaseAs: first };
  });
}

export function buildReport(
  result: Pick<RunResult, 'cases' | 'durationMs' | 'interrupted' | 'invariants' | 'statistics' | 'unclustered' | 'stopped'>,
  meta: Pick<ReportJson, 'executor' | 'objects' | 'seed' | 'runs' | 'states' | 'shard'>,
  coverage: CoverageReport,
  findings: readonly FindingJson[],
  extra: { savedFailures?: SavedFailuresJson | null; baseline?: BaselineJson | null; stoppedPhases?: readonly string[] } = {},
): ReportJson {
  const failing = findings.filter((f) => f.status !== 'known').length;
  const stoppedPhases = [...(extra.stoppedPhases ?? [])];
  const failed = failing > 0 || !coverage.ok || stoppedPhases.length > 0;
  return {
    tool: 'kmesh-check',
    version: 1,
    ...meta,
    cases: result.cases,
    durationMs: result.durationMs,
    interrupted: result.interrupted,
    verdict: failed ? 'fail' : 'pass',
    failures: failing,
    invariants: result.invariants,
    statistics: result.statistics.toJSON(),
    coverage,
    findings: withSameCases(findings),
    unclustered: result.unclustered,
    stopped: result.stopped,
    savedFailures: extra.savedFailures ?? null,
    baseline: extra.baseline ?? null,
    stoppedPhases,
  };
}
