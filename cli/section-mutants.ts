// The acceleration (section 8) and report (section 7) mutants for `kmesh-check mutants`: each is
// checked by its own phase's checks on the kernel executor, with the same result shape as the
// routing mutants. Report mutants that only the VM's poisoned ring buffer shows are left to
// test/vm/report.test.ts and not counted here.

import { ACCEL_MUTANTS, buildAccelMutant } from './accel-mutants.js';
import { AccelKernelExecutor } from '../bpf/kernel/accel/executor.js';
import { REPORT_MUTANTS, buildReportMutant } from './report-mutants.js';
import { runAccelChecks } from '../properties/accel.js';
import { runReportChecks } from '../properties/report.js';
import { accelRuns } from './accel-phase.js';
import type { MutantResult } from './commands/mutants.js';

export async function runSectionMutants(o: { seed: number; runs: number; only?: readonly string[]; log: (s: string) => void }): Promise<MutantResult[]> {
  const out: MutantResult[] = [];
  const runs = accelRuns(o.runs);
  const record = (r: MutantResult) => {
    out.push(r);
    o.log(`${r.killed ? 'killed  ' : 'SURVIVED'} ${r.name.padEnd(28)} ${r.killed ? `by ${r.invariant} after ${r.cases} cases, ${r.ms} ms` : `${r.cases} cases`}`);
  };
  for (const m of ACCEL_MUTANTS.filter((x) => !o.only || o.only.includes(x.name))) {
    const ex = await AccelKernelExecutor.start(buildAccelMutant(m.name));
    try {
      const started = Date.now();
      const r = await runAccelChecks({ seed: o.seed, runs, executor: ex, maxFindings: 1, shrink: false });
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
  for (const m of REPORT_MUTANTS.filter((x) => x.shows === 'kernel' && (!o.only || o.only.includes(x.name)))) {
    const started = Date.now();
    const r = await runReportChecks({ seed: o.seed, runs, objects: buildReportMutant(m.name), maxFindings: 1, shrink: false });
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
