// Three projects: `unit` (pure TypeScript, no privileges), `vm` (the userspace executor, no
// privileges) and `kernel` (the kernel executor: root, CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN).
// scripts/test.sh runs all three as root and the first two otherwise, saying loudly why.

import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { inlineConstEnums } from './test/setup/inline-const-enums.js';

export default defineConfig({
  plugins: [inlineConstEnums()],
  test: {
    // Kernel-executor suites share one harness process each; forks keep cgroups per process.
    pool: 'forks',
    // One test file per core: left to itself, vitest ran one at a time here (2 cores: the whole
    // suite took 568 s, 395 s with two). At most 4, so that kernel suites stay few at once.
    maxWorkers: Math.min(4, availableParallelism()),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['test/setup/fast-check-seed.ts'],
    globalSetup: ['test/setup/temp-root.ts'],
    projects: [
      // One folder per project; test/support, test/helpers and test/fixtures serve them all. Unit
      // and VM files share their worker's modules (isolate: false): importing and warming them up
      // again for every file cost 53 of their 385 CPU-seconds. They keep no state between files
      // that another reads; the kernel files do (a harness process and cgroup per file).
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false } },
      { extends: true, test: { name: 'vm', include: ['test/vm/**/*.test.ts'], isolate: false } },
      // Root: the kernel executor, or the kernel's verifier through libbpf.
      { extends: true, test: { name: 'kernel', include: ['test/kernel/**/*.test.ts'] } },
    ],
  },
});
