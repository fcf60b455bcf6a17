// The harness's own cgroup: a fresh child `kmesh-check-<pid>` of the cgroup2 mount, joined before
// any socket exists (a socket's cgroup is fixed at socket()). A crashed harness leaves at most an
// empty directory; the next start sweeps those whose pid is dead. Harnesses run side by side
// (--jobs, parallel test files, other checkouts): a sweep only ever removes an empty directory,
// never moving a process out, and a harness whose reused pid met a stale directory that another
// sweep removed meanwhile makes it again. (The name stays `kmesh-check-<pid>`: sweeps of earlier
// versions remove any other name whatever it holds.)

import { readFileSync, readdirSync, mkdirSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { KmeshCheckError, NEEDS_ROOT } from '../../shared/errors.js';
import { processAlive } from '../../shared/process.js';

export const CGROUP_PREFIX = 'kmesh-check-';

/** Mount point of the cgroup2 hierarchy, from /proc/self/mountinfo. */
export function findCgroup2Mount(mountinfo = '/proc/self/mountinfo'): string {
  let text: string;
  try {
    text = readFileSync(mountinfo, 'utf8');
  } catch (e) {
    throw new KmeshCheckError('environment', `cannot read ${mountinfo} (${(e as Error).message}): is /proc mounted?`);
  }
  for (const line of text.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    if (post.split(' ')[0] === 'cgroup2') {
      const mountPoint = pre.split(' ')[4];
      if (mountPoint) return mountPoint.replace(/\\040/g, ' ');
    }
  }
  throw new KmeshCheckError('environment', 'no cgroup2 mount found in /proc/self/mountinfo: mount one, e.g. mount -t cgroup2 none /sys/fs/cgroup/unified');
}

/** Moves every process of `dir` back to `root`, then removes `dir`. */
export function removeCgroup(root: string, dir: string): void {
  if (!existsSync(dir)) return;
  try {
    const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    for (const p of procs) {
      try {
        writeFileSync(join(root, 'cgroup.procs'), p);
      } catch {
        // the process may have exited meanwhile
      }
    }
  } catch {
    // directory vanished meanwhile
  }
  try {
    rmdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new KmeshCheckError('environment', `cannot remove cgroup ${dir} (${code}): remove it by hand with rmdir`);
  }
}

/** The pid in a harness cgroup's name (`kmesh-check-<pid>`), or null. */
export function cgroupOwner(name: string): number | null {
  const m = /^kmesh-check-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Removes the empty harness cgroups whose pid is dead; returns the ones removed. One that still
 * holds a process is not stale whatever its name says, and stays.
 */
export function sweepStaleCgroups(root: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(CGROUP_PREFIX)) continue;
    const pid = cgroupOwner(name);
    if (pid !== null && pid > 0 && processAlive(pid)) continue;
    try {
      rmdirSync(join(root, name));
      removed.push(name);
    } catch {
      // populated (EBUSY), or gone meanwhile: not ours to remove
    }
  }
  return removed;
}

/** Creates `kmesh-check-<pid>` under the cgroup2 root and moves this process into it. */
export function createAndJoinCgroup(root: string, pid = process.pid, attempts = 3): string {
  const dir = join(root, `${CGROUP_PREFIX}${pid}`);
  try {
    mkdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new KmeshCheckError('privileges', `cannot create cgroup ${dir} (${code}): ${NEEDS_ROOT}`);
    if (code !== 'EEXIST') throw new KmeshCheckError('environment', `cannot create cgroup ${dir} (${code})`);
  }
  try {
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // A stale directory of a dead process with our (reused) pid, swept by another harness meanwhile.
    if (code === 'ENOENT' && attempts > 1) return createAndJoinCgroup(root, pid, attempts - 1);
    try {
      rmdirSync(dir);
    } catch {
      // best effort
    }
    throw new KmeshCheckError(code === 'EACCES' || code === 'EPERM' ? 'privileges' : 'environment', `cannot join cgroup ${dir} (${code}): ${NEEDS_ROOT}`);
  }
  return dir;
}
