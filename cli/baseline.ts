// Baselines for CI adoption: the signatures of findings a team has accepted (known deviations of
// their data path). A run with --baseline reports accepted findings as known (still counted and
// listed) without failing; new signatures fail; accepted ones the run no longer sees are listed
// as fixed. Signatures do not depend on seeds, ids or addresses (properties/signature.ts), so a
// baseline written from one run applies to later runs with other seeds and budgets. A signature
// is coarse on purpose (one bug, one finding: "connect | result" is any wrong connect result), so
// an acceptance also names the model paths it was hit on (the routing branch: failover, strict,
// random-empty, ...): the same signature hit on another path may be another bug, and fails the
// run as new until accepted there too (baseline --merge).

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
    const paths = new Set([...(accepted.get(f.signature)?.paths ?? []), ...Object.keys(f.modelPaths ?? {})]);
    accepted.set(f.signature, { signature: f.signature, text: f.signatureText, invariant: f.invariant, paths: [...paths].sort() });
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
        (a.paths === undefined || (Array.isArray(a.paths) && a.paths.every((p) => typeof p === 'string'))),
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

/** The model paths a finding was hit on that its acceptance does not name (null: its signature is not accepted). */
export function pathsNotAccepted(f: Pick<FindingJson, 'signature' | 'modelPaths'>, accepted: ReadonlyMap<string, AcceptedFinding>): string[] | null {
  const a = accepted.get(f.signature);
  if (!a) return null;
  const known = a.paths;
  return known ? Object.keys(f.modelPaths ?? {}).filter((p) => !known.includes(p)) : [];
}

/** Marks accepted findings as known; says which accepted ones were not seen (fixed), and which were seen on paths not accepted. */
export function applyBaseline(findings: readonly FindingJson[], b: Baseline, file: string): { findings: FindingJson[]; baseline: BaselineJson } {
  const accepted = new Map(b.accepted.map((a) => [a.signature, a]));
  const seen = new Set(findings.map((f) => f.signature));
  const newPaths: BaselineJson['newPaths'] = [];
  const out = findings.map((f) => {
    const missing = pathsNotAccepted(f, accepted);
    if (missing === null) return f;
    if (missing.length === 0) return { ...f, status: 'known' as const };
    newPaths.push({ signature: f.signature, text: f.signatureText, paths: missing, accepted: [...(accepted.get(f.signature)!.paths ?? [])] });
    return f;
  });
  return {
    findings: out,
    baseline: {
      file,
      accepted: b.accepted.length,
      known: out.filter((f) => f.status === 'known').map((f) => f.signature),
      newPaths,
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
