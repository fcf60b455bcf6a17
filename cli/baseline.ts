// Baselines for CI adoption: the signatures of findings a team has accepted (known deviations of
// their data path). A run with --baseline reports accepted findings as known (still counted and
// listed) without failing; new signatures fail; accepted ones the run no longer sees are listed
// as fixed. Signatures do not depend on seeds, ids or addresses (properties/signature.ts), so a
// baseline written from one run applies to later runs with other seeds and budgets. A signature
// is coarse on purpose (one bug, one finding: "connect | result" is any wrong connect result), so
// an acceptance also names the model paths it was hit on (the routing branch: failover, strict,
// random-empty, ...) and how often: the same signature hit often on another path may be another
// bug, and fails the run as new until accepted there too (baseline --merge). A bug's paths have a
// long tail (waypoint chains of every length and order), and a run of another seed always hits
// some of it: a path whose hits chance alone could have put all in this run is left known.

import { readFileSync } from 'node:fs';
import { KmeshCheckError } from '../shared/errors.js';
import { writeAtomic } from './failure-db.js';
import type { BaselineJson, FindingJson, ReportJson } from './report.js';

export interface AcceptedFinding {
  readonly signature: string;
  readonly text: string;
  readonly invariant: string;
  /** The model paths the finding was accepted on (absent in baselines of older versions: any path). */
  readonly paths?: readonly string[];
  /**
   * The finding's hits in the report(s) it was accepted from, summed over merges (absent in
   * baselines of older versions: every path it was not accepted on fails the run).
   */
  readonly hits?: number;
}

export interface Baseline {
  readonly tool: 'kmesh-check-baseline';
  readonly version: 1;
  readonly accepted: AcceptedFinding[];
}

/** A baseline accepting every finding of a report (known or new). */
export function baselineFromReport(r: Pick<ReportJson, 'findings'>, previous: Baseline | null = null): Baseline {
  const accepted = new Map<string, AcceptedFinding>((previous?.accepted ?? []).map((a) => [a.signature, a]));
  for (const f of r.findings) {
    const had = accepted.get(f.signature);
    const paths = new Set([...(had?.paths ?? []), ...Object.keys(f.modelPaths ?? {})]);
    // A merge onto an acceptance of an older version, which counted nothing, counts from here.
    const hits = (had?.hits ?? 0) + f.hits;
    accepted.set(f.signature, { signature: f.signature, text: f.signatureText, invariant: f.invariant, paths: [...paths].sort(), hits });
  }
  return { tool: 'kmesh-check-baseline', version: 1, accepted: [...accepted.values()].sort((a, b) => a.signature.localeCompare(b.signature)) };
}

export function readBaseline(path: string): Baseline {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KmeshCheckError('codec', `${path}: not a readable baseline (${(e as Error).message.split('\n')[0]}): write one with kmesh-check baseline --from report.json --out ${path}`);
  }
  const d = data as Partial<Baseline>;
  const ok =
    d?.tool === 'kmesh-check-baseline' &&
    Array.isArray(d.accepted) &&
    d.accepted.every(
      (a) =>
        a &&
        typeof a.signature === 'string' &&
        /^[0-9a-f]{6,64}$/.test(a.signature) &&
        typeof a.text === 'string' &&
        typeof a.invariant === 'string' &&
        (a.paths === undefined || (Array.isArray(a.paths) && a.paths.every((p) => typeof p === 'string'))) &&
        (a.hits === undefined || (Number.isInteger(a.hits) && a.hits >= 0)),
    );
  if (!ok)
    throw new KmeshCheckError(
      'codec',
      `${path}: not a kmesh-check baseline (expected {"tool": "kmesh-check-baseline", "accepted": [{signature, text, invariant}]}): write one with kmesh-check baseline --from report.json --out ${path}`,
    );
  return d as Baseline;
}

export function writeBaseline(path: string, b: Baseline): void {
  writeAtomic(path, JSON.stringify(b, null, 2) + '\n');
}

/** A path the baseline never saw is new when chance alone would put all its hits in this run less often than this. */
export const UNSEEN_PATH_ALPHA = 0.001;

/**
 * Whether a path this run hit `hits` times, of the finding's `total`, and the baseline's run never
 * did, of the finding's `acceptedHits`, is too frequent here for chance. Were its share of the
 * finding the same in both runs, each of its hits would fall in this run with the chance
 * total / (total + acceptedHits), and all of them with that to the power `hits`, whatever the
 * budgets of the two runs: new below UNSEEN_PATH_ALPHA (with equal hits on both sides, from 10 hits
 * on). Or where the path alone has more hits than the whole finding had in the baseline's run: a
 * finding accepted from a hit or two knows little of its paths, but not nothing.
 */
