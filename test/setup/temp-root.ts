// Global set-up: the run's temporary files go under one directory of its own, removed when the run
// ends. Tests and the CLI runs they start make directories in os.tmpdir(); a test worker ended by
// vitest runs no exit handler, and thousands of them were left in /tmp.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const outer = tmpdir();
  const root = mkdtempSync(join(outer, 'kmesh-check-tests-'));
  // Caches that serve every run (test/fixtures/vm/helpers.ts) stay outside it.
  process.env.KMESH_CHECK_TEST_CACHE_DIR ??= outer;
  // Read by os.tmpdir() in the test workers, which inherit this environment, and in what they start.
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
