// The report checks (section 7) for `check`: generated report cases through the kernel report
// harness (one worker per batch) or the VM's report runner (its clock an input, so the cases
// carry waits), judged by model/report's invariants, through the phase checks shared with the
// acceleration phase (properties/section-check.ts: batch, one shrunk finding per invariant).

import { runReportCases } from '../bpf/kernel/report/run.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { defaultReportObjects } from '../bpf/kernel/report/run.js';
import { decodeObservation } from '../bpf/codec/report.js';
import { VmReportRunner } from '../bpf/vm/report.js';
import { reportCases } from '../generators/report.js';
import { reportCasesAtScope } from '../generators/exhaustive/report.js';
import type { ProbeRecord, ReportCase, ReportObservation, ReportTuple } from '../model/report/domain.js';
import { judgeReports, reportInvariants } from '../model/report/invariants.js';
import { runSectionChecks, type SectionFinding, type SectionResult, type SectionRunOptions, type SectionSpec } from './section-check.js';

export type ReportFailure = SectionFinding<ReportCase, ReportObservation>;

export interface ReportResult extends SectionResult<ReportCase, ReportObservation> {
  /** The first finding (null when every invariant held). */
  readonly failure: ReportFailure | null;
}

const ns = (n: number | undefined) => (n ? `${n / 1e9} s` : '');

export function formatReportCase(c: ReportCase): string[] {
  return [
    `globals: enable_monitoring ${c.monitoring ? 1 : 0}, enable_periodic_report ${c.periodic ? 1 : 0}, node_ip ${c.nodeIp ?? '-'}, pod_gateway ${c.podGateway ?? '-'}`,
    ...(c.namespaceOutside ? ['namespace: withdrawn from km_manage, its local IPs still enrolled'] : []),
    ...c.conns.map((k, i) => {
      const sends = k.sends.map((s) => `${s.waitNs ? `after ${ns(s.waitNs)} ` : ''}${s.from} ${s.size} B`).join(', ') || 'none';
      const from = k.clientAddr ? ` from ${k.clientAddr}` : k.clientFamily === 'inet6' ? ' (AF_INET6 client)' : '';
      return `connection ${i}: connect${from} to ${k.connectTo.addr}:${k.connectTo.port} (listener ${k.listen.addr}:${k.listen.port}), sends ${sends}, ${k.closeWaitNs ? `after ${ns(k.closeWaitNs)} ` : ''}${k.firstClose} closes first${k.storeVerdict ? ', verdict stored' : ''}`;
    }),
  ];
}

const tuple = (t: ReportTuple | null) => (t ? `${t.client.addr}:${t.client.port} -> ${t.server.addr}:${t.server.port}` : 'no tuple');
const record = (r: ProbeRecord) => `${r.state === 1 ? 'ESTABLISHED' : r.state === 7 ? 'CLOSE' : `state ${r.state}`} direction ${r.direction} ${tuple(r.tuple)} at ${r.lastReportNs} ns`;

export function formatReportObservation(_c: ReportCase, o: ReportObservation): string[] {
  return [
    ...o.conns.map((k, i) => `connection ${i}: client ${k.client.addr}:${k.client.port}, server ${k.server.addr}:${k.server.port}`),
    `${o.probe.length} report(s)${o.probe.length ? ':' : ''}`,
    ...o.probe.map((r) => `  ${record(r)}`),
    `${o.auth.length} authorization request(s)${o.auth.length ? ': ' + o.auth.map((a) => tuple(a.tuple)).join(', ') : ''}`,
    `${o.verdictsLeft.length} verdict(s) left in km_auth_res`,
  ];
}

/** The report phase on an executor: the kernel harness or the VM's runner. */
export function reportSpec(o: { executor: 'kernel' | 'vm'; objects?: Partial<ReportObjectPaths> }): SectionSpec<ReportCase, ReportObservation> {
  const objects = { ...defaultReportObjects(), ...(o.objects ?? {}) };
  let vm: VmReportRunner | null = null;
  const run =
    o.executor === 'vm' ? (cases: readonly ReportCase[]) => (vm ??= new VmReportRunner(objects)).run(cases).map(decodeObservation) : (cases: readonly ReportCase[]) => runReportCases(cases, objects);
  return {
    phase: 'report',
    arb: reportCases({ waits: o.executor === 'vm' }),
    invariants: reportInvariants,
    judge: judgeReports,
    run: (cases) => Promise.resolve(cases.length ? run(cases) : []),
    size: (c) => c.conns.length + c.conns.reduce((n, k) => n + k.sends.length, 0),
    formatCase: formatReportCase,
    formatObservation: formatReportObservation,
    // Waits need a clock that is an input: the enumeration runs on the VM only.
    ...(o.executor === 'vm' ? { enumerate: reportCasesAtScope } : {}),
  };
}

export interface ReportRunOptions extends SectionRunOptions {
  /** Default kernel. */
  readonly executor?: 'kernel' | 'vm';
  readonly objects?: Partial<ReportObjectPaths>;
}

export async function runReportChecks(o: ReportRunOptions): Promise<ReportResult> {
  const { executor, objects, ...run } = o;
  const r = await runSectionChecks(reportSpec({ executor: executor ?? 'kernel', ...(objects ? { objects } : {}) }), run);
  return { ...r, failure: r.findings[0] ?? null };
}
