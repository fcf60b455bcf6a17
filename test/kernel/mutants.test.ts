// Checking power: every mutant of our data path is killed by the checker within the default
// budget and seed, with a small counterexample, on the kernel executor (needs root); and the
// userspace VM, run without privileges, reaches the same verdict on every routing and
// acceleration mutant (it kills the report mutants in test/vm/report-phase.test.ts).

import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MUTANTS, buildAllMutants, buildBaseline } from '../../cli/mutants.js';
import { ACCEL_MUTANTS, buildAccelMutant } from '../../cli/accel-mutants.js';
import { REPORT_MUTANTS, buildReportMutant } from '../../cli/report-mutants.js';
import { packageRoot } from '../../bpf/kernel/paths.js';
import { runMutants, type MutantsReport } from '../../cli/commands/mutants.js';
import { MUTANT_RUNS, DEFAULT_SEED } from '../../cli/main.js';
import { unprivilegedPrefix } from '../helpers/privileges.js';

/** The routing and acceleration mutants' verdicts (what both executors run here). */
const verdicts = (r: MutantsReport) =>
  r.mutants.filter((m) => [...MUTANTS, ...ACCEL_MUTANTS].some((x) => x.name === m.name)).map(({ name, killed, invariant, counterexampleSize }) => ({ name, killed, invariant, counterexampleSize }));

describe('mutants of bpf/src', () => {
  it('are all killed on the kernel executor with the default budget, and the unprivileged VM agrees', async () => {
    if (process.geteuid?.() !== 0) throw new Error('the mutation test runs the kernel executor and requires root: run it as root or with sudo');
    // The unprivileged run cannot write build/: every object it loads is built here first, as root,
    // so that it runs beside the kernel's run (the longest test of the suite) instead of after it.
    buildAllMutants();
    buildBaseline();
    for (const m of ACCEL_MUTANTS) buildAccelMutant(m.name);
    for (const m of REPORT_MUTANTS) buildReportMutant(m.name);
    const bin = join(packageRoot(), 'bin/kmesh-check.js');
    const out = mkdtempSync(join(tmpdir(), 'kc-vm-mutants-'));
    chmodSync(out, 0o777);
    const { prefix } = unprivilegedPrefix(bin);
    // The routing and acceleration mutants: the report mutants' VM kills are test/vm/report-phase.test.ts's.
    const onVm = [...MUTANTS, ...ACCEL_MUTANTS].map((m) => m.name);
    const [cmd, ...args] = [...prefix, process.execPath, bin, 'mutants', '--executor', 'vm', '--only', onVm.join(','), '--json', join(out, 'vm.json')];
    const vmRun = new Promise<{ status: number | null; output: string }>((resolve) => {
      const child = spawn(cmd!, args, { cwd: out, stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
      let output = '';
      child.stdout.on('data', (b: Buffer) => (output += b.toString()));
      child.stderr.on('data', (b: Buffer) => (output += b.toString()));
      child.on('close', (status) => resolve({ status, output }));
    });

    const first = await runMutants({ executor: 'kernel', why: 'test', seed: DEFAULT_SEED, runs: MUTANT_RUNS });
    // The kernel draws its own prandom values: a bug whose only failing cases of the budget depend
    // on a draw the model does not make (policy-low-byte: the targeted unknown-policy cases, where
    // the model draws nothing and so asks no exact set) dies in most runs, not all. A survivor gets
    // up to two more runs of the same budget and seed, which must kill it.
    const retried = new Map<string, number>();
    const kernel = { ...first, mutants: [...first.mutants] };
    for (const [i, m] of first.mutants.entries()) {
      for (let run = 2; !kernel.mutants[i]!.killed && run <= 3; run++) {
        retried.set(m.name, run);
        kernel.mutants[i] = (await runMutants({ executor: 'kernel', why: 'test', seed: DEFAULT_SEED, runs: MUTANT_RUNS, only: [m.name] })).mutants[0]!;
      }
    }
    if (retried.size) console.warn(`kernel mutants killed only after more runs: ${[...retried].map(([n, r]) => `${n} (run ${r})`).join(', ')}`);
    // Every report mutant too: the cases that let time pass run on the VM, as in check.
    const onKernel = [...MUTANTS, ...ACCEL_MUTANTS, ...REPORT_MUTANTS];
    expect(kernel.mutants.map((m) => m.name)).toEqual(onKernel.map((m) => m.name));
    expect(kernel.mutants.filter((m) => !m.killed).map((m) => m.name)).toEqual([]);
    // Only draw-dependent kills may need the second chance; any other survivor of the first run fails.
    expect([...retried.keys()].filter((n) => n !== 'policy-low-byte')).toEqual([]);
    for (const m of kernel.mutants) {
      expect(m.invariant, m.name).toBeTruthy();
      // 1-minimal counterexamples of these bugs are small: a handful of entries and operations. A
      // consistent state's entries depend on one another (frontend, service, its endpoints, their
      // backends), so one with two services behind waypoints holds a dozen (tail-slot-wrong: 11).
      expect(m.counterexampleSize, m.name).toBeLessThanOrEqual(12);
    }

    const r = await vmRun;
    expect(r.status, r.output).toBe(0);
    const vm = JSON.parse(readFileSync(join(out, 'vm.json'), 'utf8')) as MutantsReport;
    expect(vm.mutants.map((m) => m.name)).toEqual(onVm);
    expect(vm.mutants.filter((m) => !m.killed).map((m) => m.name)).toEqual([]);
    expect(verdicts(vm)).toEqual(verdicts(kernel));
  }, 300_000);
});
