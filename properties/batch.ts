// Judging cases in batches: the model's side of every case of a batch first, then one executor
// call for all the runs the batch needs (one worker round trip, and the kernel shim's whole-case
// path, for many cases), then each judgement finished in order. The executor sees exactly the
// sequence of runs that judging the cases one by one would give it, so verdicts do not depend on
// the batch size.

import type { Case, Observation } from '../model/domain.js';
import type { Executor, ExecutorOutcome } from '../model/executor.js';
import { EXACT_SET_OPTIONS, judgeModel, judgeRuns, wantsExactSet, type JudgeOptions, type Judgement, type ModelPart } from './judge.js';

/**
 * Cases judged per batch by default, with an executor that names no batch size of its own (the
 * kernel's): enough that a worker round trip is paid rarely, few enough that a batch's model work
 * stays young garbage (larger batches are promoted to the old generation and the resident size
 * grows). Without an executor nothing is gained by batching: one case at a time.
 */
export const DEFAULT_BATCH_SIZE = 128;

export function batchSizeFor(opts: { readonly executor?: Pick<Executor, 'batchSize'>; readonly batchSize?: number }): number {
  return Math.max(1, opts.batchSize ?? (opts.executor ? (opts.executor.batchSize ?? DEFAULT_BATCH_SIZE) : 1));
}

/** A batch whose executor runs are under way: finish() gives the judgements in case order. */
export interface PendingBatch {
  finish(): Promise<Judgement[]>;
}

/**
 * Judges the model's side of every case now and sends the executor its runs without waiting, so
 * that the caller can prepare the next batch while the executor (another process) works.
 */
export function startBatch(cases: readonly Case[], opts: JudgeOptions): PendingBatch {
  const parts: ModelPart[] = cases.map((c) => judgeModel(c, opts));
  const runs: Case[] = [];
  for (const p of parts) for (let r = 0; r < p.repeats; r++) runs.push(p.case);
  const observed: Promise<Observation[][]> = runs.length && opts.executor ? opts.executor.run(runs) : Promise.resolve([]);
  // The exact sets the runs may need, asked for with them where the VM takes a batch of them (its
  // run thread enumerates them while this thread goes on); a case whose runs fail wastes its set.
  const wanting = opts.exact?.outcomeSets ? parts.filter((p) => wantsExactSet(p, opts)) : [];
  const sets: Promise<Array<readonly ExecutorOutcome[] | null>> = wanting.length
    ? opts.exact!.outcomeSets!(
        wanting.map((p) => p.case),
        EXACT_SET_OPTIONS,
      )
    : Promise.resolve([]);
  // Awaited by finish(); until then a failure must not count as unhandled.
  observed.catch(() => undefined);
  sets.catch(() => undefined);
  return {
    async finish() {
      const all = await observed;
      const setOf = new Map<ModelPart, readonly ExecutorOutcome[] | null>();
      if (wanting.length) (await sets).forEach((s, i) => setOf.set(wanting[i]!, s));
      let at = 0;
      return parts.map((p) => {
        if (p.judgement) return p.judgement;
        const mine = all.slice(at, at + p.repeats);
        at += p.repeats;
        return judgeRuns(p, mine, opts, setOf.get(p));
      });
    },
  };
}
