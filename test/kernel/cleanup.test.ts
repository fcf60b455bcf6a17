// Nothing is left behind: after close, SIGINT, SIGTERM, SIGKILL of the worker and SIGKILL of the
// parent, the worker's cgroup directory, programs, links and maps are gone; a stale cgroup of a
// dead harness is swept at the next start, but never one that still holds a process (harnesses
// run side by side).

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KmeshCheckError } from '../../shared/errors.js';
import { cgroupOwner, findCgroup2Mount } from '../../bpf/kernel/cgroup.js';
import { libbpf } from '../../bpf/kernel/libbpf.js';
import { closeSync } from 'node:fs';
import { packageRoot } from '../../bpf/kernel/paths.js';
import type { WorkerInfo } from '../../bpf/kernel/protocol.js';
import { be, connectCase, ep, fe, startKernel, state, svc } from '../helpers/kernel.js';
import { buildMutant } from '../../cli/mutants.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A harness cgroup directory named after a pid no process has. */
function staleCgroup(): { root: string; dead: number; dir: string } {
  const root = findCgroup2Mount();
  let dead = 4_000_000;
  while (alive(dead)) dead--;
  const dir = join(root, `kmesh-check-${dead}`);
  mkdirSync(dir, { recursive: true });
  return { root, dead, dir };
}

/** Ids of the worker's programs, links and maps that the kernel still knows. */
function survivors(info: WorkerInfo): string[] {
  const out: string[] = [];
  const probe = (kind: string, ids: readonly number[], get: (id: number) => number) => {
    for (const id of ids) {
      const fd = get(id);
      if (fd >= 0) {
        closeSync(fd);
        out.push(`${kind} ${id}`);
      }
    }
  };
  probe('prog', info.progIds, libbpf.progGetFdById);
  probe('link', info.linkIds, libbpf.linkGetFdById);
  return out;
}

/** Waits (objects are freed after an RCU grace period) until `left` gives nothing, else fails naming what is left. */
async function expectEmptied(left: () => string[], what: string): Promise<void> {
  let now = left();
  for (let i = 0; i < 100 && now.length > 0; i++) {
    await sleep(50);
    now = left();
  }
  expect(now, what).toEqual([]);
}

/** Waits until nothing of `info` is left: programs, links, cgroup, worker. */
const expectGone = (info: WorkerInfo) => expectEmptied(() => [...survivors(info), ...(existsSync(info.cgroup) ? [info.cgroup] : []), ...(alive(info.pid) ? [`pid ${info.pid}`] : [])], 'left behind');

/** Waits until none of the programs and links of `info` is left (the worker lives on). */
const expectReleased = (info: WorkerInfo) => expectEmptied(() => survivors(info), 'left attached');

async function startedWithTraffic() {
  const ex = await startKernel();
  await ex.run([connectCase(state({}), 'inet', { addr: '10.1.0.1', port: 80 }, { sends: 1 })]);
  const info = await ex.info();
  expect(info.progIds).toHaveLength(4);
  // connect4, connect6, sockops and the three DNS hooks of section 6.
  expect(info.linkIds).toHaveLength(6);
  expect(info.dnsHooks).toEqual(['sendmsg4', 'recvmsg4', 'recvmsg6']);
  expect(existsSync(info.cgroup)).toBe(true);
  expect(survivors(info)).toHaveLength(10);
  return { ex, info };
}

describe('other objects in a running worker (load)', () => {
  it('release the old programs and links, run as a new executor on them would, and a failed load leaves nothing attached', async () => {
    const st = state({ frontends: [fe('10.96.0.1', 1)], services: [svc(1, { ports: [[80, 8080]] })], endpoints: [ep(1, 0, 1, 7)], backends: [be(7, '127.0.0.1', [1])] });
    const c = connectCase(st, 'inet', { addr: '10.96.0.1', port: 80 }, { sends: 1 });
    const mutant = buildMutant('port-map-keeps-port');
    const fresh = await startKernel({ objects: mutant });
    const expected = await fresh.run([c]);
    await fresh.close();
    const ex = await startKernel();
    try {
      const ours = await ex.run([c]);
      expect(ours).not.toEqual(expected);
      const before = await ex.info();
      await ex.load(mutant);
      const after = await ex.info();
      expect([after.pid, after.cgroup, after.linkIds.length]).toEqual([before.pid, before.cgroup, before.linkIds.length]);
      await expectReleased(before);
      expect(await ex.run([c])).toEqual(expected);
      await expect(ex.load({ connect: '/nonexistent/cgroup_sock.o' })).rejects.toThrow(/does not exist/);
      await expectReleased(after);
      await ex.load({});
      expect(await ex.run([c])).toEqual(ours);
    } finally {
      await ex.close();
    }
  });
});

