// Finding a headless browser for tests of HTML output: Debian's chromium when installed; as root
// the test set-up installs it with apt-get when absent. Returns null (and the caller must say
// loudly that it skipped) when neither works.

import { spawnSync } from 'node:child_process';

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

export function findChromium(): { path: string | null; why: string } {
  const found = which('chromium') ?? which('chromium-browser');
  if (found) return { path: found, why: 'installed' };
  if (process.getuid?.() !== 0) return { path: null, why: 'chromium is not installed and the tests are not root, so cannot install it (apt-get install chromium)' };
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 300_000,
  });
  const after = which('chromium');
  return after ? { path: after, why: 'installed by the test set-up' } : { path: null, why: `apt-get install chromium failed: ${(r.stderr || r.stdout || '').trim().split('\n').pop() ?? ''}` };
}

/** Runs headless chromium on a local file with the given extra flags; returns stdout. */
export function headless(chromium: string, args: readonly string[], url: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage', ...args, url], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 << 20,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}
