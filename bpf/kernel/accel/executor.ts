// The acceleration executor (parent side): starts the acceleration worker under `unshare -n`,
// sends it cases and returns its observations. Requests are answered in order.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AccelCase, AccelObservation } from '../../../model/accel/domain.js';
import { KmeshCheckError, NEEDS_ROOT } from '../../../shared/errors.js';
import { findCgroup2Mount, removeCgroup } from '../cgroup.js';
import { packageRoot } from '../paths.js';
import { assertPrivileges } from '../privileges.js';
import { FrameReader, frame } from '../protocol.js';
import type { AccelObjectPaths } from './loader.js';
import type { AccelRequest, AccelResponse, AccelWorkerInfo } from './protocol.js';

export function defaultAccelObjects(root = packageRoot()): AccelObjectPaths {
  return { ops: join(root, 'build/bpf/ma_ops.o'), redirect: join(root, 'build/bpf/ma_redirect.o') };
}

function accelWorkerScript(root: string): string {
  const worker = join(root, 'dist/bpf/kernel/accel/worker.js');
  if (!existsSync(worker)) throw new KmeshCheckError('build', 'the compiled acceleration worker dist/bpf/kernel/accel/worker.js is missing: run npm run build:ts');
  for (const f of ['worker', 'driver', 'loader', 'sys']) {
    const src = join(root, `bpf/kernel/accel/${f}.ts`);
    const out = join(root, `dist/bpf/kernel/accel/${f}.js`);
    if (existsSync(src) && (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs)) {
      throw new KmeshCheckError('build', `dist/ is older than bpf/kernel/accel/${f}.ts: run npm run build:ts`);
    }
  }
  return worker;
}

export class AccelKernelExecutor {
  readonly name = 'kernel';
  private readonly reader = new FrameReader();
  private waiting: Array<{ resolve: (r: AccelResponse) => void; reject: (e: Error) => void }> = [];
  private exited: Error | null = null;
  private closed = false;
  private stderr = '';
  private cgroup: string | null = null;

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const msg of this.reader.push(chunk)) this.waiting.shift()?.resolve(msg as AccelResponse);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-8192);
    });
    child.on('exit', (code, signal) => {
      const last = this.stderr.trim().split('\n').filter(Boolean).at(-1) ?? '';
      this.exited = /unshare failed: Operation not permitted/.test(this.stderr)
        ? new KmeshCheckError('privileges', `unshare -n: EPERM: ${NEEDS_ROOT}`)
        : new KmeshCheckError('worker', `the acceleration worker stopped (${signal ? `signal ${signal}` : `exit code ${code}`})${last ? `: ${last}` : ''}`);
      for (const w of this.waiting.splice(0)) w.reject(this.exited);
      if (this.cgroup) {
        try {
          removeCgroup(findCgroup2Mount(), this.cgroup);
        } catch {
          // the next start sweeps it
        }
      }
    });
    child.stdin!.on('error', () => {
      // EPIPE after the worker died: reported through 'exit'
    });
  }

  static async start(objects: Partial<AccelObjectPaths> = {}): Promise<AccelKernelExecutor> {
    assertPrivileges();
    const root = packageRoot();
    const script = accelWorkerScript(root);
    const child = spawn('unshare', ['-n', process.execPath, script], { stdio: ['pipe', 'pipe', 'pipe'] });
    const ex = new AccelKernelExecutor(child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => reject(new KmeshCheckError('environment', `cannot start unshare (${e.message}): install util-linux`)));
    });
    try {
      const info = (await ex.request({ type: 'init', objects: { ...defaultAccelObjects(root), ...objects } })) as AccelWorkerInfo;
      ex.cgroup = info.cgroup;
    } catch (e) {
      await ex.close();
      throw e;
    }
    return ex;
  }

  private request(req: AccelRequest): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    if (this.closed && req.type !== 'close') return Promise.reject(new KmeshCheckError('worker', 'the acceleration executor is closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve: (r) => (r.ok ? resolve(r.result) : reject(new KmeshCheckError(r.error.code, r.error.message))), reject });
      this.child.stdin!.write(frame(req));
    });
  }

  async run(cases: readonly AccelCase[]): Promise<AccelObservation[]> {
    return (await this.request({ type: 'run', cases })) as AccelObservation[];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      await Promise.race([this.request({ type: 'close' }), exited]);
    } catch {
      // already gone
    }
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
