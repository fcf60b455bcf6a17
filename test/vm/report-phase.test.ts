// The connection-report phase on the VM: the clock is an input (waits move it by exactly their
// length, so elapsed time exactly on, just under and just over the 5 s threshold is generated,
// not waited for), unmanaged ends get nothing, every report invariant is exercised on our
// objects without a failure, and every report mutant is caught by the invariant it breaks.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MONITORING_OFF_BY_DEFAULT, WIDE_AUTH_VERDICT, WIDE_AUTH_VERDICT_ERROR, buildVariant, reportObjectsOf } from '../helpers/variant.js';
import { REPORT_MUTANTS, buildReportMutant } from '../../cli/report-mutants.js';
import { defaultReportObjects } from '../../bpf/kernel/report/run.js';
import { decodeObservation } from '../../bpf/codec/report.js';
import { REPORT_CLOCK_START_NS, VmReportRunner } from '../../bpf/vm/report.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { REPORT_STATE, REPORT_LISTEN } from '../../generators/report.js';
import type { ReportCase, ReportConn, ReportObservation } from '../../model/report/domain.js';
import { judgeReports, reportInvariants } from '../../model/report/invariants.js';
import { reportSpec, runReportChecks } from '../../properties/report.js';
import { shrinkSection } from '../../properties/section-check.js';
import { reportCasesAtScope } from '../../generators/exhaustive/report.js';

const ours = new VmReportRunner(defaultReportObjects());
const run = (c: ReportCase, runner = ours): ReportObservation => decodeObservation(runner.run([c])[0]!);
const conn = (k: Partial<ReportConn> = {}): ReportConn => ({ connectTo: REPORT_LISTEN, listen: REPORT_LISTEN, sends: [], firstClose: 'client', storeVerdict: false, ...k });
const gates = (conns: ReportConn[], periodic = true): ReportCase => ({ monitoring: true, periodic, state: REPORT_STATE, conns });
/** Periodic reports per end: ESTABLISHED records after the first, by direction (2 client, 1 server). */
const periodic = (o: ReportObservation) => ({
  client: o.probe.filter((r) => r.direction === 2 && r.state === 1).length - 1,
  server: o.probe.filter((r) => r.direction === 1 && r.state === 1).length - 1,
});
const violated = (c: ReportCase, o: ReportObservation) => judgeReports(c, o).filter((j) => j.verdict.status === 'violated');

