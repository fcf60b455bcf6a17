// Whether a process still exists, for the leftovers of crashed runs: a stale cgroup or build lock
// whose owner is gone may be removed.

/** True while `pid` exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
