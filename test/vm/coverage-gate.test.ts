// The coverage gate never fails correct objects by chance: seeds whose random phases left a class
// under-covered at 2,000 runs pass once targeted generation has run toward it, on the VM
// (and in the kernel: test/kernel/coverage-gate.test.ts); shards each meet a requirement scaled to their share, and merge judges the sum.
// A long run's classes all end met, though targeting one adds cases to every class's share. A
// class that cannot be reached fails, named, with the reason, after at most the stated cap.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { runChecks, TARGET_CAP_BASE, TARGET_CAP_PER_CASE } from '../../properties/run.js';
import { judgeCoverage, REQUIRED_PATHS } from '../../cli/commands/check.js';
import type { ReportJson } from '../../cli/report.js';

const bin = join(packageRoot(), 'bin/kmesh-check.js');
/** The budget at which these seeds leave classes to targeted generation (check's default was 2,000 when they were found). */
const RUNS = 2000;

function check(args: string[], dir: string): ReportJson {
  const r = spawnSync(process.execPath, [bin, 'check', '--no-failure-db', '--no-explain', '--runs', String(RUNS), ...args], { cwd: dir, encoding: 'utf8', timeout: 240_000 });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return JSON.parse(readFileSync(join(dir, args[args.indexOf('--json') + 1]!), 'utf8')) as ReportJson;
}

describe('the coverage gate at 2,000 runs', () => {
  // Seeds 7, 13 and 18 leave path:backend-missing and dns:connected-v4mapped-exchange (and others)
  // under-covered by the random phases.
  it('passes the seeds that need targeted generation, on the VM (seed 7) and the model (13, 18)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-cov-'));
    let targeted = 0;
    for (const [executor, seed] of [
      ['vm', '7'],
      ['model', '13'],
      ['model', '18'],
    ] as const) {
      const r = check(['--executor', executor, '--seed', seed, '--json', `${executor}${seed}.json`], dir);
      expect(r.coverage.ok, seed).toBe(true);
      targeted += r.coverage.targeted ?? 0;
    }
    expect(targeted).toBeGreaterThan(0);
  });

  it('passes every shard of --shard i/4 and their merge', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-cov-'));
    const files: string[] = [];
    for (let i = 1; i <= 4; i++) {
      const r = check(['--executor', 'model', '--shard', `${i}/4`, '--json', `s${i}.json`], dir);
      expect(r.coverage.ok, `shard ${i}`).toBe(true);
      // A shard's requirement is scaled to its share of the budget.
      expect(r.coverage.requirements[0]!.required).toBeLessThan(4);
      files.push(`s${i}.json`);
    }
    const m = spawnSync(process.execPath, [bin, 'merge', ...files, '--json', 'all.json'], { cwd: dir, encoding: 'utf8' });
    expect(m.status, m.stdout + m.stderr).toBe(0);
    const all = JSON.parse(readFileSync(join(dir, 'all.json'), 'utf8')) as ReportJson;
    expect(all.coverage.ok).toBe(true);
    expect(all.coverage.requirements[0]!.required).toBeGreaterThanOrEqual(4);
  });
});

describe('the coverage gate of a long run', () => {
  it("passes at 200,000 runs: classes that later classes' targeted cases left short are targeted again", async () => {
    // Before rounds (TARGET_ROUNDS), two DNS classes met in their turn ended 210 and 213 of 216.
    const r = await runChecks({ seed: 42, runs: 200_000, states: 'both', env: DEFAULT_ENVIRONMENT, targetCoverage: { paths: REQUIRED_PATHS } });
    const cov = judgeCoverage(r, 0, 'both', true, REQUIRED_PATHS);
    expect(cov.requirements.filter((q) => !q.ok)).toEqual([]);
    expect(r.targets.length).toBeGreaterThan(0);
    expect(r.targets.every((t) => t.met && t.tried <= t.cap)).toBe(true);
  }, 120_000);
});

describe('a class the generators cannot reach', () => {
  it('fails after the stated cap of targeted cases, named, with the reason', async () => {
    const paths = [...REQUIRED_PATHS, 'no-such-path'];
    const r = await runChecks({ seed: 1, runs: 300, states: 'both', env: DEFAULT_ENVIRONMENT, targetCoverage: { paths } });
    const t = r.targets.find((x) => x.class === 'path:no-such-path');
    expect(t).toBeDefined();
    expect(t!.met).toBe(false);
    expect(t!.cap).toBe(TARGET_CAP_BASE + TARGET_CAP_PER_CASE * 1);
    expect(t!.tried).toBe(t!.cap);
    // Reachable classes were met on the way.
    expect(r.targets.filter((x) => x.class !== 'path:no-such-path').every((x) => x.met)).toBe(true);
    const cov = judgeCoverage(r, 0, 'both', true, paths);
    expect(cov.ok).toBe(false);
    const failed = cov.requirements.filter((q) => !q.ok);
    expect(failed.map((q) => q.class)).toEqual(['path:no-such-path']);
    expect(failed[0]!.why).toMatch(new RegExp(`targeted generation ran ${t!.cap} of at most ${t!.cap} cases toward it and reached it 0 times`));
  });
});
