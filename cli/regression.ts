// The entry point exported regression tests import by package name (`kmesh-check/regression`):
// judge one saved case on an executor and return what failed, so a user's own project can keep a
// counterexample as a test without a checkout of kmesh-check.

import type { Case } from '../model/domain.js';
import type { ObjectPaths } from '../model/executor.js';
import { judge } from '../properties/judge.js';
import { formatCase } from '../properties/format.js';
import { openExecutor, type ExecutorName } from './executors.js';
import { withExactVm } from './exhaustive.js';

/**
 * Judges `c` on `executor` with the given objects (ours when empty). Returns null when every
 * property holds, else the case and what broke, as lines of text for the test's message.
 */
export async function judgeSavedCase(c: Case, executor: ExecutorName, objects: Partial<ObjectPaths> = {}): Promise<string | null> {
  const opened = await openExecutor(executor, objects, 'regression test');
  try {
    const j = await withExactVm(opened.name, opened.executor, objects, (exact) =>
      judge(c, { env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}), ...(exact ? { exact } : {}) }),
    );
    return j.failure ? [`${j.failure.invariant}: ${j.failure.detail}`, ...formatCase(c)].join('\n') : null;
  } finally {
    await opened.executor?.close();
  }
}

export type { Case, ObjectPaths, ExecutorName };
