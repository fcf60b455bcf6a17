// The acceleration checks over the bounded-exhaustive enumeration (generators/accel-exhaustive.ts):
// every case of the scope (or of --shard's part of it), in batches, through an executor (or the
// model), judged by the section 8 invariants, through the phase checks shared with the sampled
// runs (properties/section-check.ts): each invariant that broke gives one finding, its first
// failing case (cases come smallest first, so no shrinking), with every failing case counted.

import { ACCEL_MAX_SCOPE, accelExhaustiveCount } from '../generators/accel-exhaustive.js';
import type { AccelExecutor } from '../model/accel/executor.js';
import { accelSpec, type AccelResult } from './accel.js';
import { runSectionChecks, type SectionRunOptions } from './section-check.js';
import { WHOLE, type EnumeratedPart, type Shard } from '../generators/shard.js';

export interface AccelExhaustiveResult extends AccelResult {
  /** The scope enumerated (scopes above ACCEL_MAX_SCOPE enumerate that one). */
  readonly scope: number;
  /** Every case of the part ran. */
  readonly complete: boolean;
  /** The scope's size (the whole domain, every shard's part). */
  readonly total: number;
  readonly enumeration: EnumeratedPart;
}

export async function runAccelExhaustive(o: {
  readonly scope: number;
  readonly executor?: AccelExecutor;
  readonly saved?: SectionRunOptions['saved'];
  /** --shard: only this shard's part of the enumeration (generators/shard.ts). */
  readonly shard?: Shard;
  /** --stop-at-first: the enumeration ends at its first failing case. */
  readonly stopAtFirst?: boolean;
}): Promise<AccelExhaustiveResult> {
  const scope = Math.min(Math.max(1, o.scope), ACCEL_MAX_SCOPE);
  // Every case of the part, each invariant's first failing case its finding (small first: not shrunk).
  const r = await runSectionChecks(accelSpec(o.executor), {
    seed: 0,
    runs: 0,
    exhaustiveScope: scope,
    ...(o.shard ? { shard: o.shard } : {}),
    ...(o.saved ? { saved: o.saved } : {}),
    ...(o.stopAtFirst ? { stopAtFirst: true } : {}),
  });
  const enumeration = r.enumeration ?? { scope, shard: o.shard ?? WHOLE, part: 0, ran: 0, total: accelExhaustiveCount(scope), complete: true };
  return { ...r, failure: r.findings[0] ?? null, scope, complete: enumeration.complete, total: enumeration.total, enumeration };
}
