// The report checks (section 7) for `check`: generated report cases (fast-check, seeded) run in
// one batch through the kernel report harness and judged by model/report's invariants. Cases are
// small (at most three connections), so the first failing one is printed as it is (no shrinking).

import fc from 'fast-check';
import { runReportCases } from '../bpf/kernel/report/run.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { reportCaseArb } from '../generators/report.js';
import type { ReportCase, ReportObservation } from '../model/report/domain.js';
import { judgeReports, reportInvariants } from '../model/report/invariants.js';

export interface ReportFailure {
  readonly invariant: string;
  readonly detail: string;
  readonly case: ReportCase;
  readonly observation: ReportObservation;
  readonly index: number;
}

export interface ReportResult {
  readonly runs: number;
  readonly exercised: Readonly<Record<string, number>>;
  readonly failure: ReportFailure | null;
}

export function runReportChecks(o: { seed: number; runs: number; objects?: Partial<ReportObjectPaths> }): ReportResult {
  const cases = fc.sample(reportCaseArb, { seed: o.seed, numRuns: o.runs });
  const obs = runReportCases(cases, o.objects ?? {});
  const exercised: Record<string, number> = Object.fromEntries(reportInvariants.map((i) => [i.name, 0]));
  let failure: ReportFailure | null = null;
  obs.forEach((ob, i) => {
    for (const j of judgeReports(cases[i]!, ob)) {
      if (j.verdict.status === 'holds') exercised[j.name]!++;
      if (j.verdict.status === 'violated' && !failure) failure = { invariant: j.name, detail: j.verdict.detail, case: cases[i]!, observation: ob, index: i };
    }
  });
  return { runs: cases.length, exercised, failure };
}

export function formatReportFailure(f: ReportFailure): string {
  const c = f.case;
  const lines = [
    `COUNTEREXAMPLE (reports, kernel): ${f.invariant}`,
    `  ${f.detail}`,
    `  globals: enable_monitoring ${c.monitoring ? 1 : 0}, enable_periodic_report ${c.periodic ? 1 : 0}, node_ip ${c.nodeIp ?? '-'}, pod_gateway ${c.podGateway ?? '-'}`,
    ...c.conns.map(
      (k, i) =>
        `  connection ${i}: connect to ${k.connectTo.addr}:${k.connectTo.port} (listener ${k.listen.addr}:${k.listen.port}), sends ${k.sends.map((s) => `${s.from} ${s.size} B`).join(', ') || 'none'}, ${k.firstClose} closes first${k.storeVerdict ? ', verdict stored' : ''}`,
    ),
    `  observed: ${f.observation.probe.length} report(s), ${f.observation.auth.length} authorization request(s), ${f.observation.verdictsLeft.length} verdict(s) left`,
  ];
  return lines.join('\n');
}
