// The acceleration checks (section 8): generated cases (fast-check, seeded) through the reference
// model or an executor, judged by model/accel's invariants, through the phase checks shared with
// the report phase (properties/section-check.ts: batch, one shrunk finding per invariant).

import { accelCaseArb } from '../generators/accel.js';
import { accelExhaustiveCases } from '../generators/accel-exhaustive.js';
import type { AccelExecutor } from '../model/accel/executor.js';
import { FILTER_LISTS, type AccelCase, type AccelFilter, type AccelObservation, type AccelOp } from '../model/accel/domain.js';
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
  /** The kernel or VM executor; without it the model's own observations are judged (model against spec). */
  readonly executor?: Pick<AccelExecutor, 'run'>;
}

/** The acceleration phase on an executor (none: the model's own observations). */
export function accelSpec(executor?: Pick<AccelExecutor, 'run'>): SectionSpec<AccelCase, AccelObservation> {
  return {
    phase: 'accel',
    arb: accelCaseArb(),
    invariants: accelInvariants,
    judge: judgeAccel,
    run: async (cases) => (executor ? (cases.length ? await executor.run([...cases]) : []) : cases.map(expectedAccel)),
    size: (c) => c.pairs.length + c.ops.length,
    removals: accelRemovals,
    formatCase: formatAccelCase,
    formatObservation: formatAccelObservation,
    // The bounded-exhaustive domain (replay of a dotted scope.index path).
    enumerate: accelExhaustiveCases,
  };
}

/**
 * The case without one of its pairs (its operations too, the later pairs renumbered; one pair is
 * always left), one send, or one entry of a filter list.
 */
export function accelRemovals(c: AccelCase): AccelCase[] {
  const out: AccelCase[] = [];
  if (c.pairs.length > 1) {
    c.pairs.forEach((_, p) => {
      const ops: AccelOp[] = [];
      for (const op of c.ops) {
        if (op.op === 'refilter') ops.push(op);
        else if (op.pair !== p) ops.push(op.pair > p ? { ...op, pair: op.pair - 1 } : op);
      }
      out.push({ ...c, pairs: c.pairs.filter((_, j) => j !== p), ops });
    });
  }
  c.ops.forEach((op, i) => {
    if (op.op === 'send' || op.op === 'refilter') out.push({ ...c, ops: c.ops.filter((_, j) => j !== i) });
  });
  for (const list of FILTER_LISTS) {
    const entries = c.filter[list] as readonly unknown[];
    // A list no longer full loses its count byte of its own.
    const countBytes = { ...c.filter.countBytes };
    delete countBytes[list];
    const filter: AccelFilter = { acceptCidrs: c.filter.acceptCidrs, returnCidrs: c.filter.returnCidrs, acceptPorts: c.filter.acceptPorts, returnPorts: c.filter.returnPorts };
    const kept = Object.keys(countBytes).length ? { countBytes } : {};
    entries.forEach((_, i) => out.push({ ...c, filter: { ...filter, ...kept, [list]: entries.filter((_, j) => j !== i) } }));
  }
  return out;
}

export async function runAccelChecks(o: AccelRunOptions): Promise<AccelResult> {
  const { executor, ...run } = o;
  const r = await runSectionChecks(accelSpec(executor), run);
  return { ...r, failure: r.findings[0] ?? null };
}

/** How to find the case again: fast-check's seed and path, or its place in the enumeration. */
function replayLine(f: AccelFailure): string {
  const e = /^(\d+)\.(\d+)$/.exec(f.path);
  return e ? `  replay: case ${e[2]} of the acceleration enumeration at scope ${e[1]} (check --exhaustive --scope ${e[1]})` : `  replay: fast-check seed ${f.seed}, path ${JSON.stringify(f.path)}`;
}

export function formatAccelFailure(f: AccelFailure, executor: string): string {
  return [
    `COUNTEREXAMPLE (acceleration, ${executor}): ${f.invariant}`,
    `  ${f.detail}`,
    ...formatAccelCase(f.case).map((l) => `  ${l}`),
    '  observed:',
    ...formatAccelObservation(f.case, f.observation).map((l) => `    ${l}`),
    replayLine(f),
  ].join('\n');
}
