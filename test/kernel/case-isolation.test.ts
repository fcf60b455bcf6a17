// A case sees nothing of the cases before it on the kernel, also through maps outside the ABI:
// the worker puts them back before every case (bpf/user/setup-ops.c kf_reset_maps), with the
// cases of test/support/isolation-cases.ts: an array, and the same map as a per-CPU array.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKernelExecutor } from '../../bpf/kernel/executor.js';
import { buildMutant } from '../../cli/mutants.js';
import { packageRoot } from '../../shared/package.js';
import type { ObjectPaths } from '../../model/executor.js';
import { replyAfterWrites } from '../support/isolation-cases.js';

/** dns-server-global with its node-wide entry in a per-CPU array (the worker runs on one CPU at a time), built in `dir`. */
function perCpuVariant(dir: string): ObjectPaths {
  const global = buildMutant('dns-server-global');
  cpSync(join(dirname(global.connect), 'src'), join(dir, 'src'), { recursive: true });
  const header = join(dir, 'src/dns_server.h');
  const text = readFileSync(header, 'utf8');
  expect(text).toContain('BPF_MAP_TYPE_ARRAY)');
  writeFileSync(header, text.replace('BPF_MAP_TYPE_ARRAY)', 'BPF_MAP_TYPE_PERCPU_ARRAY)'));
  const r = spawnSync('make', ['--no-print-directory', '-C', join(packageRoot(), 'bpf'), `SRC=${join(dir, 'src')}`, `OUT=${join(dir, 'out')}`], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return { connect: join(dir, 'out/cgroup_sock.o'), sockops: join(dir, 'out/sockops.o'), sendmsg: join(dir, 'out/sendmsg.o') };
}

describe('cases are isolated through maps outside the ABI', () => {
  it('on the kernel: arrays and per-CPU arrays', async () => {
    if (process.geteuid?.() !== 0) throw new Error('the kernel executor requires root: run this test as root or with sudo');
    expect(await replyAfterWrites(await createKernelExecutor({ objects: buildMutant('dns-server-global') }))).toBe('10.1.0.1');
    const dir = mkdtempSync(join(tmpdir(), 'kc-percpu-'));
    try {
      expect(await replyAfterWrites(await createKernelExecutor({ objects: perCpuVariant(dir) }))).toBe('10.1.0.1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
