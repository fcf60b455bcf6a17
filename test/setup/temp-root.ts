// Global set-up: the run's temporary files go under one directory of its own, removed when the run
// ends. Tests and the CLI runs they start make directories in os.tmpdir(); a test worker ended by
// vitest runs no exit handler, and thousands of them were left in /tmp.

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set while a run's directory is in use: each project runs this set-up again, in one process. */
const MARK = 'KMESH_CHECK_TEST_TMPDIR';

export default function setup(): () => void {
  if (process.env[MARK]) return () => {};
  const outer = tmpdir();
  const root = mkdtempSync(join(outer, 'kmesh-check-tests-'));
  // As /tmp is: tests run the CLI as another user (nobody), which makes its own directories here.
  chmodSync(root, 0o1777);
  // Caches that serve every run (test/fixtures/vm/helpers.ts) stay outside it.
  process.env.KMESH_CHECK_TEST_CACHE_DIR ??= outer;
  process.env[MARK] = root;
  // Read by os.tmpdir() in the test workers, which inherit this environment, and in what they start.
  process.env.TMPDIR = root;
  return () => {
    rmSync(root, { recursive: true, force: true });
    process.env.TMPDIR = outer;
    delete process.env[MARK];
  };
}
