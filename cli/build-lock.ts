// One build per output folder at a time. Test files run in parallel processes and users may run
// two commands at once; two builds of the same mutant folder would read half-written sources or
// objects. The lock is a directory beside the folder (mkdir is atomic) holding the holder's pid.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KmeshCheckError } from '../shared/errors.js';
import { processAlive } from '../shared/process.js';

/** How long a build waits for another build of the same folder. */
export const LOCK_WAIT_MS = 300_000;

/** Runs `fn` while holding `<dir>.lock` (a directory: mkdir is atomic); a dead holder's lock is broken. */
export function withBuildLock<T>(dir: string, fn: () => T, waitMs = LOCK_WAIT_MS): T {
  const lock = `${dir}.lock`;
  try {
    mkdirSync(dirname(lock), { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw e;
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // A process that may not write the folder cannot race a writer: it only reads a build that
      // is already there (make finds it up to date), so it needs no lock.
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOENT') return fn();
      if (code !== 'EEXIST') throw e;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    } catch {
      // the holder has not written its pid yet
    }
    if (holder > 0 && !processAlive(holder)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new KmeshCheckError('build', `${lock} has been held by process ${holder || '?'} for ${Math.round(waitMs / 1000)} s: remove it if no build is running`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
