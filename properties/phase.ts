// One phase of generated cases, judged in batches. fast-check generates the phase's stream (from
// its seed, starting at `start` through a replay path, so a part of the stream costs only the
// random generator's jumps before it); the property only collects cases, and every full batch is
// judged (properties/batch.ts) while the next one is generated, its executor runs overlapping the
// next batch's model work. Judgements are recorded strictly in stream order and every stop
// (Ctrl-C, --stop-at-first, a met target) is decided case by case, so a run records exactly what
// judging one case at a time would, with the same index (the replay path) for every case.

import fc from 'fast-check';
import type { Case } from '../model/domain.js';
import type { JudgeOptions } from './judge.js';
import { batchSizeFor, startBatch, type PendingBatch } from './batch.js';
import type { Tally } from './tally.js';

/** Judging time a batch aims at under a time limit. */
const BATCH_MS = 25;

export interface PhaseRun {
  readonly phase: string;
  /** Ordinal of the phase in the run (orders first hits across phases). */
  readonly order: number;
  readonly arb: fc.Arbitrary<Case>;
  readonly seed: number;
  /** The part of the phase's case stream to run: indices start .. start + count - 1. */
  readonly start: number;
  readonly count: number;
  readonly opts: JudgeOptions & {
    readonly stopAtFirst?: boolean;
    readonly shouldStop?: () => boolean;
    /** Cases per batch (default batchSizeFor; 1 judges one case at a time). */
    readonly batchSize?: number;
  };
  readonly tally: Tally;
  readonly deadline?: number;
  /** Checked before each case: true ends the phase (a met target). */
  readonly until?: () => boolean;
}

export interface PhaseOutcome {
  readonly interrupted: boolean;
  /** Stopped early: Ctrl-C, or the first failure with stopAtFirst. */
  readonly stop: boolean;
  /** Cases judged and recorded. */
  readonly tried: number;
}

export async function runPhase(r: PhaseRun): Promise<PhaseOutcome> {
  const { opts, tally } = r;
  const most = batchSizeFor(opts);
  // Under a time limit a batch is what recent batches judged in BATCH_MS, so that the cases
  // generated before the limit and judged after it stay few.
  let size = r.deadline === undefined ? most : Math.min(most, 16);
  let stop = false;
  let done = false;
  let tried = 0;
  let lastYield = Date.now();
  let buffer: Case[] = [];
  let next = r.start;
  let inflight = null as { batch: PendingBatch; start: number } | null;

  // Records the batch under way in order, deciding each stop before each case as one-by-one would.
  const settle = async () => {
    const b = inflight;
    if (!b) return;
    inflight = null;
    const judgements = await b.batch.finish();
    for (let k = 0; k < judgements.length && !stop && !done; k++) {
      if (opts.shouldStop?.()) stop = true;
      else if (r.until?.()) done = true;
      else {
        const j = judgements[k]!;
        tried++;
        tally.record(j, r.phase, r.order, r.seed, b.start + k);
        if (j.signature && opts.stopAtFirst) stop = true;
      }
    }
  };
  // Sends the collected cases off, then records the batch before them (whose runs overlapped).
  const launch = async () => {
    const start = next - buffer.length;
    const t0 = Date.now();
    const batch = startBatch(buffer, opts);
    const n = buffer.length;
    buffer = [];
    await settle();
    if (r.deadline !== undefined) size = Math.max(1, Math.min(most, Math.round((n * BATCH_MS) / Math.max(1, Date.now() - t0))));
    if (stop || done) await batch.finish().catch(() => undefined);
    else inflight = { batch, start };
  };

  if (r.count <= 0) return { interrupted: false, stop: false, tried: 0 };
  // What judging threw: fast-check would only report it as a failed property.
  let thrown: { error: unknown } | null = null;
  const property = fc.asyncProperty(r.arb, async (c: Case) => {
    if (stop || done) return false;
    try {
      // Executors that never wait on I/O (model, VM) would keep signals (Ctrl-C) from ever being
      // handled: let the event loop run now and then.
      if (opts.shouldStop && Date.now() - lastYield > 100) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = Date.now();
      }
      if (opts.shouldStop?.()) {
        stop = true;
        return false;
      }
      buffer.push(c);
      next++;
      if (buffer.length >= size) await launch();
    } catch (e) {
      thrown = { error: e };
      return false;
    }
    return !(stop || done);
  });
  const params: fc.Parameters<[Case]> = {
    seed: r.seed,
    numRuns: r.count,
    endOnFailure: true,
    // A replay path of one number starts the stream at that index.
    ...(r.start > 0 ? { path: String(r.start) } : {}),
    ...(r.deadline !== undefined ? { interruptAfterTimeLimit: Math.max(1, r.deadline - Date.now()) } : {}),
    markInterruptAsFailure: false,
  };
  const details = await fc.check(property, params);
  if (thrown) {
    await inflight?.batch.finish().catch(() => undefined);
    throw (thrown as { error: unknown }).error;
  }
  if (!stop && !done && buffer.length) await launch();
  await settle();
  return { interrupted: details.interrupted, stop: stop || opts.shouldStop?.() === true, tried };
}
