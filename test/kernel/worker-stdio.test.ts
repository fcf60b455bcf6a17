// The harness worker's stdin holds a whole request at once: the parent writes a batch and goes on
// with its model work, and the worker must not wait for the parent's event loop to push the rest.
// A worker that reads nothing yet gets a request far larger than a Unix socket's default send
// buffer (~200 KB), and none of it stays queued in the parent.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { WorkerProcess } from '../../bpf/kernel/worker-process.js';

const dir = mkdtempSync(join(tmpdir(), 'kc-stdio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('worker stdio', () => {
  it('takes a 1 MiB request into the socket at once', async () => {
    // A worker that never reads its stdin (it only waits to be killed).
    const script = join(dir, 'idle.mjs');
    writeFileSync(script, 'setInterval(() => {}, 1000);\n');
    const w = await WorkerProcess.start<{ type: string; pad: string }>(script, 'an idle worker');
    const child = (w as unknown as { child: ChildProcess }).child;
    try {
      void w.request({ type: 'pad', pad: 'x'.repeat(1 << 20) }).catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      expect(child.stdin!.writableLength).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
