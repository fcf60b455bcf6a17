// The kernel executor (parent side): starts the harness worker as `unshare -n node worker.js`,
// sends it batches of cases and returns its observations. One worker per executor; requests are
// serialised. When the worker dies, its cgroup directory is removed here.

import type { Case, Observation } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT, type Environment } from '../../model/environment.js';
import type { Executor, ObjectPaths } from '../../model/executor.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { WorkerProcess, type Answer } from './worker-process.js';
import { encodeCases } from '../codec/case-wire.js';
import { defaultObjects, packageRoot, workerScript } from './paths.js';
import { assertPrivileges } from './privileges.js';
import { decodeObservations } from '../runner/observations.js';
import { type ConnectCtx, type EncodedRunResult, type Request, type TestRunProgram, type TestRunResult, type WorkerInfo } from './protocol.js';

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
  /**
   * Let the shim make a case's map writes through the map writer program, one program run per
   * batch (default true; bpf/user/map-writer.bpf.c). Off, they go by bpf() syscalls: the tests
   * compare the two.
   */
  readonly mapWriter?: boolean;
}

const DEFAULT_BATCH = 1000;

export class KernelExecutor implements Executor {
  readonly name = 'kernel';
  /** The section 6 hooks the worker attached. */
  dnsHooks: readonly string[] = [];

  private constructor(
    private readonly worker: WorkerProcess<Request>,
    readonly environment: Environment,
    private readonly requestSize: number,
  ) {}

  /** Starts a worker, builds its namespace and cgroup, loads and attaches the objects. */
  static async start(opts: KernelExecutorOptions = {}): Promise<KernelExecutor> {
    assertPrivileges();
    const root = packageRoot();
    const script = workerScript(root);
    const objects = { ...defaultObjects(root), ...opts.objects };
    const environment = opts.environment ?? DEFAULT_ENVIRONMENT;
    // KMESH_CHECK_WORKER_NODE_ARGS: extra node flags for the worker (e.g. --cpu-prof), for diagnosis.
    const nodeArgs = (process.env.KMESH_CHECK_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const ex = new KernelExecutor(await WorkerProcess.start<Request>(script, 'the kernel harness worker', nodeArgs), environment, opts.batchSize ?? DEFAULT_BATCH);
    try {
      const info = (await ex.request({ type: 'init', objects, environment, wholeCases: opts.wholeCases !== false, mapWriter: opts.mapWriter !== false })) as WorkerInfo;
      ex.worker.cgroup = info.cgroup;
      ex.dnsHooks = info.dnsHooks;
    } catch (e) {
      await ex.close();
      throw e;
    }
    return ex;
  }

  get pid(): number {
    return this.worker.pid;
  }

  private async request(req: Request): Promise<unknown> {
    return (await this.worker.request(req)).result;
  }

  async run(cases: readonly Case[]): Promise<Observation[][]> {
    // All batches go out at once: while the worker runs one, this process encodes the next and
    // decodes the last (two cores).
    const parts: Array<Promise<Observation[][]>> = [];
    for (let i = 0; i < cases.length; i += this.requestSize) {
      const part = this.worker.request({ type: 'run', offset: i }, encodeCases(cases.slice(i, i + this.requestSize))).then(decodeRun);
      part.catch(() => undefined); // handled below, after every batch is out
      parts.push(part);
      // Let the event loop move what was written into the pipe: packing every batch first
      // would leave the worker waiting once the pipe's first batches are done.
      if (i + this.requestSize < cases.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const settled = await Promise.allSettled(parts);
    const out: Observation[][] = [];
    for (const r of settled) {
      if (r.status === 'rejected') throw r.reason;
      for (const o of r.value) out.push(o);
    }
    return out;
  }

  /**
   * Other objects in place of the loaded ones, in the same worker, namespace and cgroup (fresh
   * maps and sockets): what a new executor on them would run, without starting another worker.
   */
  async load(objects: Partial<ObjectPaths>): Promise<void> {
    const info = (await this.request({ type: 'load', objects: { ...defaultObjects(packageRoot()), ...objects } })) as WorkerInfo;
    this.dnsHooks = info.dnsHooks;
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
    await this.worker.close();
  }
}

function decodeRun(r: Answer): Observation[][] {
  const res = r.result as EncodedRunResult;
  if (res?.encoded !== true) throw new KmeshCheckError('worker', 'the worker answered a batch without encoded observations: is dist/ from one build?');
  return inBatchOrder(decodeObservations(r.bin ?? new Uint8Array(0), res.streams), res.order);
}

/** Observations in the order the worker ran the cases, put back in batch order. */
export function inBatchOrder(ran: Observation[][], order: readonly number[]): Observation[][] {
  const bad = () => new KmeshCheckError('worker', `the worker answered ${ran.length} cases in an order that is not a permutation of them: is dist/ from one build?`);
  if (!Array.isArray(order) || order.length !== ran.length) throw bad();
  const out = new Array<Observation[]>(ran.length);
  for (let k = 0; k < ran.length; k++) {
    const i = order[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= ran.length || out[i] !== undefined) throw bad();
    out[i] = ran[k]!;
  }
  return out;
}

export function createKernelExecutor(opts: KernelExecutorOptions = {}): Promise<KernelExecutor> {
  return KernelExecutor.start(opts);
}
