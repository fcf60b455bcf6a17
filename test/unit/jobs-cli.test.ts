// `check --jobs N` splits the random phases over N worker threads; the report does not depend on
// N: with --jobs 1 and --jobs 2 the JSON reports are byte-identical once timings are taken out.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';
import { CORES_PER_JOB, MIN_RUNS_PER_CORE_JOB, MIN_RUNS_PER_JOB, casesPerJob, defaultJobs } from '../../cli/jobs.js';
import { DNS_SHARE } from '../../properties/run.js';

const bin = join(packageRoot(), 'bin/kmesh-check.js');

/** The report's text without its timings (durations, seconds), which no two runs share. */
function withoutTimings(file: string): string {
  return JSON.stringify(JSON.parse(readFileSync(file, 'utf8')), (k: string, v: unknown) => (/durationMs$|seconds$/i.test(k) ? undefined : v), 2);
}

describe('check --jobs', () => {
  it('writes the same report with one job and with two', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-jobs-'));
    const texts = [1, 2].map((jobs) => {
      const r = spawnSync(process.execPath, [bin, 'check', '--executor', 'model', '--runs', '2000', '--seed', '11', '--jobs', String(jobs), '--json', `r${jobs}.json`, '--no-failure-db'], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 240_000,
      });
      expect(r.status, r.stderr).toBe(0);
      return withoutTimings(join(dir, `r${jobs}.json`));
    });
    expect(JSON.parse(texts[0]!).cases).toBeGreaterThan(2000);
    expect(texts[1]).toBe(texts[0]);
  });
});

describe('the default of --jobs', () => {
  const cores = availableParallelism();
  const perTwo = Math.max(1, Math.floor(cores / CORES_PER_JOB));
  it('is one job per two cores on the kernel, however long the run', () => {
    expect(defaultJobs(Infinity, 'kernel')).toBe(perTwo);
    expect(defaultJobs(cores * MIN_RUNS_PER_CORE_JOB * 10, 'kernel')).toBe(perTwo);
  });
  it('gives every job at least its share of runs', () => {
    for (const executor of ['kernel', 'vm', 'model'] as const) {
      expect(defaultJobs(MIN_RUNS_PER_JOB - 1, executor)).toBe(1);
      expect(defaultJobs(2 * MIN_RUNS_PER_JOB, executor)).toBe(Math.min(2, perTwo));
    }
  });
  it('is one job per core on the VM and the model once each gets a long run', () => {
    for (const executor of ['vm', 'model'] as const) {
      expect(defaultJobs(cores * MIN_RUNS_PER_CORE_JOB, executor)).toBe(cores);
      expect(defaultJobs(Infinity, executor)).toBe(cores);
      // Short of that, as on the kernel.
      expect(defaultJobs(2 * MIN_RUNS_PER_CORE_JOB - 1, executor)).toBe(Math.max(perTwo, 1));
    }
  });
});

describe('the cases each job checks (which decide its V8 tuning)', () => {
  it("are the run's cases, dns phase included, over its jobs and its shard", () => {
    expect(casesPerJob(100_000, 'vm', 2)).toBeCloseTo(50_000 * (1 + DNS_SHARE));
    expect(casesPerJob(100_000, 'vm', 1, { index: 0, count: 4 })).toBeCloseTo(25_000 * (1 + DNS_SHARE));
    // Without --jobs, the default's share.
    expect(casesPerJob(1_000_000, 'model')).toBeCloseTo((1_000_000 * (1 + DNS_SHARE)) / defaultJobs(1_000_000, 'model'));
  });
});
