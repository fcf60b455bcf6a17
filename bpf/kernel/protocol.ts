// Parent <-> worker messages: two 4-byte little-endian lengths, then that many bytes of JSON and
// of binary (a batch's cases, see bpf/codec/case-wire.ts, and its observations, see
// bpf/runner/observations.ts; usually none). Requests may queue (answered in order); a batch of
// cases crosses the stdio sockets once each way.

import type { Family, Observation, Protocol, StartEnrolment, StreamView } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import type { ObjectPaths } from '../../model/executor.js';
import type { KmeshCheckErrorCode } from '../../shared/errors.js';

export interface ConnectCtx {
  readonly family: Family;
  readonly protocol: Protocol;
  /** The destination the program sees in user_ip4/user_ip6 and user_port. */
  readonly dest: { readonly addr: string; readonly port: number };
}

export type TestRunProgram = 'cgroup_connect4_prog' | 'cgroup_connect6_prog' | 'sockops_prog' | 'sendmsg_prog';

export interface TestRunResult {
  readonly retval: number;
  /** How the result was obtained: the BPF_PROG_TEST_RUN syscall, or a real socket operation. */
  readonly via: 'test-run' | 'socket';
  /** connect4/6 run for real: the peer the socket reached, or the errno name of the connect. */
  readonly ctxOut: { readonly peer: { addr: string; port: number } | null; readonly error: string | null };
}

export interface WorkerInfo {
  readonly pid: number;
  readonly cgroup: string;
  readonly progIds: readonly number[];
  readonly linkIds: readonly number[];
  /** The section 6 hooks attached (cgroup/sendmsg4, recvmsg4, recvmsg6 by role). */
  readonly dnsHooks: readonly string[];
  readonly mapIds: Readonly<Record<string, number>>;
  /** The maps outside the ABI put back before every case, with the capacity they were loaded with. */
  readonly resets: ReadonlyArray<{ readonly name: string; readonly maxEntries: number }>;
  readonly enrolment: StartEnrolment | 'unknown';
  readonly listeners: number;
  readonly swept: readonly string[];
  /** km_manage keys as hex (netns cookies and pod IPs). */
  readonly manage: readonly string[];
  /**
   * Cases the C shim ran whole (kf_run), and whether it may (KernelExecutorOptions.wholeCases);
   * how it makes map writes: 'program' (the map writer), 'off' (KernelExecutorOptions.mapWriter),
   * or why the writer is unavailable (they go by syscalls then).
   */
  readonly shim: { readonly wholeCases: boolean; readonly casesRunWhole: number; readonly mapWriter: string };
  /** Bounded waits for what loopback should already have delivered (stream bytes, DNS datagrams): none on the normal path. */
  readonly lateWaits: { readonly stream: number; readonly dns: number };
  /**
   * Milliseconds the worker spent parsing requests, handling them (of which `shim`: inside kf_run,
   * the whole cases' syscalls) and writing replies.
   */
  readonly timing: { readonly parse: number; readonly handle: number; readonly shim: number; readonly reply: number };
}

export interface BenchResult {
  readonly cases: number;
  readonly seconds: number;
}

export type Request =
  | { readonly type: 'init'; readonly objects: ObjectPaths; readonly environment: Environment; readonly wholeCases: boolean; readonly mapWriter: boolean }
  | { readonly type: 'load'; readonly objects: ObjectPaths }
  /** The batch's cases travel as the frame's binary part (bpf/codec/case-wire.ts). */
  | { readonly type: 'run'; readonly offset: number }
  | { readonly type: 'testRun'; readonly program: TestRunProgram; readonly ctx: ConnectCtx }
  | { readonly type: 'info' }
  | { readonly type: 'baseline'; readonly binary: string; readonly iterations: number }
  | { readonly type: 'close' };

export type Response =
  { readonly ok: true; readonly result: unknown; readonly bin?: Uint8Array } | { readonly ok: false; readonly error: { readonly code: KmeshCheckErrorCode; readonly message: string } };

export type RunResult = Observation[][];

/** A 'run' reply: its observations travel as the frame's binary part. */
export interface EncodedRunResult {
  readonly encoded: true;
  readonly streams: readonly StreamView[];
  /** The batch index of each case in the order the worker ran them (KernelCases.runCases). */
  readonly order: readonly number[];
}

/**
 * Bytes each side's end of the stdio sockets may hold unread. A batch's request (~180 bytes a case)
 * must fit whole, with the one before it queued: when it does not, its rest waits until the
 * parent's event loop runs again, which can be after the model work of the next batch, and the
 * worker sleeps meanwhile (the default ~200 KB did not hold two batches of 128 cases).
 */
export const STDIO_SEND_BUFFER = 4 << 20;

const HEAD = 8;

export function frame(message: unknown, bin?: Uint8Array): Buffer {
  const text = JSON.stringify(message);
  const n = Buffer.byteLength(text, 'utf8');
  const b = bin?.length ?? 0;
  const out = Buffer.allocUnsafe(HEAD + n + b);
  out.writeUInt32LE(n, 0);
  out.writeUInt32LE(b, 4);
  out.write(text, HEAD, 'utf8');
  if (bin) out.set(bin, HEAD + n);
  return out;
}

/**
 * Accumulates chunks and yields complete messages (each byte is copied once); a frame's binary
 * part becomes the message's `bin`.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: unknown[] = [];
    for (;;) {
      if (this.size < HEAD) break;
      if (this.chunks[0]!.length < HEAD) this.flatten();
      const n = this.chunks[0]!.readUInt32LE(0);
      const b = this.chunks[0]!.readUInt32LE(4);
      if (this.size < HEAD + n + b) break;
      this.flatten();
      const buf = this.chunks[0]!;
      const msg = JSON.parse(buf.toString('utf8', HEAD, HEAD + n)) as unknown;
      if (b > 0) (msg as { bin?: Uint8Array }).bin = buf.subarray(HEAD + n, HEAD + n + b);
      out.push(msg);
      const rest = buf.subarray(HEAD + n + b);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
    }
    return out;
  }

  private flatten(): void {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
  }
}
