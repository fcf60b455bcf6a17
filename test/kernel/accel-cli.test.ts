// The acceleration phase of `check`: it runs on the kernel with our objects and passes, fails with
// a shrunk counterexample on a mutant, and skips with a plain reason on the model executor, on
// objects given by --objects alone, and on objects that lack the programs.

import { describe, expect, it } from 'vitest';
import { buildAccelMutant } from '../../cli/accel-mutants.js';
import { packageRoot } from '../../bpf/kernel/paths.js';
import { accelPhase, accelRuns } from '../../cli/accel-phase.js';
import { runAccelChecks } from '../../properties/accel.js';

function logger(): { lines: string[]; log: (s: string) => void } {
  const lines: string[] = [];
  return { lines, log: (s) => lines.push(s) };
}

describe('acceleration phase of check', () => {
  it('budget: a tenth of the routing runs, 20 to 300 up to the default budget, then in proportion', () => {
    expect([accelRuns(1), accelRuns(2000), accelRuns(20000), accelRuns(40000), accelRuns(100000)]).toEqual([20, 200, 300, 600, 1500]);
  });

  it('model against spec: the model passes its own invariants', async () => {
    const r = await runAccelChecks({ seed: 7, runs: 200 });
    expect(r.failure).toBeNull();
    for (const n of Object.values(r.exercised)) expect(n).toBeGreaterThan(50);
  });

  it('skips on the model executor and on --objects without --accel-objects, saying why', async () => {
    const a = logger();
    expect((await accelPhase({ executor: 'model', seed: 1, runs: 20, userObjects: false, log: a.log })).status).toBe('skipped');
    expect(a.lines.join('\n')).toMatch(/skipped: .*--executor vm or kernel/);
    const b = logger();
    expect((await accelPhase({ executor: 'kernel', seed: 1, runs: 20, userObjects: true, log: b.log })).status).toBe('skipped');
    expect(b.lines.join('\n')).toMatch(/--accel-objects/);
  });

  it('stops the phase on objects the user named that lack the programs, naming the missing one: never a skipped phase and a passing run', async () => {
    const other = `${packageRoot()}/build/bpf/sockops.o`;
    const a = logger();
    const r = await accelPhase({ executor: 'kernel', seed: 1, runs: 20, userObjects: true, objects: { ops: other, redirect: other }, log: a.log });
    expect(r.status).toBe('stopped');
    expect(a.lines.join('\n')).toMatch(/STOPPED: the objects given to --accel-objects cannot serve: no acceleration object has program 'ma_ops'/);
    expect(a.lines.join('\n')).not.toMatch(/skipped/);
  });

  it('passes on ours and fails on a mutant with a shrunk, printed counterexample', async () => {
    const ok = logger();
    expect((await accelPhase({ executor: 'kernel', seed: 42, runs: 300, userObjects: false, log: ok.log })).status).toBe('pass');
    const bad = logger();
    const r = await accelPhase({ executor: 'kernel', seed: 42, runs: 300, userObjects: false, objects: buildAccelMutant('ma-entries-kept'), log: bad.log });
    expect(r.status).toBe('fail');
    expect(r.result?.failure?.invariant).toBe('redirect-cleanup');
    expect(r.result?.failure?.case.pairs.length).toBe(1);
    // The phase counts its findings; check prints each (cli/section-findings.ts, test/vm/section-findings.test.ts).
    expect(bad.lines.join('\n')).toMatch(/acceleration \(section 8\): 1 finding \(printed below\)/);
    expect(r.result?.failure?.size).toBeLessThanOrEqual(r.result!.failure!.shrunkFrom);
  });
});
