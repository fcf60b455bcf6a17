// Three projects: `unit` (pure TypeScript, no privileges), `vm` (the userspace executor, no
// privileges) and `kernel` (the kernel executor: root, CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN).
// scripts/test.sh runs all three as root and the first two otherwise, saying loudly why.

import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { inlineConstEnums } from './test/setup/inline-const-enums.js';

/**
 * The suite's longest files, longest first (each 0.3-2.7 minutes as root on 2 cores). A clean
 * clone has no timing cache, and vitest then starts files project by project in name order, so
 * that the VM's findings file (1.7 minutes) started last and ran alone at the end; started first,
 * the long files share the cores with the short ones instead.
 */
const LONGEST = [
  'test/kernel/mutants.test.ts',
  'test/kernel/exhaustive-mutants.test.ts',
  'test/vm/findings.test.ts',
  'test/kernel/mutants-build.test.ts',
  'test/kernel/package.test.ts',
  'test/kernel/report.test.ts',
  'test/vm/report-phase.test.ts',
  'test/vm/coverage-gate.test.ts',
  'test/kernel/cli.test.ts',
  'test/vm/cli-habits.test.ts',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = LONGEST.findIndex((p) => f.moduleId.endsWith(p));
      return i < 0 ? LONGEST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

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
    sequence: { sequencer: LongestFirst },
    projects: [
      // One folder per project; test/support, test/helpers and test/fixtures serve them all.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'vm', include: ['test/vm/**/*.test.ts'] } },
      // Root: the kernel executor, or the kernel's verifier through libbpf.
      { extends: true, test: { name: 'kernel', include: ['test/kernel/**/*.test.ts'] } },
    ],
  },
});
