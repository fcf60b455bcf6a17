// The acceleration checks (section 8): generated cases (fast-check, seeded) through the reference
// model or an executor, judged by model/accel's invariants, through the phase checks shared with
// the report phase (properties/section-check.ts: batch, one shrunk finding per invariant).

import type { AccelKernelExecutor } from '../bpf/kernel/accel/executor.js';
import { accelCaseArb } from '../generators/accel.js';
import type { AccelCase, AccelObservation } from '../model/accel/domain.js';
import { formatAccelCase, formatAccelObservation } from '../model/accel/format.js';
import { accelInvariants, judgeAccel } from '../model/accel/invariants.js';
import { expectedAccel } from '../model/accel/model.js';
import { runSectionChecks, type SectionFinding, type SectionResult, type SectionRunOptions, type SectionSpec } from './section-check.js';

/** A finding of the acceleration phase (replay: fast-check's seed and path). */
export type AccelFailure = SectionFinding<AccelCase, AccelObservation>;

export interface AccelResult extends SectionResult<AccelCase, AccelObservation> {
  /** The first finding (null when every invariant held). */
  readonly failure: AccelFailure | null;
}

export interface AccelRunOptions extends SectionRunOptions {
  /** The kernel executor; without it the model's own observations are judged (model against spec). */
  readonly executor?: Pick<AccelKernelExecutor, 'run'>;
}

/** The acceleration phase on an executor (none: the model's own observations). */
export function accelSpec(executor?: Pick<AccelKernelExecutor, 'run'>): SectionSpec<AccelCase, AccelObservation> {
  return {
    phase: 'accel',
    arb: accelCaseArb(),
    invariants: accelInvariants,
    judge: judgeAccel,
    run: async (cases) => (executor ? (cases.length ? await executor.run([...cases]) : []) : cases.map(expectedAccel)),
    size: (c) => c.pairs.length + c.ops.length,
    formatCase: formatAccelCase,
    formatObservation: formatAccelObservation,
  };
}

export async function runAccelChecks(o: AccelRunOptions): Promise<AccelResult> {
  const { executor, ...run } = o;
  const r = await runSectionChecks(accelSpec(executor), run);
  return { ...r, failure: r.findings[0] ?? null };
}

export function formatAccelFailure(f: AccelFailure, executor: string): string {
  return [
    `COUNTEREXAMPLE (acceleration, ${executor}): ${f.invariant}`,
    `  ${f.detail}`,
    ...formatAccelCase(f.case).map((l) => `  ${l}`),
    '  observed:',
    ...formatAccelObservation(f.case, f.observation).map((l) => `    ${l}`),
    `  replay: fast-check seed ${f.seed}, path ${JSON.stringify(f.path)}`,
  ].join('\n');
}
