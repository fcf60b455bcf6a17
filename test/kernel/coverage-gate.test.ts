// The coverage gate in the kernel: a seed whose random phases leave a class under-covered at the
// default budget (9) passes once targeted generation has run toward it (the VM and the model:
// test/vm/coverage-gate.test.ts).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';
import type { ReportJson } from '../../cli/report.js';

const bin = join(packageRoot(), 'bin/kmesh-check.js');

describe('the coverage gate at 2,000 runs, in the kernel', () => {
  it('passes seed 9 in the kernel', () => {
    if (process.geteuid?.() !== 0) throw new Error('the kernel executor needs root: run the suite as root');
    const dir = mkdtempSync(join(tmpdir(), 'kc-cov-'));
    const r = spawnSync(process.execPath, [bin, 'check', '--no-failure-db', '--no-explain', '--executor', 'kernel', '--seed', '9', '--runs', '2000', '--json', 'k.json'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 240_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'k.json'), 'utf8')) as ReportJson;
    expect(report.coverage.ok).toBe(true);
  });
});
