// The connection-report phase of check on the kernel: passes on ours, and on a mutant gives a
// finding shrunk on real sockets (printed by check like every other finding); skips with a plain
// reason on the model executor and on --objects alone.

import { describe, expect, it } from 'vitest';
import { buildReportMutant } from '../../cli/report-mutants.js';
import { reportPhase } from '../../cli/report-phase.js';
import { formatSectionFinding } from '../../cli/section-findings.js';
import { reportSpec } from '../../properties/report.js';
import type { SectionSpec } from '../../properties/section-check.js';

function logger(): { lines: string[]; log: (s: string) => void } {
  const lines: string[] = [];
  return { lines, log: (s) => lines.push(s) };
}

describe('report phase of check', () => {
  it('skips on the model and on --objects without --report-objects, saying why', async () => {
    const a = logger();
    expect((await reportPhase({ executor: 'model', seed: 1, runs: 20, userObjects: false, log: a.log })).status).toBe('skipped');
    expect(a.lines.join('\n')).toMatch(/skipped: .*--executor vm or --executor kernel/);
    const b = logger();
    expect((await reportPhase({ executor: 'kernel', seed: 1, runs: 20, userObjects: true, log: b.log })).status).toBe('skipped');
    expect(b.lines.join('\n')).toMatch(/--report-objects/);
  });

  it('passes on ours; fails on a mutant with a shrunk finding', async () => {
    expect((await reportPhase({ executor: 'kernel', seed: 42, runs: 300, userObjects: false, log: () => undefined })).status).toBe('pass');
    const bad = logger();
    const objects = buildReportMutant('auth-key-net-ports');
    const r = await reportPhase({ executor: 'kernel', seed: 42, runs: 300, userObjects: false, objects, log: bad.log });
    expect(r.status).toBe('fail');
    const f = r.result!.findings[0]!;
    expect(f.invariant).toBe('auth-cleanup');
    expect(f.size).toBeLessThanOrEqual(f.shrunkFrom);
    // One connection whose verdict was stored is all the bug needs.
    expect(f.case.conns).toHaveLength(1);
    const text = formatSectionFinding(reportSpec({ executor: 'kernel', objects }) as SectionSpec<unknown, unknown>, f, { executor: 'kernel', objectsFlag: null });
    expect(text).toMatch(/FINDING: invariant "auth-cleanup" broke \(connection reports \(section 7\), on the kernel executor\)/);
    expect(text).toMatch(/replay: kmesh-check replay --phase report --seed 42 --path [0-9:]+ --executor kernel/);
  });

  it('heads the finding of a case that let time pass with where it ran: the VM, whose clock is an input', async () => {
    const objects = buildReportMutant('report-periodic-at-threshold');
    // 200 report cases: 30 hold a wait exactly on the threshold at only some seeds (3 of 6 tried).
    const r = await reportPhase({ executor: 'kernel', seed: 42, runs: 2000, userObjects: false, objects, log: () => undefined });
    expect(r.status).toBe('fail');
    const f = r.result!.findings[0]!;
    expect(f.case.conns.some((k) => k.closeWaitNs !== undefined || k.sends.some((x) => x.waitNs !== undefined))).toBe(true);
    const text = formatSectionFinding(reportSpec({ executor: 'kernel', objects }) as SectionSpec<unknown, unknown>, f, { executor: 'kernel', objectsFlag: null });
    expect(text).toMatch(/broke \(connection reports \(section 7\), on the kernel executor; this case ran on the userspace VM: it lets time pass\)/);
  });
});
