// Whole cases in one shim call (kf_run, bpf/user/whole-run.c): a batch's simple cases (socket,
// connect, send, apply and close operations; no datagram operation of section 6) are written as one
// program of map writes, enrolment changes and socket operations and run inside C, which writes the same
// observation records the case runner would (bpf/runner/observations.ts); the bytes a send's peer
// received come back beside them and become stream views here (streams.ts), as in the runner.
// The runner checks every operation first, so a case here is one it would run without a codec error.

import type { Case, Family, MapState, Operation, SocketId } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import { monitoringOf, payloadFor, startEnrolment } from '../../model/domain.js';
import type { RoutingMapName } from '../codec/abi.js';
import { GrowingBytes } from '../codec/growing-bytes.js';
import { SOCKADDR_MAX, writeSockaddr } from '../codec/sockaddr.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { stateReachesControl, touchesControl, type CaseRunner } from '../runner/case-runner.js';
import type { ObsWriter } from '../runner/observations.js';
import { streamView } from '../runner/streams.js';
import { PROG, RUN_STATUS, resetError, type FastPath } from './fastpath.js';
import { CONTROL_SOCKADDR, controlError, controlPlan } from './enrolment.js';
import { AF_INET, AF_INET6, errnoName } from './libc.js';
import { MANAGE_KEY_SIZE, manageError, mapOpRecord, mapWriteError } from './map-writes.js';
import { STREAM_WAIT_MS, TCP_SNDTIMEO_US, socketType, type KernelSock, type KernelSockets } from './sockets.js';

/** Messages a case may send in all and still run whole (a bound on the program's payload bytes). */
const MAX_CASE_MESSAGES = 1024;
/** Program size at which the pending cases run (bounds the latency of a batch's first case). */
export const PROGRAM_FLUSH_BYTES = 256 * 1024;

/** A growing little-endian byte buffer for kf_run programs. */
class ProgramBuffer extends GrowingBytes {
  // Open to WholeCases, which rewinds a case that cannot run whole and copies a partial one out.
  declare buf: Uint8Array;
  declare at: number;

