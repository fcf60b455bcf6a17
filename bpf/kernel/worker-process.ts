// A harness worker seen from the parent: a Node process started under `unshare -n` (a private
// network namespace of its own, where only `lo` exists), spoken to in frames over stdin/stdout and
// answering requests in order. The routing executor and the acceleration executor each drive one.
// If the worker dies, waiting requests fail with its last words and its (now empty) cgroup is
// removed; a later start sweeps what is left.

import { spawn, type ChildProcess } from 'node:child_process';
import { KmeshCheckError, NEEDS_ROOT } from '../../shared/errors.js';
import { findCgroup2Mount, removeCgroup } from './cgroup.js';
import { growSendBuffer } from './libc.js';
import { FrameReader, STDIO_SEND_BUFFER, frame, type Response } from './protocol.js';

/** A response's result and, for a batch, its binary part. */
export interface Answer {
  readonly result: unknown;
  readonly bin?: Uint8Array;
}

/**
 * The line of a dead worker's stderr that says what happened: the last error line of a Node.js
 * crash ("KmeshCheckError: ...", "TypeError: ..."), not the "Node.js v20..." line it ends with;
 * else the last line.
 */
export function crashLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Node\.js v\d/.test(l));
  const errors = lines.filter((l) => /^(Uncaught )?[A-Za-z]*(Error|Exception)\b/.test(l));
  return errors.at(-1) ?? lines.at(-1) ?? '';
}

export class WorkerProcess<Req extends { readonly type: string }> {
  private readonly reader = new FrameReader();
  private waiting: Array<{ resolve: (r: Response) => void; reject: (e: Error) => void }> = [];
  private exited: Error | null = null;
  private closed = false;
  private stderr = '';
  /** The worker's cgroup once it has said which. */
  cgroup: string | null = null;

  private constructor(
    private readonly child: ChildProcess,
    /** What the worker is, for messages ("the kernel harness worker"). */
    private readonly what: string,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const msg of this.reader.push(chunk)) this.waiting.shift()?.resolve(msg as Response);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-8192);
    });
    child.on('exit', (code, signal) => {
      this.exited = this.deathError(signal ? `signal ${signal}` : `exit code ${code}`);
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

  /**
   * Starts `script` under `unshare -n`, in its own process group: Ctrl-C in a terminal reaches only
   * the parent, which finishes its report on the worker and then closes it; stdin closing ends the
   * worker too if the parent dies.
   */
  static async start<Req extends { readonly type: string }>(script: string, what: string, nodeArgs: readonly string[] = []): Promise<WorkerProcess<Req>> {
    const child = spawn('unshare', ['-n', process.execPath, ...nodeArgs, script], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const w = new WorkerProcess<Req>(child, what);
    // The socket under the child's stdin (no public API gives it; without it, only slower).
    const fd = (child.stdin as unknown as { _handle?: { fd?: unknown } } | null)?._handle?.fd;
    if (typeof fd === 'number' && fd >= 0) growSendBuffer(fd, STDIO_SEND_BUFFER);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => reject(new KmeshCheckError('environment', `cannot start unshare (${e.message}): install util-linux`)));
    });
    return w;
  }

  private deathError(why: string): KmeshCheckError {
    const last = crashLine(this.stderr);
    if (/unshare failed: Operation not permitted/.test(this.stderr)) return new KmeshCheckError('privileges', `unshare -n: EPERM: ${NEEDS_ROOT}`);
    return new KmeshCheckError('worker', `${this.what} stopped (${why})${last ? `: ${last}` : ''}`);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * Writes a request (with `bin` as its frame's binary part) at once; responses are matched
   * first-in first-out, so several can be in flight.
   */
  request(req: Req | { readonly type: 'close' }, bin?: Uint8Array): Promise<Answer> {
    if (this.exited) return Promise.reject(this.exited);
    if (this.closed && req.type !== 'close') return Promise.reject(new KmeshCheckError('worker', `${this.what} is closed`));
    return new Promise<Answer>((resolve, reject) => {
      this.waiting.push({ resolve: (resp) => (resp.ok ? resolve(resp) : reject(new KmeshCheckError(resp.error.code, resp.error.message))), reject });
      this.child.stdin!.write(frame(req, bin));
    });
  }

  /** Asks the worker to close, then waits for it to exit (killing it after 5 s). Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.exited) return;
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
