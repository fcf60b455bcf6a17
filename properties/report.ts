// The report checks (section 7) for `check`: generated report cases through the kernel report
// harness (one worker per batch) or the VM's report runner (its clock an input, so the cases
// carry waits), judged by model/report's invariants, through the phase checks shared with the
// acceleration phase (properties/section-check.ts: batch, one shrunk finding per invariant). On
// the kernel, whose clock no case can move, the cases that let time pass run on the VM with the
// same objects, so that every run checks the periodic reports of the objects under test.

import { runReportCases } from '../bpf/kernel/report/run.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { defaultReportObjects } from '../bpf/kernel/report/run.js';
import { decodeObservation } from '../bpf/codec/report.js';
import { VmReportRunner } from '../bpf/vm/report.js';
import type { CoverageSummary } from '../bpf/vm/coverage.js';
import { REPORT_LISTEN, REPORT_STATE, reportCases } from '../generators/report.js';
import { reportCasesAtScope } from '../generators/exhaustive/report.js';
import { hasWaits, tupleText, type ProbeRecord, type ReportCase, type ReportObservation } from '../model/report/domain.js';
import { judgeReports, reportInvariants } from '../model/report/invariants.js';
import fc from 'fast-check';
import { sockAddrText } from '../model/address.js';
import { isKmeshCheckError } from '../shared/errors.js';
import { runSectionChecks, type SectionFinding, type SectionResult, type SectionRunOptions, type SectionSpec } from './section-check.js';

export type ReportFailure = SectionFinding<ReportCase, ReportObservation>;

export interface ReportResult extends SectionResult<ReportCase, ReportObservation> {
  /** The first finding (null when every invariant held). */
  readonly failure: ReportFailure | null;
  /** On the VM: its programs' coverage over the phase's cases (the kernel's shows none). */
  readonly coverage?: CoverageSummary;
}

const ns = (n: number | undefined) => (n ? `${n / 1e9} s` : '');

/** " at the start (a connection below turns it off)": where connections turn enable_monitoring, which way. */
function turns(c: ReportCase): string {
  const off = c.conns.some((k) => k.monitoringOff);
  const on = c.conns.some((k) => k.monitoringOn);
  if (!off && !on) return '';
  return ` at the start (a connection below turns it ${off && on ? 'off and one on' : off ? 'off' : 'on'})`;
}

export function formatReportCase(c: ReportCase): string[] {
  return [
    `globals: ${c.globalsAsLoaded ? `enable_monitoring and enable_periodic_report as the objects load them (section 7: 1 and 0)${turns(c)}` : `enable_monitoring ${c.monitoring ? 1 : 0}${turns(c)}, enable_periodic_report ${c.periodic ? 1 : 0}`}, node_ip ${c.nodeIp ?? '-'}, pod_gateway ${c.podGateway ?? '-'}`,
    ...(c.namespaceOutside ? ['namespace: withdrawn from km_manage, its local IPs still enrolled'] : []),
    ...c.conns.map((k, i) => {
      const sends = k.sends.map((s) => `${s.waitNs ? `after ${ns(s.waitNs)} ` : ''}${s.from} ${s.size} B`).join(', ') || 'none';
      const from = k.clientAddr ? ` from ${k.clientAddr}` : k.clientFamily === 'inet6' ? ' (AF_INET6 client)' : '';
      return `connection ${i}: connect${from} to ${sockAddrText(k.connectTo)} (listener ${sockAddrText(k.listen)})${k.handshakeNs ? `, established after ${ns(k.handshakeNs)}` : ''}, sends ${sends}, ${k.closeWaitNs ? `after ${ns(k.closeWaitNs)} ` : ''}${k.firstClose} ${k.abort ? 'aborts (a reset)' : 'closes first'}${k.storeVerdict ? ', verdict stored' : ''}${k.monitoringOff ? ', monitoring turned off once established' : ''}${k.monitoringOn ? ', monitoring turned on once established' : ''}${k.withdraw ? ', pod withdrawn once established' : ''}${k.closeLast ? ', closed after the later connections' : ''}`;
    }),
  ];
}

const record = (r: ProbeRecord) =>
  `${r.state === 1 ? 'ESTABLISHED' : r.state === 7 ? 'CLOSE' : `state ${r.state}`} direction ${r.direction} ${tupleText(r.tuple)} at ${r.lastReportNs} ns, conn_success ${r.connSuccess}, sent ${r.sentBytes} B, received ${r.receivedBytes} B`;

export function formatReportObservation(c: ReportCase, o: ReportObservation): string[] {
  return [
    ...(o.exactClock && hasWaits(c) ? ["on the userspace VM, whose clock moves only by the case's waits"] : []),
    ...o.conns.map((k, i) => `connection ${i}: client ${sockAddrText(k.client)}, server ${sockAddrText(k.server)}`),
    `${o.probe.length} report(s)${o.probe.length ? ':' : ''}`,
    ...o.probe.map((r) => `  ${record(r)}`),
    `${o.auth.length} authorization request(s)${o.auth.length ? ': ' + o.auth.map((a) => tupleText(a.tuple)).join(', ') : ''}`,
    `${o.verdictsLeft.length} verdict(s) left in km_auth_res`,
  ];
}