  constructor() {
    super(PROGRAM_FLUSH_BYTES + 64 * 1024);
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
  private readonly status = new Int32Array(RUN_STATUS.words);
  private streams = new Uint8Array(4096);
  /** Payloads by `sock/seq` (payloadFor, encoded once). */
  private readonly payloads = new Map<string, Uint8Array>();
  private readonly addr = new Uint8Array(SOCKADDR_MAX);
  /** The enrolment a case of the program switches to, by its index in the program (unset: none). */
  private enrols: boolean[] = [];
  /** Index of the case a failed run stopped in, or -1. */
  failedCase = -1;
  /** Cases run whole so far, for tests and diagnosis. */
  casesRun = 0;
  /** Milliseconds spent inside kf_run (its syscalls and the C around them), for the bench. */
  shimMs = 0;

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

  /** Whether case `c` is simple enough to run whole (the runner would run it without a codec error). */
  private simple(c: Case): boolean {
    // Once the runner's first enrolment change has checked the environment, enrolment changes
    // (from a known state or not) may run inside kf_run too: the same km_manage writes and
    // control connects.
    if (this.runner.enrolment !== startEnrolment(c) && !this.runner.enrolmentChecked) return false;
    if (c.ops.length > 64) return false;
    const open = this.ids;
    open.clear();
    let created = 0;
    let messages = 0;
    for (const op of c.ops) {
      if (op.op === 'socket') {
        // A bound socket (DNS cases only) goes through the runner's bind.
        if (open.has(op.sock) || ++created > 32 || op.bindTo !== undefined) return false;
        if ((op.family !== 'inet' && op.family !== 'inet6') || (op.protocol !== 'tcp' && op.protocol !== 'udp')) return false;
        open.set(op.sock, op.family);
      } else if (op.op === 'connect') {
        const family = open.get(op.sock);
        if (family === undefined) return false;
        if (!Number.isInteger(op.dest.port) || op.dest.port < 0 || op.dest.port > 0xffff) return false;
        // A destination the socket's family cannot take: the runner throws its codec error.
        try {
          writeSockaddr(this.addr, family, op.dest);
        } catch {
          return false;
        }
      } else if (op.op === 'close') {
        if (!open.delete(op.sock)) return false;
      } else if (op.op === 'send') {
        if (!open.has(op.sock) || !Number.isInteger(op.messages) || op.messages < 0) return false;
        if ((messages += op.messages) > MAX_CASE_MESSAGES) return false;
      } else if (op.op !== 'apply') {
        return false;
      }
    }
    return true;
  }

  /**
   * Appends case `index` to the program if it is simple. Its map diff is computed now (the
   * tracker is pure bookkeeping); the writes happen in order inside kf_run.
   */
  add(c: Case, index: number): boolean {
    if (!this.simple(c)) return false;
    // enable_monitoring is one for a whole program: the cases before run first.
    const monitoring = monitoringOf(c);
    if (this.runner.monitoring !== monitoring) {
      this.run();
      this.runner.setMonitoring(monitoring);
    }
    // New ports listen in the runner's order: once the cases before have run (a listener must not
    // answer their connects) and this case's map writes and enrolment have (a sockops program sees
    // the listen, BPF_SOCK_OPS_TCP_LISTEN_CB, with this case's maps), before its operations.
    const fresh = !this.layer.listeners.ready(c);
    if (fresh) this.run();
    const p = this.p;
    const start = p.at;
    if (this.first < 0) this.first = index;
    this.cases.push({ index, maps: [] });
    try {
      this.mapDiff(PROG.mapOps, c.state);
    } catch (e) {
      // The cases before this one run first; then what came before the bad entry is written,
      // as the runner does (whose write errors the codec error hides).
      const partial = p.buf.slice(start + 5, p.at);
      const count = this.mapCount;
      this.cases.pop();
      p.at = start;
      this.run();
      this.layer.maps.writeRecords(partial, count);
      throw e;
    }
    const enrolment = startEnrolment(c);
    if (this.runner.enrolment !== enrolment) {
      // The runner's order: map writes, then enrolment (KernelSockets.setEnrolment: km_manage
      // written, or emptied when leaving a written enrolment, then the control connects), then the operations.
      const plan = this.layer.takeEnrolmentPlan(enrolment);
      if (plan.manage) this.manage(plan.manage);
      if (plan.controlConnects) this.enrol(c.enrolled);
      // Bookkeeping like the tracker's: a failed run leaves it 'unknown' (CaseRunner.recover).
      this.runner.enrolment = enrolment;
    }
    if (fresh) {
      // The set-up alone (no observation), then the listeners; the operations go on in a new
      // program, whose map writes (applies) the case counts from 0 again.
      this.execute();
      p.at = 0;
      this.cases.at(-1)!.maps = [];
      this.layer.listeners.listen(c);
      // The same case goes on: kf_run must not put the maps outside the ABI back again (what the
      // control connects and the listens wrote there stays, as on the runner's path).
      p.u8(PROG.continue);
    }
    const ids = this.ids;
    let control = stateReachesControl(c.state);
    for (let i = 0; i < c.ops.length; i++) {
      const op = c.ops[i]!;
      if (op.op === 'socket') {
        p.room(29);
        p.u8(PROG.socket);
        p.f64(op.sock);
        p.i32(op.family === 'inet' ? AF_INET : AF_INET6);
        p.i32(socketType(op.protocol));
        p.i32(op.protocol === 'tcp' ? TCP_SNDTIMEO_US : 0);
        p.i32(op.family === 'inet6' ? 1 : 0);
        this.payloadTable(c.ops, i, op.sock);
        ids.set(op.sock, op.family);
      } else if (op.op === 'connect') {
        p.room(41);
        p.u8(PROG.connect);
        p.f64(op.sock);
        const n = writeSockaddr(this.addr, ids.get(op.sock)!, op.dest);
        p.i32(n);
        p.bytes(this.addr.subarray(0, 28));
        // As the runner's: the next case enrols again.
        control ||= touchesControl(op.dest);
      } else if (op.op === 'send') {
        p.room(17);
        p.u8(PROG.send);
        p.f64(op.sock);
        p.i32(op.messages);
        p.i32(STREAM_WAIT_MS);
      } else if (op.op === 'apply') {
        control ||= stateReachesControl(op.state);
        try {
          this.mapDiff(PROG.apply, op.state);
        } catch {
          // A state the codec refuses: the cases before this one run, and this one runs operation
          // by operation from clean maps, failing where and as the runner fails.
          this.cases.pop();
          p.at = start;
          this.run();
          this.drop();
          this.runner.recover();
          // Its enrolment change (taken in the program dropped) is made again by the runner.
          this.layer.manageUnknown();
          return false;
        }
      } else if (op.op === 'close') {
        p.room(9);
        p.u8(PROG.close);
        p.f64(op.sock);
      }
    }
    p.room(1);
    p.u8(PROG.end);
    if (control) this.runner.enrolment = 'unknown';
    this.ops += c.ops.length;
    return true;
  }

  /** Enrolment by writes: km_manage emptied, then `entries` written (int32 fd, key size, count, then kf_map_ops records). */
  private manage(entries: ReadonlyArray<readonly [Uint8Array, Uint8Array]>): void {
    const p = this.p;
    const fd = this.layer.maps.fd('km_manage');
    p.room(13);
    p.u8(PROG.manage);
    p.i32(fd);
    p.i32(MANAGE_KEY_SIZE);
    p.i32(entries.length);
    for (const [k, v] of entries) {
      p.room(16 + k.length + v.length + 6);
      mapOpRecord(p, fd, k, v);
    }
  }

  /** The control connects that enrol the namespace (`enrolled`) or withdraw it. */
  private enrol(enrolled: boolean): void {
    const p = this.p;
    const plan = controlPlan(this.env, enrolled);
    p.room(5 + plan.length * (12 + 2 * CONTROL_SOCKADDR));
    p.u8(PROG.enrol);
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
    this.enrols[this.cases.length - 1] = enrolled;
  }

  /**
   * A map diff record (`code`: the case's state, or an apply operation's) that makes the maps hold
   * `state`: int32 count, then kf_map_ops records. The tracker's (codec's) errors are thrown on.
   */
  private mapDiff(code: number, state: MapState): void {
    const p = this.p;
    p.room(5);
    p.u8(code);
    const countAt = p.at;
    p.i32(0);
    this.runner.tracker.apply(state, this.change);
    p.setI32(countAt, this.mapCount);
    this.mapCount = 0;
  }

  /**
   * After the socket record of ops[i]: int32 byte count, then the payloads (int32 length, bytes) of
   * as many messages as the case's sends offer that socket before closing it. Message k is payload
   * k (payloadFor): the shim offers the next one each time the socket took the last.
   */
  private payloadTable(ops: readonly Operation[], i: number, sock: SocketId): void {
    const p = this.p;
    let messages = 0;
    for (let j = i + 1; j < ops.length; j++) {
      const op = ops[j]!;
      if (op.op === 'close' && op.sock === sock) break;
      if (op.op === 'send' && op.sock === sock) messages += op.messages;
    }
    const at = p.at;
    p.i32(0);
    for (let k = 0; k < messages; k++) {
      const key = `${sock}/${k}`;
      let payload = this.payloads.get(key);
      if (payload === undefined) {
        if (this.payloads.size >= 10_000) this.payloads.clear();
        payload = payloadFor(sock, k);
        this.payloads.set(key, payload);
      }
      p.room(4 + payload.length);
      p.i32(payload.length);
      p.bytes(payload);
    }
    p.setI32(at, p.at - at - 4);
  }

  private readonly change = (name: RoutingMapName, key: Uint8Array, value: Uint8Array | null): void => {
    this.p.room(16 + key.length + (value ? value.length : 0) + 6);
    mapOpRecord(this.p, this.layer.maps.fd(name), key, value);
    this.mapCount++;
    this.cases.at(-1)!.maps.push({ name, del: value === null });
  };

  /** Runs the program built so far (if any) and appends its observations to the sink. */
  run(): void {
    if (this.p.at === 0) return;
    this.execute();
    this.casesRun += this.cases.length;
    this.drop();
  }

  /** Runs the program built so far and appends its observations to the sink, or throws what stopped it. */
  private execute(): void {
    const p = this.p;
    // An operation writes at most 98 bytes and a case's end one; kf_run stops (a worker bug)
    // unless MAX_RECORD (128) bytes are left before each record.
    const cap = this.ops * 100 + this.cases.length + 256;
    if (this.out.length < cap) this.out = new Uint8Array(cap);
    const t = process.hrtime.bigint();
    const n = this.fast.run(p.buf, p.at, this.out, this.out.length, this.status);
    this.shimMs += Number(process.hrtime.bigint() - t) / 1e6;
    const st = this.status;
    const sink = this.sink();
    if (st[RUN_STATUS.streamBytes]! > 0) this.addStreams(sink, st[RUN_STATUS.streamBytes]!);
    sink.append(this.out.subarray(0, n));
    if (st[RUN_STATUS.code] !== RUN_STATUS.ok) {
      const info = this.cases[st[RUN_STATUS.caseIndex]!];
      this.failedCase = info ? info.index : this.first;
      const rc = st[RUN_STATUS.rc]!;
      const detail = st[RUN_STATUS.detail]!;
      switch (st[RUN_STATUS.code]) {
        case RUN_STATUS.map: {
          const m = info?.maps[detail];
          throw mapWriteError(m?.name, m?.del ?? false, rc);
        }
        case RUN_STATUS.socket:
          if (detail === 1) throw new KmeshCheckError('worker', `socket() failed (${errnoName(rc)})`);
          throw new KmeshCheckError('worker', `setting SO_SNDTIMEO on a TCP socket failed (${errnoName(rc)})`);
        case RUN_STATUS.storage:
          throw new KmeshCheckError('worker', `km_sockstorage lookup failed (${errnoName(rc)})`);
        case RUN_STATUS.reset:
          throw resetError(rc);
        case RUN_STATUS.manage:
          throw manageError(detail, rc);
        case RUN_STATUS.control: {
          const plan = controlPlan(this.env, this.enrols[st[RUN_STATUS.caseIndex]!] ?? false);
          const k = plan[detail >> 8];
          if (k) throw controlError(k, detail & 0xff, rc);
          throw new KmeshCheckError('worker', `the fast-path shim reported control connect ${detail >> 8}, which the program does not hold (a worker bug)`);
        }
        default:
          throw new KmeshCheckError('worker', `the fast-path shim stopped with status ${st[RUN_STATUS.code]} (a worker bug)`);
      }
    }
  }

  /**
   * The stream records of the run (whole-run.c): each send's received and expected bytes become
   * its stream view in the sink, and the send's record in the output gets that view's index.
   */
  private addStreams(sink: ObsWriter, len: number): void {
    if (this.streams.length < len) this.streams = new Uint8Array(Math.max(len, this.streams.length * 2));
    const b = this.streams;
    this.fast.streams(b, len);
    const view = new DataView(b.buffer, 0, len);
    const out = new DataView(this.out.buffer);
    for (let at = 0; at < len;) {
      const where = view.getInt32(at, true);
      const got = view.getInt32(at + 4, true);
      const received = b.subarray(at + 8, at + 8 + got);
      at += 8 + got;
      const want = view.getInt32(at, true);
      const expected = b.subarray(at + 4, at + 4 + want);
      at += 4 + want;
      out.setInt32(where, sink.streams.push(streamView(received, expected)) - 1, true);
    }
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