describe('report objects on the VM', () => {
  it('refuses a section 7 map of another shape than its table, with a one-line error naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-wide-verdict-'));
    try {
      const objects = reportObjectsOf(buildVariant(dir, [WIDE_AUTH_VERDICT]));
      expect(() => new VmReportRunner(objects)).toThrow(WIDE_AUTH_VERDICT_ERROR);
      // The routing check refuses them too, before any case (its report phase would later).
      await expect(createVmExecutor({ objects })).rejects.toThrow(WIDE_AUTH_VERDICT_ERROR);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('report globals as the objects load them (VM)', () => {
  it("checks section 7's defaults only where the case leaves them: enable_monitoring loaded as 0 is caught there", () => {
    const asLoaded: ReportCase = { monitoring: true, periodic: false, globalsAsLoaded: true, state: REPORT_STATE, conns: [conn({ sends: [{ from: 'client', size: 3 }] })] };
    const written: ReportCase = { ...asLoaded, globalsAsLoaded: undefined };
    // Our objects load the defaults: both cases report, and pass.
    for (const c of [asLoaded, written]) {
      const o = run(c);
      expect(o.probe.length).toBeGreaterThan(0);
      expect(violated(c, o)).toEqual([]);
    }
    const dir = mkdtempSync(join(tmpdir(), 'kc-monitoring-off-'));
    try {
      const variant = new VmReportRunner(reportObjectsOf(buildVariant(dir, [MONITORING_OFF_BY_DEFAULT])));
      expect(violated(asLoaded, run(asLoaded, variant)).map((j) => j.name)).toContain('report-once-established');
      // Written by user space, the wrong default is invisible.
      expect(violated(written, run(written, variant))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('report phase on the VM: the clock is an input', () => {
  it('a periodic report is due after more than 5 s, not at exactly 5 s', () => {
    const caseAt = (waitNs: number) => gates([conn({ sends: [{ from: 'client', size: 10, waitNs }] })]);
    const at = (waitNs: number) => run(caseAt(waitNs));
    expect(periodic(at(5_000_000_000))).toEqual({ client: 0, server: 0 });
    const over = at(5_000_000_001);
    expect(periodic(over)).toEqual({ client: 1, server: 1 });
    // The report carries the controlled clock: established at the start, periodic 5 s + 1 ns later.
    expect(over.probe.map((r) => r.lastReportNs - BigInt(REPORT_CLOCK_START_NS))).toEqual([0n, 0n, 5_000_000_001n, 5_000_000_001n, 5_000_000_001n, 5_000_000_001n]);
    expect(over.exactClock).toBe(true);
    for (const w of [4_999_999_999, 5_000_000_000, 5_000_000_001]) expect(violated(caseAt(w), at(w)), `wait ${w}`).toEqual([]);
    // The invariant predicts exactly: a report at 5 s is flagged.
    expect(violated(caseAt(5_000_000_000), over).map((v) => v.name)).toContain('report-periodic');
  });

  it('time adds up since the last report (not since the last packet), and the close is a packet too', () => {
    const c = gates([
      conn({
        sends: [
          { from: 'server', size: 5, waitNs: 3_000_000_000 },
          { from: 'client', size: 5, waitNs: 3_000_000_000 },
        ],
        closeWaitNs: 7_000_000_000,
      }),
    ]);
    const o = run(c);
    expect(periodic(o)).toEqual({ client: 2, server: 2 });
    expect(violated(c, o)).toEqual([]);
    // With the periodic gate off, none.
    const off = { ...c, periodic: false };
    expect(periodic(run(off))).toEqual({ client: 0, server: 0 });
  });

  it('unmanaged ends get no reports; an unmanaged server asks for no authorization', () => {
    const lonelyClient = gates([conn({ clientAddr: '127.0.0.2', storeVerdict: true })]);
    const a = run(lonelyClient);
    expect(a.probe.map((r) => [r.direction, r.state])).toEqual([
      [1, 1],
      [1, 7],
    ]);
    expect(a.auth.map((r) => r.tuple?.client.addr)).toEqual(['127.0.0.2']);
    expect(violated(lonelyClient, a)).toEqual([]);
    const unmanagedServer = { addr: '127.0.0.2', port: 8080 };
    const lonelyServer = gates([conn({ connectTo: unmanagedServer, listen: unmanagedServer })]);
    const b = run(lonelyServer);
    expect(b.probe.map((r) => [r.direction, r.state])).toEqual([
      [2, 1],
      [2, 7],
    ]);
    expect(b.auth).toEqual([]);
    expect(violated(lonelyServer, b)).toEqual([]);
  });

  it('generated cases on our objects exercise every report invariant and break none', async () => {
    const r = await runReportChecks({ seed: 11, runs: 300, executor: 'vm' });
    expect(r.findings).toEqual([]);
    for (const i of reportInvariants) {
      expect(r.exercised[i.name], i.name).toBeGreaterThan(0);
      expect(r.failed[i.name], i.name).toBe(0);
    }
    // What these cases ran of the section's programs: the report and authorization paths (the
    // routing phases' coverage of sockops leaves them out).
    expect(r.coverage?.programs.map((p) => p.program)).toEqual(['sockops_prog', 'cgroup_skb_ingress_prog', 'cgroup_skb_egress_prog']);
    for (const p of r.coverage!.programs) expect(p.executedInstructions / p.instructions, p.program).toBeGreaterThan(0.85);
    expect(r.coverage!.programs[0]!.uncoveredLines.filter((l) => /auth\.h|sockops_report\.h/.test(l))).toEqual([]);
  });

  for (const m of REPORT_MUTANTS) {
    it(`report mutant ${m.name} is caught on the VM by ${m.expectedInvariant}`, async () => {
      // The report phase's share of a default check (300 cases).
      const r = await runReportChecks({ seed: 11, runs: 300, executor: 'vm', objects: buildReportMutant(m.name), shrink: false });
      expect(r.failed[m.expectedInvariant], JSON.stringify(r.failed)).toBeGreaterThan(0);
    });
  }
});

describe('report phase on the VM: bounded-exhaustive (check --exhaustive)', () => {
  it('scope 1 on our objects: every case passes, every invariant exercised', async () => {
    const r = await runReportChecks({ seed: 0, runs: 0, executor: 'vm', exhaustiveScope: 1 });
    expect(r.runs).toBe(reportCasesAtScope(1).length);
    expect(r.findings).toEqual([]);
    for (const i of reportInvariants) expect(r.exercised[i.name], i.name).toBeGreaterThan(0);
  });

  it('kills every report mutant at its scope alone (1, or 2 for IPv6 shapes), its first failing case breaking the expected invariant, replayable from its dotted path', async () => {
    const caught: Record<string, string[]> = {};
    for (const m of REPORT_MUTANTS) {
      const objects = buildReportMutant(m.name);
      const scope = m.scope ?? 1;
      // Up to the first failing case of the enumeration (small first): the invariants it broke.
      const r = await runReportChecks({ seed: 0, runs: 0, executor: 'vm', exhaustiveScope: scope, objects, stopAtFirst: true });
      const f = r.findings[0]!;
      expect(f.path).toMatch(new RegExp(`^${scope}\\.\\d+$`));
      caught[m.name] = r.findings.filter((x) => x.path === f.path).map((x) => x.invariant);
      expect((await shrinkSection(reportSpec({ executor: 'vm', objects }), 0, f.path))?.case).toEqual(f.case);
    }
    for (const m of REPORT_MUTANTS) expect(caught[m.name], m.name).toContain(m.expectedInvariant);
  });

  it('stops an enumeration at the first failing case when asked, with the same first finding, counting no case after it', async () => {
    const objects = buildReportMutant('report-no-close');
    const whole = await runReportChecks({ seed: 0, runs: 0, executor: 'vm', exhaustiveScope: 1, objects, maxFindings: 1 });
    const first = await runReportChecks({ seed: 0, runs: 0, executor: 'vm', exhaustiveScope: 1, objects, maxFindings: 1, stopAtFirst: true });
    expect(first.findings[0]).toEqual({ ...whole.findings[0], hits: first.findings[0]!.hits, shapes: first.findings[0]!.shapes });
    expect(first.runs).toBeLessThan(whole.runs);
    // Counted up to the first failing case, as one by one: it is the last case run and the only hit.
    expect(first.runs).toBe(Number(first.findings[0]!.path.split('.')[1]) + 1);
    expect(first.findings[0]!.hits).toBe(1);
    expect(Object.values(first.findings[0]!.shapes)).toEqual([1]);
    expect(first.enumeration).toMatchObject({ complete: false, ran: first.runs, total: whole.runs });
    expect(whole.enumeration?.complete).toBe(true);
  });
});
