// A VM executor's runs in a thread of their own, so that on a machine with a core to spare the
// main thread generates and judges the next batch while this one runs (as the kernel's harness
// worker does). The thread has its own VM on the same objects; every case starts from the
// executor's seed there as here, so its observations are the ones the executor's own VM gives.

import { Worker } from 'node:worker_threads';
import type { Case, Observation, StreamView } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import type { ObjectPaths } from '../../model/executor.js';
import { KmeshCheckError, isKmeshCheckError, type KmeshCheckErrorCode } from '../../shared/errors.js';
import { VmFault } from './program.js';
import type { LineInfo } from './btf.js';
import { compiledScript } from '../../shared/package.js';
import { encodeCases } from '../codec/case-wire.js';
import { decodeObservations } from '../runner/observations.js';
import type { CoverageCounts, Outcome, OutcomeOptions } from './executor.js';

/** Source folders the run thread is compiled from (a VM, the case runner, the codecs and the model's domain). */
const RUN_THREAD_SOURCES = ['bpf/vm', 'bpf/codec', 'bpf/runner', 'shared', 'model'];

export interface RunThreadData {
  readonly objects: ObjectPaths;
  readonly environment: Environment;
  readonly seed: number;
  readonly engine: 'jit' | 'interp';
}

export type RunThreadRequest =
  | { readonly type: 'run'; readonly id: number; readonly cases: Uint8Array }
  | { readonly type: 'sets'; readonly id: number; readonly cases: Uint8Array; readonly opts: OutcomeOptions }
  | { readonly type: 'coverage'; readonly id: number };

export type RunThreadReply =
  | { readonly type: 'ready'; readonly tid: number | null }
  | { readonly type: 'ran'; readonly id: number; readonly bytes: Uint8Array; readonly streams: StreamView[] }
  | { readonly type: 'sets'; readonly id: number; readonly sets: Array<Outcome[] | null> }
  | { readonly type: 'coverage'; readonly id: number; readonly counts: CoverageCounts }
  | { readonly type: 'error'; readonly id: number; readonly error: ThreadError };

/** An error of the thread, to be thrown again here as what it was (main.ts tells a VmFault apart). */
export type ThreadError =
  | { readonly kind: 'kmesh'; readonly code: KmeshCheckErrorCode; readonly message: string }
  | { readonly kind: 'fault'; readonly program: string; readonly pc: number; readonly func: string; readonly line: LineInfo | null; readonly insn: string; readonly reason: string }
  | { readonly kind: 'other'; readonly message: string; readonly stack?: string };

export function threadError(e: unknown): ThreadError {
  if (isKmeshCheckError(e)) return { kind: 'kmesh', code: e.code, message: e.message };
  if (e instanceof VmFault) return { kind: 'fault', program: e.program, pc: e.pc, func: e.func, line: e.line, insn: e.insn, reason: e.reason };
  const err = e as Error;
  return { kind: 'other', message: err?.message ?? String(e), ...(err?.stack ? { stack: err.stack } : {}) };
}

function rethrown(t: ThreadError): Error {
  if (t.kind === 'kmesh') return new KmeshCheckError(t.code, t.message);
  if (t.kind === 'fault') return new VmFault(t.program, t.pc, t.func, t.line, t.insn, t.reason);
  const e = new Error(`the VM run thread: ${t.message}`);
  if (t.stack) e.stack = t.stack;
  return e;
}

type Pending = { resolve: (r: RunThreadReply) => void; reject: (e: Error) => void };

export class RunThread {
  private next = 0;
  private readonly pending = new Map<number, Pending>();
  private failed: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    /** The thread's Linux thread id (for its CPU time in /proc), if known. */
    readonly tid: number | null,
  ) {
    worker.on('message', (m: RunThreadReply) => {
      if (m.type === 'ready') return;
      const p = this.pending.get(m.id);
      if (m.type === 'error') {
        const e = rethrown(m.error);
        if (!p) return this.fail(e);
        this.settled(m.id);
        return p.reject(e);
      }
      if (!p) return;
      this.settled(m.id);
      p.resolve(m);
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new KmeshCheckError('worker', `the VM run thread ended (exit code ${code})`)));
    worker.unref();
  }

  static start(data: RunThreadData): Promise<RunThread> {
    const worker = new Worker(compiledScript('bpf/vm/run-thread-worker.js', 'VM run thread', { sources: RUN_THREAD_SOURCES }), { workerData: data });
    return new Promise((resolve, reject) => {
      const early = (e: Error) => reject(e);
      worker.once('error', early);
      worker.once('message', (m: RunThreadReply) => {
        worker.off('error', early);
        if (m.type === 'ready') resolve(new RunThread(worker, m.tid));
        else {
          void worker.terminate();
          reject(m.type === 'error' ? rethrown(m.error) : new Error(`the VM run thread did not start: ${JSON.stringify(m)}`));
        }
      });
    });
  }

  /** An idle thread does not keep the process alive (an executor left unclosed must not hang it). */
  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private request(req: (id: number) => RunThreadRequest, transfer: ArrayBuffer[] = []): Promise<RunThreadReply> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(req(id), transfer);
    });
  }

  async run(cases: readonly Case[]): Promise<Observation[][]> {
    const bytes = encodeCases(cases);
    const r = await this.request((id) => ({ type: 'run', id, cases: bytes }), [bytes.buffer as ArrayBuffer]);
    if (r.type !== 'ran') throw new KmeshCheckError('worker', `the VM run thread answered a run with ${r.type}`);
    return decodeObservations(r.bytes, r.streams);
  }

  /** VmExecutor.outcomeSets of the cases on the thread's VM, after the runs asked for before. */
  async outcomeSets(cases: readonly Case[], opts: OutcomeOptions): Promise<Array<Outcome[] | null>> {
    const bytes = encodeCases(cases);
    const r = await this.request((id) => ({ type: 'sets', id, cases: bytes, opts }), [bytes.buffer as ArrayBuffer]);
    if (r.type !== 'sets') throw new KmeshCheckError('worker', `the VM run thread answered outcome sets with ${r.type}`);
    return r.sets;
  }

  /** The thread's coverage counts since the last call (its counts start over). */
  async takeCoverage(): Promise<CoverageCounts> {
    const r = await this.request((id) => ({ type: 'coverage', id }));
    if (r.type !== 'coverage') throw new KmeshCheckError('worker', `the VM run thread answered coverage with ${r.type}`);
    return r.counts;
  }

  async close(): Promise<void> {
    this.failed ??= new KmeshCheckError('unsupported', 'the VM run thread is closed');
    await this.worker.terminate();
  }
}
