// Whole cases in one shim call (kf_run): a batch's simple cases (only socket, connect and close,
// no control connect among the operations, every port already listening) are written as one
// program of map writes, enrolment changes and socket operations and run inside C, which writes the same
// observation records the case runner would (bpf/runner/observations.ts). The runner checks
// every operation first, so a case here is one it would run without a codec error.

import type { Case, Family, SocketId } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import { ControlPort } from '../../model/domain.js';
import type { RoutingMapName } from '../codec/abi.js';
import { SOCKADDR_MAX, writeSockaddr } from '../codec/sockaddr.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { CaseRunner } from '../runner/case-runner.js';
import type { ObsWriter } from '../runner/observations.js';
import type { FastPath } from './fastpath.js';
import { CONTROL_SOCKADDR, controlError, controlPlan } from './enrolment.js';
import { AF_INET, AF_INET6, errnoName } from './libc.js';
import { mapOpRecord, mapWriteError } from './map-writes.js';
import { TCP_SNDTIMEO_US, socketType, type KernelSock, type KernelSockets } from './sockets.js';

const P_MAPOPS = 1;
const P_SOCKET = 2;
const P_CONNECT = 3;
const P_CLOSE = 4;
const P_END = 5;
const P_ENROL = 6;
/** Program size at which the pending cases run (bounds the latency of a batch's first case). */
export const PROGRAM_FLUSH_BYTES = 256 * 1024;

/** A growing little-endian byte buffer for kf_run programs. */
class ProgramBuffer {
  buf = new Uint8Array(PROGRAM_FLUSH_BYTES + 64 * 1024);
  private view = new DataView(this.buf.buffer);
  at = 0;

  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.buf[this.at++] = v;
  }

  i32(v: number): void {
    this.view.setInt32(this.at, v, true);
    this.at += 4;
  }

  setI32(at: number, v: number): void {
    this.view.setInt32(at, v, true);
  }

  f64(v: number): void {
    this.view.setFloat64(this.at, v, true);
    this.at += 8;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length + 3);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  zeros(n: number): void {
    for (let i = 0; i < n; i++) this.buf[this.at++] = 0;
  }
}

export class WholeCases {
  private readonly p = new ProgramBuffer();
  private cases: Array<{ index: number; maps: Array<{ name: RoutingMapName; del: boolean }> }> = [];
  private first = -1;
  private ops = 0;
  private mapCount = 0;
  private readonly ids = new Map<SocketId, Family>();
  private out = new Uint8Array(64 * 1024);
  private readonly status = new Int32Array(4);
  private readonly addr = new Uint8Array(SOCKADDR_MAX);
  /**
   * Whether the runner has enrolled once: its first enrolment checks the environment's control
   * ports and locals, after which enrolment changes may run inside kf_run too.
   */
  private enrolChecked = false;
  /** The enrolment a case of the program switches to, by its index in the program (unset: none). */
  private enrols: boolean[] = [];
  /** Index of the case a failed run stopped in, or -1. */
  failedCase = -1;
  /** Cases run whole so far, for tests and diagnosis. */
  casesRun = 0;

  constructor(
    private readonly runner: CaseRunner<KernelSock>,
    private readonly layer: KernelSockets,
    private readonly fast: FastPath,
    private readonly sink: () => ObsWriter,
    private readonly env: Environment,
  ) {}

  /** Whether the program has grown to the size at which it should run. */
  get full(): boolean {
    return this.p.at > PROGRAM_FLUSH_BYTES;
  }

  /** Whether case `c` is simple enough to run whole, with nothing to do before it. */
  private simple(c: Case): boolean {
    if (this.runner.enrolment === true) this.enrolChecked = true;
    if ((this.runner.enrolment !== c.enrolled && (!this.enrolChecked || this.runner.enrolment === 'unknown')) || c.ops.length > 64) return false;
    const open = this.ids;
    open.clear();
    let created = 0;
    for (const op of c.ops) {
      if (op.op === 'socket') {
        if (open.has(op.sock) || ++created > 32) return false;
        if ((op.family !== 'inet' && op.family !== 'inet6') || (op.protocol !== 'tcp' && op.protocol !== 'udp')) return false;
        open.set(op.sock, op.family);
      } else if (op.op === 'connect') {
        const family = open.get(op.sock);
        if (family === undefined || op.dest.port === ControlPort.enrol || op.dest.port === ControlPort.withdraw) return false;
        if (!Number.isInteger(op.dest.port) || op.dest.port < 0 || op.dest.port > 0xffff) return false;
        // A destination the socket's family cannot take: the runner throws its codec error.
        try {
          writeSockaddr(this.addr, family, op.dest);
        } catch {
          return false;
        }
      } else if (op.op === 'close') {
        if (!open.delete(op.sock)) return false;
      } else {
        return false;
      }
    }
    return this.layer.listeners.ready(c);
  }

