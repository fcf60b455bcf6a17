// One phase of generated cases, judged in batches. fast-check generates the phase's stream (from
// its seed, starting at `start` through a replay path, so a part of the stream costs only the
// random generator's jumps before it); the property only collects cases, and every full batch is
// judged (properties/batch.ts) while the next ones are generated: IN_FLIGHT batches keep their
// executor runs under way, so that an executor in another process (the kernel's harness worker)
// has one queued while this process records, generates and models. Judgements are recorded
// strictly in stream order and every stop (Ctrl-C, --stop-at-first, a met target) is decided case
// by case, so a run records exactly what judging one case at a time would, with the same index
// (the replay path) for every case.

import fc from 'fast-check';
import type { Case } from '../model/domain.js';
import type { JudgeOptions } from './judge.js';
import { batchSizeFor, startBatch, type PendingBatch } from './batch.js';
import type { Tally } from './tally.js';

/** Judging time a batch aims at under a time limit. */
const BATCH_MS = 25;
/**
 * Batches left with their executor runs under way while the next one is generated. With one, the
 * kernel's worker idled whenever this process's share of a batch (recording the last, generating
 * and modelling the next) took longer than the worker's run of the one before, and each side
 * waited on the other in turn; a second one queued absorbs those swings. Under a time limit one,
 * so that few cases are judged after the limit.
 */
const IN_FLIGHT = 2;

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
  // A phase that ends once a condition holds (targeted generation) judges each case before
  // generating the next: its cases are costly to generate (up to HISTORY_TARGET_DRAWS ordinary
  // cases each), and a batch drawn ahead was mostly thrown away once the first case met the aim.
  const oneByOne = r.until !== undefined;
  let size = oneByOne ? 1 : r.deadline === undefined ? most : Math.min(most, 16);
  const depth = oneByOne ? 0 : r.deadline === undefined ? IN_FLIGHT : 1;
  let stop = false;
  let done = false;
  let tried = 0;
  let lastYield = Date.now();
  let buffer: Case[] = [];
  let next = r.start;
  /** Batches sent to the executor, oldest first, not yet recorded. */
  const inflight: Array<{ batch: PendingBatch; start: number }> = [];

  // Records the oldest batch under way in order, deciding each stop before each case as one-by-one would.
  const settle = async () => {
    const b = inflight.shift();
    if (!b) return;
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
  // Waits out the batches under way without recording them (after a stop, or a throw).
  const discard = async () => {
    for (const b of inflight.splice(0)) await b.batch.finish().catch(() => undefined);
  };
  // Sends the collected cases off, then records the oldest batches (whose runs overlapped) down to the number left in flight.
  const launch = async () => {
    const start = next - buffer.length;
    const t0 = Date.now();
    const n = buffer.length;
    inflight.push({ batch: startBatch(buffer, opts), start });
    buffer = [];
    while (inflight.length > depth && !stop && !done) await settle();
    if (r.deadline !== undefined) size = Math.max(1, Math.min(most, Math.round((n * BATCH_MS) / Math.max(1, Date.now() - t0))));
    if (stop || done) await discard();
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
    await discard();
    throw (thrown as { error: unknown }).error;
  }
  if (!stop && !done && buffer.length) await launch();
  while (inflight.length && !stop && !done) await settle();
  await discard();
  return { interrupted: details.interrupted, stop: stop || opts.shouldStop?.() === true, tried };
}
