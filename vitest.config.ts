import { defineConfig } from 'vitest/config';
import { inlineConstEnums } from './test/setup/inline-const-enums.js';

export default defineConfig({
  plugins: [inlineConstEnums()],
  test: {
    include: ['test/**/*.test.ts'],
    // Kernel-executor suites share one harness process each; forks keep cgroups per process.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
