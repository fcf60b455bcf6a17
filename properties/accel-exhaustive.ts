// The acceleration checks over the bounded-exhaustive enumeration (generators/accel-exhaustive.ts):
// every case of the scope (or of --shard's part of it), in batches, through an executor (or the
// model), judged by the section 8 invariants; the first failing case is the result (cases come
// smallest first, so no shrinking).

import { ACCEL_MAX_SCOPE, accelExhaustiveCases, accelExhaustiveCount } from '../generators/accel-exhaustive.js';
import type { AccelCase } from '../model/accel/domain.js';
import type { AccelExecutor } from '../model/accel/executor.js';
import { accelInvariants, judgeAccel } from '../model/accel/invariants.js';
import { expectedAccel } from '../model/accel/model.js';
import { accelSpec, type AccelResult } from './accel.js';
import { judgeSectionCase, type SectionRunOptions } from './section-check.js';
import { shardPart, shardSize, WHOLE, type EnumeratedPart, type Shard } from '../generators/shard.js';

export interface AccelExhaustiveResult extends AccelResult {
  /** The scope enumerated (scopes above ACCEL_MAX_SCOPE enumerate that one). */
  readonly scope: number;
  /** Every case of the scope ran (no failure stopped it). */
  readonly complete: boolean;
  /** The scope's size (the whole domain, every shard's part). */
  readonly total: number;
  readonly enumeration: EnumeratedPart;
}

const BATCH = 64;

/** The path a failure found here carries instead of fast-check's: `<scope>.<index>` (dotted, as the other enumerations). */
export function exhaustivePath(scope: number, index: number): string {
  return `${scope}.${index}`;
}

export async function runAccelExhaustive(o: {
  readonly scope: number;
  readonly executor?: AccelExecutor;
  readonly saved?: SectionRunOptions['saved'];
  /** --shard: only this shard's part of the enumeration (generators/shard.ts). */
  readonly shard?: Shard;
}): Promise<AccelExhaustiveResult> {
  const scope = Math.min(Math.max(1, o.scope), ACCEL_MAX_SCOPE);
  const exercised: Record<string, number> = Object.fromEntries(accelInvariants.map((i) => [i.name, 0]));
  const failed: Record<string, number> = Object.fromEntries(accelInvariants.map((i) => [i.name, 0]));
  // Saved failures of the phase are judged first, as in a sampled run.
  const spec = accelSpec(o.executor);
  const replayed = [];
  for (const s of o.saved ?? []) replayed.push(await judgeSectionCase(spec, s.case as AccelCase, s));
  const total = accelExhaustiveCount(scope);
  const shard = o.shard ?? WHOLE;
  let runs = 0;
  const enumeration = (complete: boolean) => ({ scope, shard, part: shardSize(total, shard), ran: runs, total, complete });
  const all = shardPart(accelExhaustiveCases(scope), shard);
  for (;;) {
    const batch: Array<[number, AccelCase]> = [];
    while (batch.length < BATCH) {
      const n = all.next();
      if (n.done) break;
      batch.push(n.value);
    }
    if (!batch.length) return { runs, exercised, failed, failure: null, findings: [], replayed, scope, complete: true, total, enumeration: enumeration(true) };
    const cases = batch.map(([, c]) => c);
    const obs = o.executor ? await o.executor.run(cases) : cases.map(expectedAccel);
    for (let i = 0; i < batch.length; i++) {
      const [at, c] = batch[i]!;
      const verdicts = judgeAccel(c, obs[i]!);
      runs++;
      for (const v of verdicts) if (v.verdict.status === 'holds') exercised[v.name]!++;
      const bad = verdicts.find((v) => v.verdict.status === 'violated');
      if (bad?.verdict.status === 'violated') {
        failed[bad.name]!++;
        const statement = accelInvariants.find((x) => x.name === bad.name)?.statement ?? '';
        const size = spec.size(c);
        const failure = {
          phase: 'accel' as const,
          invariant: bad.name,
          statement,
          detail: bad.verdict.detail,
          case: c,
          observation: obs[i]!,
          seed: 0,
          path: exhaustivePath(scope, at),
          size,
          shrunkFrom: size,
          hits: 1,
        };
        return { runs, exercised, failed, scope, complete: false, total, failure, findings: [failure], replayed, enumeration: enumeration(false) };
      }
    }
  }
}