export function unseenPathIsNew(hits: number, total: number, acceptedHits: number): boolean {
  return (total / Math.max(1, total + acceptedHits)) ** hits < UNSEEN_PATH_ALPHA || hits > acceptedHits;
}

/**
 * Whether a finding is held to its accepted paths exactly: one of the report and acceleration
 * phases (its shapes name the rule that broke, few per bug, so another shape is another rule), a
 * replayed saved failure (its one path counts no hits of the run), or an acceptance of a version
 * that counted no hits.
 */
function exactPaths(f: Pick<FindingJson, 'phase' | 'status'>, a: AcceptedFinding): boolean {
  return f.phase === 'report' || f.phase === 'accel' || f.status === 'saved' || a.hits === undefined;
}

/**
 * The model paths a finding was hit on that its acceptance does not name (null: its signature is
 * not accepted): `fresh`, those another bug may have been hit on; `rare`, those of the accepted
 * bug's long tail (cases of it this run hit and the baseline's did not, as chance gives).
 */
export function pathsNotAccepted(f: Pick<FindingJson, 'signature' | 'modelPaths' | 'phase' | 'status'>, accepted: ReadonlyMap<string, AcceptedFinding>): { fresh: string[]; rare: string[] } | null {
  const a = accepted.get(f.signature);
  if (!a) return null;
  const known = a.paths;
  if (!known) return { fresh: [], rare: [] };
  const byPath = Object.entries(f.modelPaths ?? {});
  const total = byPath.reduce((n, [, h]) => n + h, 0);
  const exact = exactPaths(f, a);
  const out = { fresh: [] as string[], rare: [] as string[] };
  for (const [p, h] of byPath) {
    if (known.includes(p)) continue;
    if (exact || unseenPathIsNew(h, total, a.hits ?? 0)) out.fresh.push(p);
    else out.rare.push(p);
  }
  return out;
}

/** Marks accepted findings as known; says which accepted ones were not seen (fixed), and which were seen on paths not accepted. */
export function applyBaseline(findings: readonly FindingJson[], b: Baseline, file: string): { findings: FindingJson[]; baseline: BaselineJson } {
  const accepted = new Map(b.accepted.map((a) => [a.signature, a]));
  const seen = new Set(findings.map((f) => f.signature));
  const newPaths: BaselineJson['newPaths'] = [];
  const rarePaths: NonNullable<BaselineJson['rarePaths']> = [];
  const out = findings.map((f) => {
    const missing = pathsNotAccepted(f, accepted);
    if (missing === null) return f;
    const a = accepted.get(f.signature)!;
    if (missing.fresh.length) {
      newPaths.push({ signature: f.signature, text: f.signatureText, paths: missing.fresh, accepted: [...(a.paths ?? [])] });
      return f;
    }
    if (missing.rare.length) {
      const modelPaths = f.modelPaths ?? {};
      rarePaths.push({ signature: f.signature, text: f.signatureText, paths: missing.rare, hits: missing.rare.reduce((n, p) => n + (modelPaths[p] ?? 0), 0), of: f.hits, acceptedHits: a.hits ?? 0 });
    }
    return { ...f, status: 'known' as const };
  });
  return {
    findings: out,
    baseline: {
      file,
      accepted: b.accepted.length,
      known: out.filter((f) => f.status === 'known').map((f) => f.signature),
      newPaths,
      rarePaths,
      // What held this run's findings: `merge` holds the shards' summed hits to it again.
      held: b.accepted.filter((a) => seen.has(a.signature)),
      fixed: b.accepted.filter((a) => !seen.has(a.signature)).map((a) => ({ signature: a.signature, text: a.text, invariant: a.invariant })),
    },
  };
}

/** `kmesh-check baseline --from report.json --out accepted.json [--merge]`. */
export function baselineCommand(o: { from: string; out: string; merge?: boolean }): number {
  let report: Partial<ReportJson>;
  try {
    report = JSON.parse(readFileSync(o.from, 'utf8')) as Partial<ReportJson>;
  } catch (e) {
    throw new KmeshCheckError('codec', `${o.from}: not a readable JSON report (${(e as Error).message.split('\n')[0]}): write one with kmesh-check check --json ${o.from}`);
  }
  if (report.tool !== 'kmesh-check' || !Array.isArray(report.findings)) {
    throw new KmeshCheckError('codec', `${o.from}: not a kmesh-check JSON report with findings (written by check --json)`);
  }
  const previous = o.merge ? readBaseline(o.out) : null;
  const b = baselineFromReport({ findings: report.findings }, previous);
  writeBaseline(o.out, b);
  process.stdout.write(`baseline ${o.out}: ${b.accepted.length} accepted finding${b.accepted.length === 1 ? '' : 's'}\n`);
  for (const a of b.accepted) process.stdout.write(`  ${a.signature}  ${a.text}\n`);
  return 0;
}