describe('clean-up', () => {
  it('close() releases everything, and a second close is harmless', async () => {
    const { ex, info } = await startedWithTraffic();
    await ex.close();
    await ex.close();
    await expectGone(info);
    await expect(ex.run([])).resolves.toEqual([]);
    await expect(ex.info()).rejects.toThrow(/closed|stopped/);
  });

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} to the worker: it cleans up and the executor reports the stop`, async () => {
      const { ex, info } = await startedWithTraffic();
      process.kill(info.pid, sig);
      await expectGone(info);
      await expect(ex.run([connectCase(state({}), 'inet', { addr: '10.1.0.1', port: 80 })])).rejects.toThrow(KmeshCheckError);
      await ex.close();
    });
  }

  it('SIGKILL of the worker: links die with it, the executor removes the cgroup', async () => {
    const { ex, info } = await startedWithTraffic();
    process.kill(info.pid, 'SIGKILL');
    await expectGone(info);
    await expect(ex.run([connectCase(state({}), 'inet', { addr: '10.1.0.1', port: 80 })])).rejects.toThrow(/worker stopped \(signal SIGKILL\)/);
    await ex.close();
  });

  it('SIGKILL of the parent: the worker sees stdin close and cleans up', async () => {
    const script = `
      const m = await import(${JSON.stringify(join(packageRoot(), 'dist/bpf/kernel/executor.js'))});
      const ex = await m.createKernelExecutor();
      console.log(JSON.stringify(await ex.info()));
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const info = await new Promise<WorkerInfo>((resolve, reject) => {
      let out = '';
      parent.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as WorkerInfo);
      });
      parent.on('exit', (code) => reject(new Error(`parent exited early (${code})`)));
    });
    expect(alive(info.pid)).toBe(true);
    parent.kill('SIGKILL');
    await expectGone(info);
  });

  it('a stale cgroup of a dead harness is swept at the next start', async () => {
    // Another harness starting meanwhile (a parallel test file, a check) may sweep it first: the
    // stale cgroup is gone either way, and ours must report the sweep in one of three tries.
    for (let attempt = 0; ; attempt++) {
      const { root, dead, dir: stale } = staleCgroup();
      const ex = await startKernel();
      try {
        const swept = (await ex.info()).swept.includes(`kmesh-check-${dead}`);
        expect(existsSync(stale)).toBe(false);
        // Only live harnesses' directories remain (other suites may be running).
        for (const name of readdirSync(root).filter((n) => n.startsWith('kmesh-check-'))) {
          expect(alive(cgroupOwner(name) ?? -1), name).toBe(true);
        }
        if (swept) return;
        expect(attempt, 'the stale cgroup was swept by another harness three times in a row').toBeLessThan(2);
      } finally {
        await ex.close();
      }
    }
  });

  it('a sweep leaves a cgroup that still holds a process, even of a dead pid', async () => {
    const { root, dead, dir: held } = staleCgroup();
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(join(held, 'cgroup.procs'), String(child.pid));
      const ex = await startKernel();
      try {
        const info = await ex.info();
        expect(info.swept).not.toContain(`kmesh-check-${dead}`);
        expect(readFileSync(join(held, 'cgroup.procs'), 'utf8').trim()).toBe(String(child.pid));
        expect(cgroupOwner(info.cgroup.split('/').at(-1)!)).toBe(info.pid);
      } finally {
        await ex.close();
      }
    } finally {
      writeFileSync(join(root, 'cgroup.procs'), String(child.pid));
      child.kill('SIGKILL');
      rmdirSync(held);
    }
  });
});
