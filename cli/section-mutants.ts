// The acceleration (section 8) and report (section 7) mutants for `kmesh-check mutants`: each is
// checked by its own phase's checks, with the same result shape as the routing mutants: the
// acceleration mutants on the executor the run uses (kernel or VM); the report mutants as check
// runs the report phase: on the VM, or on the kernel with the cases that let time pass on the VM.

import { ACCEL_MUTANTS, buildAccelMutant } from './accel-mutants.js';
import { AccelKernelExecutor } from '../bpf/kernel/accel/executor.js';
import { AccelVmExecutor } from '../bpf/vm/accel-executor.js';
import type { AccelExecutor } from '../model/accel/executor.js';
import { REPORT_MUTANTS, buildReportMutant } from './report-mutants.js';
import { runAccelChecks } from '../properties/accel.js';
import { runReportChecks, timedReportRunner } from '../properties/report.js';
import { accelRuns } from './accel-phase.js';
import type { MutantResult } from './commands/mutants.js';

export async function runSectionMutants(o: { executor: 'kernel' | 'vm'; seed: number; runs: number; only?: readonly string[]; log: (s: string) => void }): Promise<MutantResult[]> {
  const out: MutantResult[] = [];
  const onVm = o.executor === 'vm';
  const runs = accelRuns(o.runs);
  const record = (r: MutantResult) => {
    out.push(r);
    o.log(`${r.killed ? 'killed  ' : 'SURVIVED'} ${r.name.padEnd(28)} ${r.killed ? `by ${r.invariant} after ${r.cases} cases, ${r.ms} ms` : `${r.cases} cases`}`);
  };
  for (const m of ACCEL_MUTANTS.filter((x) => !o.only || o.only.includes(x.name))) {
    const objects = buildAccelMutant(m.name);
    const ex: AccelExecutor = o.executor === 'kernel' ? await AccelKernelExecutor.start(objects) : await AccelVmExecutor.start(objects);
    try {
      const started = Date.now();
      const r = await runAccelChecks({ seed: o.seed, runs, executor: ex, maxFindings: 1, stopAtFirst: true });
      record({
        name: m.name,
        description: m.description,
        killed: r.failure !== null,
        phase: r.failure ? 'acceleration' : null,
        invariant: r.failure?.invariant ?? null,
        cases: r.runs,
        ms: Date.now() - started,
        counterexampleSize: r.failure ? r.failure.case.ops.length : null,
      });
    } finally {
      await ex.close();
    }
  }
  for (const m of REPORT_MUTANTS.filter((x) => !o.only || o.only.includes(x.name))) {
    const started = Date.now();
    const objects = buildReportMutant(m.name);
    // As check runs it: on the kernel, the cases that let time pass on the VM.
    const timed = onVm ? null : timedReportRunner(objects);
    if (timed && 'why' in timed) o.log(`${m.name}: no report case lets time pass, since the VM cannot run its objects (${timed.why})`);
    const r = await runReportChecks({ seed: o.seed, runs, executor: onVm ? 'vm' : 'kernel', objects, ...(timed ? { timed } : {}), maxFindings: 1, shrink: false, stopAtFirst: true });
    record({
      name: m.name,
      description: m.description,
      killed: r.failure !== null,
      phase: r.failure ? 'reports' : null,
      invariant: r.failure?.invariant ?? null,
      cases: r.runs,
      ms: Date.now() - started,
      counterexampleSize: r.failure ? r.failure.case.conns.length : null,
    });
  }
  return out;
}
