// The build lock: a second holder waits for the first, a dead holder's lock is broken, and a lock
// held too long is a one-line error naming it.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withBuildLock } from '../../cli/build-lock.js';

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('withBuildLock', () => {
  it('waits while another live process holds the folder, then runs', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kc-lock-')), 'mutant');
    // A child takes the lock the same way (mkdir + pid) and lets go after 400 ms.
    const child = spawn(process.execPath, [
      '-e',
      `
      const fs = require('fs');
      fs.mkdirSync(${JSON.stringify(dir + '.lock')});
      fs.writeFileSync(${JSON.stringify(dir + '.lock/pid')}, String(process.pid));
      process.stdout.write('held\\n');
      setTimeout(() => { fs.rmSync(${JSON.stringify(dir + '.lock')}, { recursive: true }); process.exit(0); }, 400);
    `,
    ]);
    await new Promise<void>((res) => child.stdout.once('data', () => res()));
    // Inside, the lock is ours: the child let go of it and our pid is the holder's.
    const holder = withBuildLock(dir, () => Number(readFileSync(join(dir + '.lock', 'pid'), 'utf8')));
    expect(holder).toBe(process.pid);
    expect(existsSync(dir + '.lock')).toBe(false);
    await new Promise<void>((res) => (child.exitCode !== null ? res() : child.once('exit', () => res())));
    expect(child.exitCode).toBe(0);
  });

  it('breaks the lock of a process that died holding it', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kc-lock-')), 'mutant');
    mkdirSync(dir + '.lock');
    writeFileSync(join(dir + '.lock', 'pid'), String(deadPid()));
    expect(withBuildLock(dir, () => 42, 2000)).toBe(42);
    expect(existsSync(dir + '.lock')).toBe(false);
  });

  it('gives up after the wait with a message naming the lock', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kc-lock-')), 'mutant');
    mkdirSync(dir + '.lock');
    writeFileSync(join(dir + '.lock', 'pid'), String(process.pid));
    expect(() => withBuildLock(dir, () => 1, 200)).toThrow(/mutant\.lock has been held by process \d+ .*remove it/);
  });
});