  /**
   * Appends case `index` to the program if it is simple. Its map diff is computed now (the
   * tracker is pure bookkeeping); the writes happen in order inside kf_run.
   */
  add(c: Case, index: number): boolean {
    if (!this.simple(c)) return false;
    const p = this.p;
    const start = p.at;
    if (this.first < 0) this.first = index;
    this.cases.push({ index, maps: [] });
    // The map diff: one P_MAPOPS record, its count patched in once known.
    p.room(5);
    p.u8(P_MAPOPS);
    const countAt = p.at;
    p.i32(0);
    try {
      this.runner.tracker.apply(c.state, this.change);
    } catch (e) {
      // The cases before this one run first; then what came before the bad entry is written,
      // as the runner does (whose write errors the codec error hides).
      const partial = p.buf.slice(countAt + 4, p.at);
      const count = this.mapCount;
      this.cases.pop();
      p.at = start;
      this.run();
      this.layer.maps.writeRecords(partial, count);
      throw e;
    }
    p.setI32(countAt, this.mapCount);
    this.mapCount = 0;
    if (this.runner.enrolment !== c.enrolled) {
      // The runner's order: map writes, then enrolment, then the operations.
      const plan = controlPlan(this.env, c.enrolled);
      p.room(5 + plan.length * (12 + 2 * CONTROL_SOCKADDR));
      p.u8(P_ENROL);
      p.i32(plan.length);
      for (const k of plan) {
        p.i32(k.domain);
        p.i32(k.bind.length);
        p.bytes(k.bind);
        p.zeros(CONTROL_SOCKADDR - k.bind.length);
        p.i32(k.dest.length);
        p.bytes(k.dest);
        p.zeros(CONTROL_SOCKADDR - k.dest.length);
      }
      // Bookkeeping like the tracker's: a failed run leaves it 'unknown' (CaseRunner.recover).
      this.runner.enrolment = c.enrolled;
      this.enrols[this.cases.length - 1] = c.enrolled;
    }
    const ids = this.ids;
    for (const op of c.ops) {
      if (op.op === 'socket') {
        p.room(25);
        p.u8(P_SOCKET);
        p.f64(op.sock);
        p.i32(op.family === 'inet' ? AF_INET : AF_INET6);
        p.i32(socketType(op.protocol));
        p.i32(op.protocol === 'tcp' ? TCP_SNDTIMEO_US : 0);
        p.i32(op.family === 'inet6' ? 1 : 0);
        ids.set(op.sock, op.family);
      } else if (op.op === 'connect') {
        p.room(41);
        p.u8(P_CONNECT);
        p.f64(op.sock);
        const n = writeSockaddr(this.addr, ids.get(op.sock)!, op.dest);
        p.i32(n);
        p.bytes(this.addr.subarray(0, 28));
      } else if (op.op === 'close') {
        p.room(9);
        p.u8(P_CLOSE);
        p.f64(op.sock);
      }
    }
    p.room(1);
    p.u8(P_END);
    this.ops += c.ops.length;
    return true;
  }

  private readonly change = (name: RoutingMapName, key: Uint8Array, value: Uint8Array | null): void => {
    this.p.room(16 + key.length + (value ? value.length : 0) + 6);
    mapOpRecord(this.p, this.layer.maps.fd(name), key, value);
    this.mapCount++;
    this.cases.at(-1)!.maps.push({ name, del: value === null });
  };

  /** Runs the program built so far (if any) and appends its observations to the sink. */
  run(): void {
    const p = this.p;
    if (p.at === 0) return;
    const cap = this.ops * 100 + this.cases.length + 64;
    if (this.out.length < cap) this.out = new Uint8Array(cap);
    const n = this.fast.run(p.buf, p.at, this.out, this.status);
    const st = this.status;
    this.sink().append(this.out.subarray(0, n));
    if (st[0] !== 0) {
      const info = this.cases[st[1]!];
      this.failedCase = info ? info.index : this.first;
      const rc = st[3]!;
      switch (st[0]) {
        case 1: {
          const m = info?.maps[st[2]!];
          throw mapWriteError(m?.name, m?.del ?? false, rc);
        }
        case 2:
          if (st[2] === 1) throw new KmeshCheckError('worker', `socket() failed (${errnoName(rc)})`);
          throw new KmeshCheckError('worker', `setting SO_SNDTIMEO on a TCP socket failed (${errnoName(rc)})`);
        case 3:
          throw new KmeshCheckError('worker', `km_sockstorage lookup failed (${errnoName(rc)})`);
        case 5: {
          const plan = controlPlan(this.env, this.enrols[st[1]!] ?? false);
          const k = plan[st[2]! >> 8];
          if (k) throw controlError(k, st[2]! & 0xff, rc);
          throw new KmeshCheckError('worker', `the fast-path shim reported control connect ${st[2]! >> 8}, which the program does not hold (a worker bug)`);
        }
        default:
          throw new KmeshCheckError('worker', `the fast-path shim stopped with status ${st[0]} (a worker bug)`);
      }
    }
    this.casesRun += this.cases.length;
    this.drop();
  }

  /** Forgets the program built so far. */
  drop(): void {
    this.p.at = 0;
    this.cases = [];
    this.enrols = [];
    this.first = -1;
    this.ops = 0;
    this.mapCount = 0;
  }
}
