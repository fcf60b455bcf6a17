// The kernel executor (parent side): starts the harness worker as `unshare -n node worker.js`,
// sends it batches of cases and returns its observations. One worker per executor; requests are
// serialised. When the worker dies, its cgroup directory is removed here.

import { spawn, type ChildProcess } from 'node:child_process';
import type { Case, Observation } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT, type Environment } from '../../model/environment.js';
import type { Executor, ObjectPaths } from '../../model/executor.js';
import { KmeshCheckError, NEEDS_ROOT } from '../../shared/errors.js';
import { findCgroup2Mount, removeCgroup } from './cgroup.js';
import { defaultObjects, packageRoot, workerScript } from './paths.js';
import { assertPrivileges } from './privileges.js';
import { decodeObservations } from '../runner/observations.js';
import { FrameReader, frame, packCases, type ConnectCtx, type EncodedRunResult, type Request, type Response, type TestRunProgram, type TestRunResult, type WorkerInfo } from './protocol.js';

export interface KernelExecutorOptions {
  /** Object paths; each defaults to ours in build/bpf. */
  readonly objects?: Partial<ObjectPaths>;
  readonly environment?: Environment;
  /** Cases per request to the worker (bounds message size). */
  readonly batchSize?: number;
  /**
   * Let the shim run simple cases whole (default true). Off, every case goes through the case
   * runner operation by operation: the tests compare the two.
   */
  readonly wholeCases?: boolean;
}

const DEFAULT_BATCH = 1000;

export class KernelExecutor implements Executor {
  readonly name = 'kernel';
  private readonly reader = new FrameReader();
  private waiting: Array<{ resolve: (r: Response) => void; reject: (e: Error) => void }> = [];
  private exited: Error | null = null;
  private closed = false;
  private stderr = '';
  private cgroup: string | null = null;

  private constructor(
    private readonly child: ChildProcess,
    readonly environment: Environment,
    private readonly batchSize: number,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const msg of this.reader.push(chunk)) this.waiting.shift()?.resolve(msg as Response);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-8192);
    });
    child.on('exit', (code, signal) => {
      const why = signal ? `signal ${signal}` : `exit code ${code}`;
      this.exited = this.workerError(why);
      for (const w of this.waiting.splice(0)) w.reject(this.exited);
      // A killed worker cannot remove its own cgroup; it is empty now.
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

  private workerError(why: string): KmeshCheckError {
    const last = this.stderr.trim().split('\n').filter(Boolean).at(-1) ?? '';
    if (/unshare failed: Operation not permitted/.test(this.stderr)) return new KmeshCheckError('privileges', `unshare -n: EPERM: ${NEEDS_ROOT}`);
    return new KmeshCheckError('worker', `the kernel harness worker stopped (${why})${last ? `: ${last}` : ''}`);
  }

  /** Starts a worker, builds its namespace and cgroup, loads and attaches the objects. */
  static async start(opts: KernelExecutorOptions = {}): Promise<KernelExecutor> {
    assertPrivileges();
    const root = packageRoot();
    const script = workerScript(root);
    const objects = { ...defaultObjects(root), ...opts.objects };
    const environment = opts.environment ?? DEFAULT_ENVIRONMENT;
    // KMESH_CHECK_WORKER_NODE_ARGS: extra node flags for the worker (e.g. --cpu-prof), for diagnosis.
    const nodeArgs = (process.env.KMESH_CHECK_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn('unshare', ['-n', process.execPath, ...nodeArgs, script], { stdio: ['pipe', 'pipe', 'pipe'] });
    const ex = new KernelExecutor(child, environment, opts.batchSize ?? DEFAULT_BATCH);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => reject(new KmeshCheckError('environment', `cannot start unshare (${e.message}): install util-linux`)));
    });
    try {
      const info = (await ex.request({ type: 'init', objects, environment, wholeCases: opts.wholeCases !== false })) as WorkerInfo;
      ex.cgroup = info.cgroup;
    } catch (e) {
      await ex.close();
      throw e;
    }
    return ex;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * Writes a request at once; the worker answers requests in order, so responses are matched
   * first-in first-out and several requests can be in flight.
   */
  private request(req: Request): Promise<unknown> {
    return this.requestFull(req).then((r) => r.result);
  }

  /** The whole response: its result and, for a batch, the encoded observations. */
  private requestFull(req: Request): Promise<{ result: unknown; bin?: Uint8Array }> {
    if (this.exited) return Promise.reject(this.exited);
    if (this.closed && req.type !== 'close') return Promise.reject(new KmeshCheckError('worker', 'the kernel executor is closed'));
    return new Promise<{ result: unknown; bin?: Uint8Array }>((resolve, reject) => {
      this.waiting.push({
        resolve: (resp) => (resp.ok ? resolve(resp) : reject(new KmeshCheckError(resp.error.code, resp.error.message))),
        reject,
      });
      this.child.stdin!.write(frame(req));
    });
  }

  async run(cases: readonly Case[]): Promise<Observation[][]> {
    // All batches go out at once: while the worker runs one, this process encodes the next and
    // decodes the last (two cores).
    const parts: Array<Promise<Observation[][]>> = [];
    for (let i = 0; i < cases.length; i += this.batchSize) {
      const part = this.requestFull({ type: 'run', batch: packCases(cases.slice(i, i + this.batchSize)), offset: i }).then(decodeRun);
      part.catch(() => undefined); // handled below, after every batch is out
      parts.push(part);
      // Let the event loop move what was written into the pipe: packing every batch first
      // would leave the worker waiting once the pipe's first batches are done.
      if (i + this.batchSize < cases.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const settled = await Promise.allSettled(parts);
    const out: Observation[][] = [];
    for (const r of settled) {
      if (r.status === 'rejected') throw r.reason;
      for (const o of r.value) out.push(o);
    }
    return out;
  }

  /** BPF_PROG_TEST_RUN-shaped: the syscall when the kernel supports it, a real connect otherwise. */
  async testRun(program: TestRunProgram, ctx: ConnectCtx): Promise<TestRunResult> {
    return (await this.request({ type: 'testRun', program, ctx })) as TestRunResult;
  }

  /** Ids of what the worker created (programs, links, maps), its cgroup and enrolment. */
  async info(): Promise<WorkerInfo> {
    return (await this.request({ type: 'info' })) as WorkerInfo;
  }

  /** Runs the C baseline inside the worker's namespace and cgroup, on the same maps. */
  async baseline(binary: string, iterations: number): Promise<{ iterations: number; seconds: number }> {
    return (await this.request({ type: 'baseline', binary, iterations })) as { iterations: number; seconds: number };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.exited) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      try {
        await Promise.race([this.request({ type: 'close' }), exited]);
      } catch {
        // the worker may already be gone
      }
      this.child.stdin!.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }
}

function decodeRun(r: { result: unknown; bin?: Uint8Array }): Observation[][] {
  const res = r.result as EncodedRunResult;
  if (res?.encoded !== true) throw new KmeshCheckError('worker', 'the worker answered a batch without encoded observations: is dist/ from one build?');
  return decodeObservations(r.bin ?? new Uint8Array(0), res.streams);
}

export function createKernelExecutor(opts: KernelExecutorOptions = {}): Promise<KernelExecutor> {
  return KernelExecutor.start(opts);
}
