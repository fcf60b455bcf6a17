// The connection-report phase of check: passes on ours, fails with the case printed on a mutant,
// and skips with a plain reason on other executors and on --objects alone.

import { describe, expect, it } from 'vitest';
import { buildReportMutant } from '../../cli/report-mutants.js';
import { reportPhase } from '../../cli/report-phase.js';

function logger(): { lines: string[]; log: (s: string) => void } {
  const lines: string[] = [];
  return { lines, log: (s) => lines.push(s) };
}

describe('report phase of check', () => {
  it('skips on the VM and on --objects without --report-objects, saying why', () => {
    const a = logger();
    expect(reportPhase({ executor: 'vm', seed: 1, runs: 20, userObjects: false, log: a.log }).status).toBe('skipped');
    expect(a.lines.join('\n')).toMatch(/skipped: .*--executor kernel/);
    const b = logger();
    expect(reportPhase({ executor: 'kernel', seed: 1, runs: 20, userObjects: true, log: b.log }).status).toBe('skipped');
    expect(b.lines.join('\n')).toMatch(/--report-objects/);
  });

  it('passes on ours; fails on a mutant, printing the case', () => {
    expect(reportPhase({ executor: 'kernel', seed: 42, runs: 300, userObjects: false, log: () => undefined }).status).toBe('pass');
    const bad = logger();
    const r = reportPhase({ executor: 'kernel', seed: 42, runs: 300, userObjects: false, objects: buildReportMutant('auth-key-net-ports'), log: bad.log });
    expect(r.status).toBe('fail');
    expect(r.result?.failure?.invariant).toBe('auth-cleanup');
    expect(bad.lines.join('\n')).toMatch(/COUNTEREXAMPLE \(reports, kernel\): auth-cleanup/);
  });
});
