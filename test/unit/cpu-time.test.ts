// The bench's CPU figures per thread (cli/cpu-time.ts): a process's main thread is one of its
// threads, so its CPU time is part of the process's, and both are read for any process by its id.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mainThreadCpuMs, processCpuMs } from '../../cli/cpu-time.js';

describe('cpu time', () => {
  it('counts the main thread within its process', () => {
    let x = 0;
    for (let i = 0; i < 5e7; i++) x = (x + i) % 1000003;
    expect(x).toBeGreaterThanOrEqual(0);
    const main = mainThreadCpuMs(process.pid);
    const all = processCpuMs(process.pid);
    expect(Number.isFinite(main) && Number.isFinite(all)).toBe(true);
    expect(main).toBeGreaterThan(0);
    expect(main).toBeLessThanOrEqual(all);
  });

  it('reads another process by its id, and fails on one that is gone', () => {
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    expect(() => processCpuMs(Number(r.stdout))).toThrow();
    expect(processCpuMs(process.ppid)).toBeGreaterThanOrEqual(0);
  });
});