/**
 * The VM's report runner for the timed cases of a kernel run, on `objects`, or why the VM cannot
 * run them (it loads the objects and runs one case to find out).
 */
export type TimedRunner = { readonly runner: VmReportRunner } | { readonly why: string };

export function timedReportRunner(objects: Partial<ReportObjectPaths> = {}): TimedRunner {
  try {
    const runner = new VmReportRunner({ ...defaultReportObjects(), ...objects });
    runner.run([{ monitoring: true, periodic: true, state: REPORT_STATE, conns: [{ connectTo: REPORT_LISTEN, listen: REPORT_LISTEN, sends: [], firstClose: 'client', storeVerdict: false }] }]);
    return { runner };
  } catch (e) {
    // Whatever the VM cannot take (a map type, an instruction, a fault in the probe case) is why.
    return { why: isKmeshCheckError(e) || e instanceof Error ? e.message : String(e) };
  }
}

/**
 * The report phase on an executor: the kernel harness or the VM's runner. `timed` (kernel only):
 * timedReportRunner's answer; with a runner, the VM takes the cases that let time pass and half
 * of the cases are generated with waits. Without one the kernel's cases have none.
 */
export function reportSpec(o: { executor: 'kernel' | 'vm'; objects?: Partial<ReportObjectPaths>; timed?: TimedRunner; vm?: VmReportRunner }): SectionSpec<ReportCase, ReportObservation> {
  const objects = { ...defaultReportObjects(), ...(o.objects ?? {}) };
  let vm: VmReportRunner | null = o.vm ?? null;
  const onVm = (cases: readonly ReportCase[]) => (vm ??= new VmReportRunner(objects)).run(cases).map(decodeObservation);
  const timed = o.executor === 'kernel' && o.timed && 'runner' in o.timed ? o.timed.runner : undefined;
  const run =
    o.executor === 'vm'
      ? onVm
      : timed
        ? (cases: readonly ReportCase[]) =>
            split(
              cases,
              hasWaits,
              (t) => timed.run(t).map(decodeObservation),
              (k) => runReportCases(k, objects),
            )
        : (cases: readonly ReportCase[]) => runReportCases(cases, objects);
  const arb =
    o.executor === 'vm'
      ? reportCases({ waits: true })
      : timed
        ? fc.oneof({ weight: 1, arbitrary: reportCases({ waits: false }) }, { weight: 1, arbitrary: reportCases({ waits: true }) })
        : reportCases({ waits: false });
  return {
    phase: 'report',
    arb,
    invariants: reportInvariants,
    judge: judgeReports,
    run: (cases) => Promise.resolve(cases.length ? run(cases) : []),
    size: (c) => c.conns.length + c.conns.reduce((n, k) => n + k.sends.length, 0),
    removals: reportRemovals,
    formatCase: formatReportCase,
    formatObservation: formatReportObservation,
    ranOn: (c, o) => (o.exactClock && hasWaits(c) ? { executor: 'vm', why: 'it lets time pass' } : undefined),
    // Waits need a clock that is an input: the enumeration runs on the VM only.
    ...(o.executor === 'vm' ? { enumerate: reportCasesAtScope } : {}),
  };
}

/** The case without one of its connections (one is always left) or one of a connection's sends. */
export function reportRemovals(c: ReportCase): ReportCase[] {
  const out: ReportCase[] = [];
  if (c.conns.length > 1) c.conns.forEach((_, i) => out.push({ ...c, conns: c.conns.filter((_, j) => j !== i) }));
  c.conns.forEach((k, i) => k.sends.forEach((_, s) => out.push({ ...c, conns: c.conns.map((x, j) => (j === i ? { ...x, sends: x.sends.filter((_, t) => t !== s) } : x)) })));
  return out;
}

/** Runs the cases `which` picks with `a`, the others with `b`; observations in the cases' order. */
function split<C, O>(cases: readonly C[], which: (c: C) => boolean, a: (cs: C[]) => O[], b: (cs: C[]) => O[]): O[] {
  const picked = cases.filter(which);
  const rest = cases.filter((c) => !which(c));
  const fromA = picked.length ? a(picked) : [];
  const fromB = rest.length ? b(rest) : [];
  let i = 0;
  let j = 0;
  return cases.map((c) => (which(c) ? fromA[i++]! : fromB[j++]!));
}

export interface ReportRunOptions extends SectionRunOptions {
  /** Default kernel. */
  readonly executor?: 'kernel' | 'vm';
  readonly objects?: Partial<ReportObjectPaths>;
  /** Kernel: the VM runner of the cases that let time pass, or why there is none (timedReportRunner). */
  readonly timed?: TimedRunner;
}

export async function runReportChecks(o: ReportRunOptions): Promise<ReportResult> {
  const { executor, objects, timed, ...run } = o;
  // On the VM one runner for the phase, whose counts then say what its cases executed.
  const vm = executor === 'vm' ? new VmReportRunner({ ...defaultReportObjects(), ...(objects ?? {}) }) : undefined;
  const r = await runSectionChecks(reportSpec({ executor: executor ?? 'kernel', ...(objects ? { objects } : {}), ...(timed ? { timed } : {}), ...(vm ? { vm } : {}) }), run);
  const coverage = vm?.coverage();
  return { ...r, failure: r.findings[0] ?? null, ...(coverage ? { coverage } : {}) };
}
