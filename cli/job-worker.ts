// One job of `check --jobs N`, in a worker thread: opens its own executor (the kernel executor
// starts its own harness, in its own cgroup and network namespace), runs its part of the random
// phases (properties/run.ts runRandomPart) and posts what it tallied, or its part of the
// exhaustive exploration (cli/exhaustive.ts) and what it enumerated. Ctrl-C reaches it through a
// shared flag; progress goes out a few times a second.

import { parentPort, workerData } from 'node:worker_threads';
import { Tally } from '../properties/tally.js';
import { invariantTable, runRandomPart } from '../properties/run.js';
import { invariants } from '../model/spec/index.js';
import { isKmeshCheckError } from '../shared/errors.js';
import { Statistics } from '../properties/statistics.js';
import { openExecutor } from './executors.js';
import { exhaustiveSetup, runExhaustivePart, withExactVm } from './exhaustive.js';
import type { JobData, JobMessage } from './jobs.js';
import type { ExploringVm } from '../properties/exact-set.js';

const PROGRESS_MS = 250;

async function main(d: JobData): Promise<JobMessage> {
  const flag = new Int32Array(d.stop);
  const opened = await openExecutor(d.spec.executor, d.spec.objects, `job ${d.index + 1} of ${d.count}`);
  try {
    if (d.explore) {
      const statistics = new Statistics();
      const setup = await exhaustiveSetup(opened.name, opened.executor, d.spec.objects);
      try {
        const raw = await runExhaustivePart(setup, { ...d.explore, env: opened.env, statistics, shouldStop: () => Atomics.load(flag, 0) === 1 });
        const ex = opened.executor as { coverageCounts?: () => unknown } | undefined;
        return { type: 'explored', raw, statistics: statistics.toJSON(), ...(ex?.coverageCounts ? { coverage: ex.coverageCounts() } : {}) };
      } finally {
        await setup.close();
      }
    }
    let last = 0;
    const tally = new Tally(invariantTable(invariants, opened.executor !== undefined), (done) => {
      const now = Date.now();
      if (now - last < PROGRESS_MS) return;
      last = now;
      parentPort!.postMessage({ type: 'progress', done } satisfies JobMessage);
    });
    const s = d.spec;
    const run = {
      seed: s.seed,
      runs: s.runs,
      states: s.states,
      ...(s.timeLimitMs !== undefined ? { timeLimitMs: s.timeLimitMs } : {}),
      ...(s.shard ? { shard: s.shard } : {}),
      ...(s.batchSize !== undefined ? { batchSize: s.batchSize } : {}),
      ...(s.repeatsWhenRandom !== undefined ? { repeatsWhenRandom: s.repeatsWhenRandom } : {}),
    };
    const part = (exact: ExploringVm | undefined) =>
      runRandomPart(
        { ...run, env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}), ...(exact ? { exact } : {}), shouldStop: () => Atomics.load(flag, 0) === 1 },
        { index: d.index, count: d.count },
        tally,
        d.started,
      );
    // Exact outcome sets only when the main thread's part has them too (the report must not depend on --jobs).
    const r = d.spec.exact ? await withExactVm(opened.name, opened.executor, d.spec.objects, part) : await part(undefined);
    const ex = opened.executor as { coverageCounts?: () => unknown } | undefined;
    return { type: 'result', result: { ...r, tally: tally.toJSON() }, ...(ex?.coverageCounts ? { coverage: ex.coverageCounts() } : {}) };
  } finally {
    await opened.executor?.close();
  }
}

main(workerData as JobData).then(
  (m) => parentPort!.postMessage(m),
  (e: unknown) => {
    const err = e as Error;
    parentPort!.postMessage({ type: 'error', code: isKmeshCheckError(err) ? err.code : null, message: err.message ?? String(e) } satisfies JobMessage);
  },
);
