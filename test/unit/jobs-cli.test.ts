// `check --jobs N` splits the random phases over N worker threads; the report does not depend on
// N: with --jobs 1 and --jobs 2 the JSON reports are byte-identical once timings are taken out.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';

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
