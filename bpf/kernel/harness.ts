// The worker's hot loop: runs cases on real sockets against the attached data path and reads back
// what can be observed. Runs inside the private namespace and the harness cgroup. Every buffer
// handed to C is allocated once; a case costs its map diff, its syscalls and its observations.
// With the C shim (fastpath.ts) a map diff is one call and so is each socket operation; without
// it every syscall is its own koffi call. Observations leave as bytes (obscodec.ts).

import type { Backend, Case, Family, MapState, Operation, Service, SockAddr, SocketId, StreamView } from '../../model/domain.js';
import { CONTROL_ADDR, ControlPort, payloadFor } from '../../model/domain.js';
import { v4MappedInner } from '../../model/address.js';
import type { Environment } from '../../model/environment.js';
import { ROUTING_MAPS, STRUCTS, type MapName, type RoutingMapName } from '../codec/abi.js';
import { StateTracker, toHex } from '../codec/state.js';
import { parseTlv } from '../codec/tlv.js';
import { KmeshCheckError } from '../errors.js';
import { KF_ACCEPT, KF_DEFER, KF_INET6, KF_TCP, OUT, checkAbi, fastPath, type FastPath } from './fastpath.js';
import { libbpf } from './libbpf.js';
import { ObsWriter, decodeObservations } from './obscodec.js';
import {
  AF_INET,
  AF_INET6,
  E,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  POLLIN,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  SO_LINGER,
  SO_REUSEADDR,
  SO_SNDTIMEO,
  errno,
  errnoName,
  libc,
} from './libc.js';
import type { LoadedDataPath } from './loader.js';
import { SOCKADDR_MAX, readSockaddr, sockaddrKey, writeSockaddr } from './sockaddr.js';
import type { ConnectCtx, TestRunProgram, TestRunResult } from './protocol.js';
import { testRunSyscall } from './testrun.js';
import { KernelDns } from './dns.js';
import { storageView } from '../codec/structs.js';

interface SockRec {
  readonly id: SocketId;
  readonly fd: number;
  readonly family: Family;
  readonly protocol: 'tcp' | 'udp';
  /** Accepted server side of this connection, or -1. */
  server: number;
  /** Messages sent so far (the next payload's seq). */
  sent: number;
  expected: Buffer;
  received: Buffer;
}

const EMPTY = Buffer.alloc(0);
const LISTEN_BACKLOG = 4096;
const MAX_LISTENERS = 4000;
/** How long a send waits for its bytes to reach the listener (loopback delivers at once). */
const STREAM_WAIT_MS = 200;
/**
 * How long a TCP client's connect (and send) may block. A loopback handshake completes inside
 * connect(); only a connect the kernel leaves in SYN_SENT waits (an AF_INET6 socket whose earlier
 * v4-mapped connect was refused by RST: a native IPv6 connect then never completes, ~134 s to
 * ETIMEDOUT). With this timeout it returns EINPROGRESS instead (model/environment.ts, kernelConnect).
 */
const CONNECT_TIMEOUT_MS = 250;
/** Bytes of map writes queued for one kf_map_ops call (a record is at most ~200 bytes). */
const MAP_OPS_BYTES = 64 * 1024;

export class Harness {
  private readonly maps: ReadonlyMap<MapName, number>;
  private readonly closed: ReadonlySet<number>;
  private readonly tracker = new StateTracker();
  /** Whether the namespace is enrolled; 'unknown' after a case made its own control connects. */
  enrolment: boolean | 'unknown' = false;
  private readonly listeners = new Map<number, number>();
  private readonly pending = new Map<string, number>();
  private readonly socks = new Map<SocketId, SockRec>();
  /** Services, backends and op lists whose ports have listeners (forgotten when any is dropped). */
  private ensured = new WeakSet<object>();
  private drops = 0;

  // Buffers handed to C, allocated once.
  private readonly addr = new Uint8Array(SOCKADDR_MAX);
  private readonly peer = new Uint8Array(SOCKADDR_MAX);
  private readonly local = new Uint8Array(SOCKADDR_MAX);
  private readonly acceptAddr = new Uint8Array(SOCKADDR_MAX);
  private readonly len = new Uint32Array(1);
  private readonly fdKey = new Int32Array(1);
  private readonly fdKeyBytes = new Uint8Array(this.fdKey.buffer);
  private readonly storageValue = new Uint8Array(STRUCTS.sock_storage_data.size);
  private readonly tuple = new Uint8Array(STRUCTS.bpf_sock_tuple.size);
  private readonly nextTuple = new Uint8Array(STRUCTS.bpf_sock_tuple.size);
  private readonly prevTuple = new Uint8Array(STRUCTS.bpf_sock_tuple.size);
  private readonly recvBuf = new Uint8Array(64 * 1024);
  private readonly pollFd = new Uint8Array(8);
  private readonly one = new Int32Array([1]);
  private readonly zero = new Int32Array([0]);
  private readonly linger = new Int32Array([1, 0]);
  /** struct timeval {tv_sec, tv_usec} (two longs) for SO_SNDTIMEO. */
  private readonly connectTimeout = new Uint8Array(new BigInt64Array([0n, BigInt(CONNECT_TIMEOUT_MS * 1000)]).buffer);

  /** The C shim (one call per operation), or null: then every syscall is its own koffi call. */
  private readonly fast: FastPath | null;
  private readonly out: Uint8Array;
  private readonly outI32: Int32Array;
  private readonly outPeer: Uint8Array;
  private readonly outLocal: Uint8Array;
  private readonly outStorage: Uint8Array;
  private readonly err2 = new Int32Array(2);
  /** Map writes queued for the shim: records, their maps and kinds (for error messages). */
  private readonly ops = new Uint8Array(MAP_OPS_BYTES);
  private readonly opsI32 = new Int32Array(this.ops.buffer);
  private opsLen = 0;
  private readonly opsMaps: Array<{ name: RoutingMapName; del: boolean }> = [];
  private readonly opsRc = new Int32Array(1);
  /** Where observations go, as bytes the parent decodes (obscodec.ts). */
  private w = new ObsWriter();
  /** The shim program of simple cases not run yet (kf_run), and what error messages need. */
  private readonly prog: ProgramBuffer | null;
  private progCases: Array<{ index: number; maps: Array<{ name: RoutingMapName; del: boolean }> }> = [];
  private progFirst = -1;
  private progOps = 0;
  private progMapCount = 0;
  private failedCase = -1;
  private readonly progIds = new Map<SocketId, Family>();
  private progOut = new Uint8Array(64 * 1024);
  private readonly progStatus = new Int32Array(4);

  constructor(
    private readonly dp: LoadedDataPath,
    private readonly env: Environment,
  ) {
    this.maps = dp.maps;
    this.closed = new Set(env.closedPorts);
    const f = fastPath();
    if (f) checkAbi(f.init(this.mapFd('km_socket'), STRUCTS.bpf_sock_tuple.size, this.mapFd('km_sockstorage'), STRUCTS.sock_storage_data.size));
    this.fast = f;
    this.out = new Uint8Array(f ? f.outSize : 0);
    this.outI32 = new Int32Array(this.out.buffer);
    this.outPeer = this.out.subarray(OUT.peer, OUT.peer + SOCKADDR_MAX);
    this.outLocal = this.out.subarray(OUT.local, OUT.local + SOCKADDR_MAX);
    this.outStorage = this.out.subarray(OUT.storage, OUT.storage + STRUCTS.sock_storage_data.size);
    this.prog = f ? new ProgramBuffer() : null;
    this.dns = new KernelDns(env, (r) => {
      const raw = this.lookupStorage(r as SockRec);
      return raw ? storageView(raw, r.family) : null;
    });
  }

  /** UDP datagrams, the DNS stand-in and the section 6 operations (dns.ts). */
  private readonly dns: KernelDns;

  /** Cases the shim ran whole (kf_run), for tests and diagnosis. */
  casesRunWhole = 0;

  /** Whether the C shim runs the hot path. */
  get usesShim(): boolean {
    return this.fast !== null;
  }

  // ---- maps ------------------------------------------------------------------------------------

  private mapFd(name: MapName): number {
    const fd = this.maps.get(name);
    if (fd === undefined) throw new KmeshCheckError('worker', `map ${name} is not loaded`);
    return fd;
  }

  /** Makes the routing maps hold `next`, writing only what differs from what they hold. */
  applyState(next: MapState): void {
    if (!this.fast) {
      this.tracker.apply(next, this.writeChange);
      return;
    }
    try {
      this.tracker.apply(next, this.queueChange);
    } catch (e) {
      // What came before the bad entry is written, as on the plain path; then the first error.
      try {
        this.flushChanges();
      } catch {
        // reported through e
      }
      throw e;
    }
    this.flushChanges();
  }

  private readonly queueChange = (name: RoutingMapName, key: Uint8Array, value: Uint8Array | null): void => {
    const klen = key.length;
    const vlen = value ? value.length : 0;
    const size = 16 + ((klen + 3) & ~3) + ((vlen + 3) & ~3);
    if (this.opsLen + size > MAP_OPS_BYTES) this.flushChanges();
    const at = this.opsLen;
    const h = at >> 2;
    this.opsI32[h] = value ? 1 : 0;
    this.opsI32[h + 1] = this.mapFd(name);
    this.opsI32[h + 2] = klen;
    this.opsI32[h + 3] = vlen;
    this.ops.set(key, at + 16);
    if (value) this.ops.set(value, at + 16 + ((klen + 3) & ~3));
    this.opsLen = at + size;
    this.opsMaps.push({ name, del: value === null });
  };

  /** Writes the queued changes in one call; stops at the first failure, like writeChange. */
  private flushChanges(): void {
    const n = this.opsMaps.length;
    if (n === 0) return;
    const failed = this.fast!.mapOps(this.ops, n, this.opsRc);
    const names = this.opsMaps.splice(0);
    this.opsLen = 0;
    if (failed < 0) return;
    const { name, del } = names[failed]!;
    const rc = this.opsRc[0]!;
    if (del) throw new KmeshCheckError('worker', `deleting from ${name} failed (${errnoName(rc)})`);
    throw new KmeshCheckError('worker', `writing ${name} failed (${errnoName(rc)}): is the map full?`);
  }

  private readonly writeChange = (name: RoutingMapName, key: Uint8Array, value: Uint8Array | null): void => {
    const fd = this.mapFd(name);
    if (value === null) {
      const rc = libbpf.mapDelete(fd, key);
      if (rc < 0 && -rc !== E.ENOENT) throw new KmeshCheckError('worker', `deleting from ${name} failed (${errnoName(rc)})`);
      return;
    }
    const rc = libbpf.mapUpdate(fd, key, value, 0);
    if (rc < 0) throw new KmeshCheckError('worker', `writing ${name} failed (${errnoName(rc)}): is the map full?`);
  };

  /** Deletes every entry of the routing maps, whatever wrote it. */
  resetMaps(): void {
    for (const name of ROUTING_MAPS) {
      const fd = this.mapFd(name);
      const size = name === 'km_frontend' ? 16 : name === 'km_endpoint' ? 12 : 4;
      const key = new Uint8Array(size);
      while (libbpf.mapNextKey(fd, null, key) === 0) {
        if (libbpf.mapDelete(fd, key) < 0) break;
      }
    }
    this.tracker.reset();
  }

  /** km_manage keys (hex), for diagnostics and tests. */
  manageKeys(): string[] {
    const fd = this.mapFd('km_manage');
    const out: string[] = [];
    const key = new Uint8Array(16);
    const next = new Uint8Array(16);
    let rc = libbpf.mapNextKey(fd, null, next);
    while (rc === 0) {
      out.push(toHex(next));
      key.set(next);
      rc = libbpf.mapNextKey(fd, key, next);
    }
    return out;
  }

  // ---- listeners -------------------------------------------------------------------------------

  /** Opens a listener on `port` unless it has one; `keep` are ports the current case needs. */
  private ensureListener(port: number, keep?: ReadonlySet<number>): void {
    if (this.closed.has(port) || this.listeners.has(port)) return;
    if (this.listeners.size >= MAX_LISTENERS) this.dropListeners(keep);
    const fd = libc.socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new KmeshCheckError('worker', `listener socket failed (${errnoName(errno())})`);
    libc.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, this.zero, 4);
    libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, this.one, 4);
    // Accepted sockets inherit SO_LINGER {1,0}: closing them sends RST and leaves no TIME_WAIT.
    libc.setsockopt(fd, SOL_SOCKET, SO_LINGER, this.linger, 8);
    const n = writeSockaddr(this.addr, 'inet6', { addr: '::', port });
    if (libc.bind(fd, this.addr, n) < 0 || libc.listen(fd, LISTEN_BACKLOG) < 0) {
      const err = errnoName(errno());
      libc.close(fd);
      throw new KmeshCheckError('worker', `cannot listen on [::]:${port} (${err})`);
    }
    this.listeners.set(port, fd);
    this.fast?.setListener(port, fd);
  }

  private dropListeners(keep?: ReadonlySet<number>): void {
    // Oldest first (Map keeps insertion order); a later case reopens what it needs.
    this.drops++;
    this.ensured = new WeakSet<object>();
    let n = this.listeners.size - MAX_LISTENERS / 2;
    for (const [port, fd] of this.listeners) {
      if (n <= 0) break;
      if (keep?.has(port)) continue;
      n--;
      this.drainListener(fd);
      libc.close(fd);
      this.listeners.delete(port);
      this.fast?.setListener(port, -1);
    }
  }

  private portsOf(state: MapState, into: Set<number>): void {
    for (const s of state.services) {
      for (const p of s.servicePorts) into.add(p);
      for (const p of s.targetPorts) into.add(p);
      into.add(s.waypoint.port);
    }
    for (const b of state.backends) into.add(b.waypoint.port);
  }

  /**
   * Opens listeners on every port a case mentions. Entities and operation lists are shared
   * between the cases of a batch: each one is looked at once while its listeners stay open.
   */
  private openListeners(c: Case): void {
    const fresh = this.freshOf(c);
    if (fresh.length === 0) return;
    const ports = this.portsOfFresh(fresh);
    const dropsBefore = this.drops;
    for (const p of ports) this.ensureListener(p, ports);
    if (this.drops === dropsBefore) for (const x of fresh) this.ensured.add(x);
  }

  /** Whether openListeners(c) would open nothing; then it has done its bookkeeping. */
  private listenersReady(c: Case): boolean {
    const fresh = this.freshOf(c);
    if (fresh.length === 0) return true;
    for (const p of this.portsOfFresh(fresh)) if (!this.closed.has(p) && !this.listeners.has(p)) return false;
    for (const x of fresh) this.ensured.add(x);
    return true;
  }

  private freshOf(c: Case): Array<Service | Backend | readonly Operation[]> {
    const st = c.state;
    const fresh: Array<Service | Backend | readonly Operation[]> = [];
    for (const s of st.services) if (!this.ensured.has(s)) fresh.push(s);
    for (const b of st.backends) if (!this.ensured.has(b)) fresh.push(b);
    if (!this.ensured.has(c.ops)) fresh.push(c.ops);
    return fresh;
  }

  private portsOfFresh(fresh: ReadonlyArray<Service | Backend | readonly Operation[]>): Set<number> {
    const ports = new Set<number>();
    for (const x of fresh) {
      if (Array.isArray(x)) {
        for (const op of x as readonly Operation[]) {
          if (op.op === 'connect') ports.add(op.dest.port);
          else if (op.op === 'apply') this.portsOf(op.state, ports);
        }
      } else if ('servicePorts' in x) {
        for (const p of x.servicePorts) ports.add(p);
        for (const p of x.targetPorts) ports.add(p);
        ports.add(x.waypoint.port);
      } else {
        ports.add((x as Backend).waypoint.port);
      }
    }
    return ports;
  }

  /**
   * Accepts from a listener until the connection of `want` (a sockaddrKey) comes out or the queue
   * is empty; connections of other clients wait in `pending`. Returns the accepted fd or -1.
   */
  private acceptFrom(lfd: number, want: string | null): number {
    for (;;) {
      this.len[0] = SOCKADDR_MAX;
      const fd = libc.accept4(lfd, this.acceptAddr, this.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return -1;
      const key = sockaddrKey(this.acceptAddr);
      if (key === want) return fd;
      const old = this.pending.get(key);
      if (old !== undefined) libc.close(old);
      this.pending.set(key, fd);
    }
  }

  private drainListener(lfd: number): void {
    this.acceptFrom(lfd, null);
  }

  // ---- enrolment -------------------------------------------------------------------------------

  /**
   * Enrols (929) or withdraws (930) the namespace the real way: one TCP control connect bound to
   * each of the environment's enrolled locals (Environment.enrolledLocals), whose local IP sockops
   * records or removes. The model starts an enrolled case with the same km_manage keys.
   */
  setEnrolment(want: boolean): void {
    const port = want ? ControlPort.enrol : ControlPort.withdraw;
    for (const local of this.env.enrolledLocals) {
      const family: Family = local.includes(':') ? 'inet6' : 'inet';
      if (family === 'inet6' && v4MappedInner(local) !== null) {
        throw new KmeshCheckError('environment', `enrolledLocals holds the v4-mapped address ${local}: give its IPv4 text instead`);
      }
      const fd = libc.socket(family === 'inet' ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) throw new KmeshCheckError('worker', `control socket failed (${errnoName(errno())})`);
      const b = writeSockaddr(this.addr, family, { addr: local, port: 0 });
      if (libc.bind(fd, this.addr, b) < 0) {
        const err = errnoName(errno());
        libc.close(fd);
        throw new KmeshCheckError('environment', `cannot bind a control socket to ${local} (${err}): is it an address of the namespace?`);
      }
      const n = writeSockaddr(this.addr, family, { addr: CONTROL_ADDR[family], port });
      const rc = libc.connect(fd, this.addr, n);
      const err = rc < 0 ? errno() : 0;
      libc.close(fd);
      // No listener on the control ports: the SYN goes out (TCP_CONNECT_CB runs) and is refused.
      if (rc === 0 || err !== 111) {
        throw new KmeshCheckError('environment', `control connect from ${local} to ${CONTROL_ADDR[family]}:${port} ended with ${rc === 0 ? 'success' : errnoName(err)}, expected ECONNREFUSED: are the namespace routes in place?`);
      }
    }
    this.enrolment = want;
  }

  // ---- cases -----------------------------------------------------------------------------------

  /**
   * Runs cases in order; `offset` numbers them in error messages (their index in the whole run).
   * Returns their observations encoded (decodeObservations gives them back).
   */
  runCases(cases: readonly Case[], offset = 0): { bytes: Uint8Array; streams: StreamView[] } {
    let i = 0;
    try {
      for (; i < cases.length; i++) {
        // Simple cases go to the shim in runs (kf_run); the others, one by one, through runCase.
        if (this.prog && this.addToProgram(cases[i]!, i)) {
          if (this.prog.at > PROGRAM_FLUSH_BYTES) this.runProgram();
          continue;
        }
        this.runProgram();
        this.runCase(cases[i]!);
      }
      this.runProgram();
    } catch (e) {
      // A failure inside kf_run belongs to the case it happened in, an earlier one.
      const at = this.failedCase >= 0 ? this.failedCase : i;
      this.failedCase = -1;
      this.dropProgram();
      this.w.take();
      this.closeAll();
      this.enrolment = 'unknown';
      // A failed write may have left the maps between two states: start the next batch clean.
      try {
        this.resetMaps();
      } catch {
        // reported through the original error
      }
      if (e instanceof KmeshCheckError) throw new KmeshCheckError(e.code, `case ${offset + at}: ${e.message}`);
      throw e;
    }
    return this.w.take();
  }

  // ---- cases run by the shim in one call -------------------------------------------------------

  /**
   * Appends case `index` to the shim program if it is simple: only socket, connect and close,
   * no control connect, nothing to enrol, no listener to open. Its map diff is computed now
   * (the tracker is pure bookkeeping); the writes happen in order inside kf_run.
   */
  private addToProgram(c: Case, index: number): boolean {
    const p = this.prog!;
    if (this.enrolment !== c.enrolled || c.ops.length > 64) return false;
    const open = this.progIds;
    open.clear();
    let created = 0;
    for (const op of c.ops) {
      if (op.op === 'socket') {
        if (open.has(op.sock) || ++created > 32) return false;
        open.set(op.sock, op.family);
      } else if (op.op === 'connect') {
        const family = open.get(op.sock);
        if (family === undefined || op.dest.port === ControlPort.enrol || op.dest.port === ControlPort.withdraw) return false;
        // A destination the socket's family cannot take: the plain path throws its codec error.
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
    if (!this.listenersReady(c)) return false;
    const start = p.at;
    if (this.progFirst < 0) this.progFirst = index;
    this.progCases.push({ index, maps: [] });
    // The map diff: one P_MAPOPS record, its count patched in once known.
    p.room(5);
    p.u8(P_MAPOPS);
    const countAt = p.at;
    p.i32(0);
    try {
      this.tracker.apply(c.state, this.programChange);
    } catch (e) {
      // The cases before this one run first; then what came before the bad entry is written,
      // as on the plain path (whose write errors the codec error hides).
      const partial = p.buf.slice(countAt + 4, p.at);
      const count = this.progMapCount;
      this.progCases.pop();
      p.at = start;
      this.runProgram();
      if (count > 0) this.fast!.mapOps(partial, count, this.opsRc);
      throw e;
    }
    p.setI32(countAt, this.progMapCount);
    this.progMapCount = 0;
    const ids = this.progIds;
    for (const op of c.ops) {
      if (op.op === 'socket') {
        p.room(25);
        p.u8(P_SOCKET);
        p.f64(op.sock);
        p.i32(op.family === 'inet' ? AF_INET : AF_INET6);
        p.i32((op.protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC);
        p.i32(op.protocol === 'tcp' ? CONNECT_TIMEOUT_MS * 1000 : 0);
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
    this.progOps += c.ops.length;
    return true;
  }

  private readonly programChange = (name: RoutingMapName, key: Uint8Array, value: Uint8Array | null): void => {
    const p = this.prog!;
    const klen = key.length;
    const vlen = value ? value.length : 0;
    p.room(16 + klen + vlen + 6);
    p.i32(value ? 1 : 0);
    p.i32(this.mapFd(name));
    p.i32(klen);
    p.i32(vlen);
    p.bytes(key);
    p.zeros(((klen + 3) & ~3) - klen);
    if (value) {
      p.bytes(value);
      p.zeros(((vlen + 3) & ~3) - vlen);
    }
    this.progMapCount++;
    this.progCases.at(-1)!.maps.push({ name, del: value === null });
  };

  /** Runs the program built so far (if any) and appends its observations. */
  private runProgram(): void {
    const p = this.prog;
    if (!p || p.at === 0) return;
    const cap = this.progOps * 100 + this.progCases.length + 64;
    if (this.progOut.length < cap) this.progOut = new Uint8Array(cap);
    const n = this.fast!.run(p.buf, p.at, this.progOut, this.progStatus);
    const st = this.progStatus;
    if (st[0] !== 0) {
      const info = this.progCases[st[1]!];
      this.failedCase = info ? info.index : this.progFirst;
      this.w.append(this.progOut.subarray(0, n));
      const rc = st[3]!;
      switch (st[0]) {
        case 1: {
          const m = info?.maps[st[2]!];
          if (m?.del) throw new KmeshCheckError('worker', `deleting from ${m.name} failed (${errnoName(rc)})`);
          throw new KmeshCheckError('worker', `writing ${m?.name ?? 'a routing map'} failed (${errnoName(rc)}): is the map full?`);
        }
        case 2:
          if (st[2] === 1) throw new KmeshCheckError('worker', `socket() failed (${errnoName(rc)})`);
          throw new KmeshCheckError('worker', `setting SO_SNDTIMEO on a TCP socket failed (${errnoName(rc)})`);
        case 3:
          throw new KmeshCheckError('worker', `km_sockstorage lookup failed (${errnoName(rc)})`);
        default:
          throw new KmeshCheckError('worker', `the fast-path shim stopped with status ${st[0]} (a worker bug): run with KMESH_CHECK_NO_SHIM=1 to go around it`);
      }
    }
    this.w.append(this.progOut.subarray(0, n));
    this.casesRunWhole += this.progCases.length;
    this.dropProgram();
  }

  private dropProgram(): void {
    if (this.prog) this.prog.at = 0;
    this.progCases = [];
    this.progFirst = -1;
    this.progOps = 0;
    this.progMapCount = 0;
  }

  private runCase(c: Case): void {
    this.applyState(c.state);
    if (this.enrolment !== c.enrolled) this.setEnrolment(c.enrolled);
    this.openListeners(c);
    this.dns.prepare(c);
    for (const op of c.ops) this.runOp(op);
    this.closeAll();
    this.w.endCase();
  }

  private rec(id: SocketId, op: string): SockRec {
    const r = this.socks.get(id);
    if (!r) throw new KmeshCheckError('codec', `${op} on socket ${id}, which no earlier 'socket' operation created`);
    return r;
  }

  private runOp(op: Operation): void {
    switch (op.op) {
      case 'socket':
        return this.opSocket(op.sock, op.family, op.protocol);
      case 'connect':
        return this.opConnect(this.rec(op.sock, 'connect'), op.dest);
      case 'send':
        return this.opSend(this.rec(op.sock, 'send'), op.messages);
      case 'close': {
        const r = this.rec(op.sock, 'close');
        this.closeSock(r);
        this.socks.delete(op.sock);
        return this.w.close(op.sock);
      }
      case 'apply':
        this.applyState(op.state);
        this.openListeners({ state: op.state, kind: 'raw', enrolled: false, ops: [] });
        return this.w.apply();
      case 'sendto':
        return this.w.json(this.dns.sendto(this.rec(op.sock, 'sendto'), op));
      case 'recvfrom':
        return this.w.json(this.dns.recvfrom(this.rec(op.sock, 'recvfrom')));
      case 'deliver':
        return this.w.json(this.dns.deliver(this.rec(op.sock, 'deliver'), op));
      default:
        throw new KmeshCheckError('codec', `unknown operation ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }

  private opSocket(id: SocketId, family: Family, protocol: 'tcp' | 'udp'): void {
    if (this.socks.has(id)) throw new KmeshCheckError('codec', `socket ${id} is created twice in one case`);
    if (this.fast) return this.opSocketFast(this.fast, id, family, protocol);
    const fd = libc.socket(family === 'inet' ? AF_INET : AF_INET6, (protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new KmeshCheckError('worker', `socket() failed (${errnoName(errno())})`);
    if (protocol === 'tcp' && libc.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, this.connectTimeout, 16) < 0) {
      const err = errnoName(errno());
      libc.close(fd);
      throw new KmeshCheckError('worker', `setting SO_SNDTIMEO on a TCP socket failed (${err})`);
    }
    this.socks.set(id, { id, fd, family, protocol, server: -1, sent: 0, expected: EMPTY, received: EMPTY });
    this.w.socket(id);
  }

  private opSocketFast(f: FastPath, id: SocketId, family: Family, protocol: 'tcp' | 'udp'): void {
    const type = (protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC;
    const fd = f.socket(family === 'inet' ? AF_INET : AF_INET6, type, protocol === 'tcp' ? CONNECT_TIMEOUT_MS * 1000 : 0, this.err2);
    if (fd < 0) {
      const err = errnoName(this.err2[1]!);
      if (this.err2[0] === 1) throw new KmeshCheckError('worker', `socket() failed (${err})`);
      throw new KmeshCheckError('worker', `setting SO_SNDTIMEO on a TCP socket failed (${err})`);
    }
    this.socks.set(id, { id, fd, family, protocol, server: -1, sent: 0, expected: EMPTY, received: EMPTY });
    this.w.socket(id);
  }

  private opConnect(r: SockRec, dest: SockAddr): void {
    if (this.fast) return this.opConnectFast(this.fast, r, dest);
    const n = writeSockaddr(this.addr, r.family, dest);
    const rc = libc.connect(r.fd, this.addr, n);
    const error = rc < 0 ? errno() : -1;
    // A case's own control connect changes enrolment in ways we do not track: re-enrol next case.
    if (dest.port === ControlPort.enrol || dest.port === ControlPort.withdraw) this.enrolment = 'unknown';
    let peer: Uint8Array | null = null;
    let inSockhash = false;
    this.len[0] = SOCKADDR_MAX;
    const connected = libc.getpeername(r.fd, this.peer, this.len) === 0;
    if (connected) {
      if (rc === 0) peer = this.peer;
      if (r.protocol === 'tcp') {
        this.len[0] = SOCKADDR_MAX;
        libc.getsockname(r.fd, this.local, this.len);
        if (r.server < 0) this.matchServer(r);
        inSockhash = this.lookupSockhash(r.family);
      }
    }
    this.w.connect(r.id, error, peer, this.lookupStorage(r), r.family, inSockhash);
  }

  /**
   * The same syscalls as opConnect in one call (kf_connect), unless server sides of other
   * clients are pending: then the shim stops after getsockname and the match happens here.
   */
  private opConnectFast(f: FastPath, r: SockRec, dest: SockAddr): void {
    const n = writeSockaddr(this.addr, r.family, dest);
    const tcp = r.protocol === 'tcp';
    let flags = (tcp ? KF_TCP : 0) | (r.family === 'inet6' ? KF_INET6 : 0);
    if (tcp && r.server < 0) flags |= this.pending.size === 0 ? KF_ACCEPT : KF_DEFER;
    const o = this.outI32;
    f.connect(r.fd, this.addr, n, flags, this.out);
    const rc = o[OUT.rc >> 2]!;
    const error = rc < 0 ? o[OUT.err >> 2]! : -1;
    if (dest.port === ControlPort.enrol || dest.port === ControlPort.withdraw) this.enrolment = 'unknown';
    let peer: Uint8Array | null = null;
    let inSockhash = false;
    if (o[OUT.connected >> 2] === 1) {
      if (rc === 0) peer = this.outPeer;
      if (tcp) {
        if (r.server < 0) {
          // Connections of other clients accepted on the way wait in `pending`, as in acceptFrom.
          const others = o[OUT.others >> 2]!;
          for (let i = 0; i < others; i++) {
            const at = OUT.other + i * OUT.otherStride;
            const key = sockaddrKey(this.out.subarray(at + 4, at + 4 + SOCKADDR_MAX));
            const old = this.pending.get(key);
            if (old !== undefined) libc.close(old);
            this.pending.set(key, o[at >> 2]!);
          }
          const server = o[OUT.server >> 2]!;
          if (server === -2) r.server = this.acceptFrom(this.listeners.get(portOf(this.outPeer))!, sockaddrKey(this.outLocal));
          else if (o[OUT.deferred >> 2] === 1) this.matchServer(r, this.outPeer, this.outLocal);
          else r.server = server;
        }
        if (o[OUT.deferred >> 2] === 1) f.observe(r.fd, flags, this.out);
        inSockhash = o[OUT.inSockhash >> 2] === 1;
      }
    }
    this.w.connect(r.id, error, peer, this.storageFromOut(), r.family, inSockhash);
  }

  /** The raw sk_storage value kf_connect or kf_observe read, or null when there is none. */
  private storageFromOut(): Uint8Array | null {
    const rc = this.outI32[OUT.storageRc >> 2]!;
    if (rc < 0) {
      if (-rc === E.ENOENT) return null;
      throw new KmeshCheckError('worker', `km_sockstorage lookup failed (${errnoName(rc)})`);
    }
    return this.outStorage;
  }

  /** Finds the accepted server side of a just-connected client (its address is in `local`). */
  private matchServer(r: SockRec, peerAddr: Uint8Array = this.peer, localAddr: Uint8Array = this.local): void {
    const key = sockaddrKey(localAddr);
    const fd = this.pending.get(key);
    if (fd !== undefined) {
      this.pending.delete(key);
      r.server = fd;
      return;
    }
    const lfd = this.listeners.get(portOf(peerAddr));
    if (lfd !== undefined) r.server = this.acceptFrom(lfd, key);
  }

  private lookupSockhash(family: Family): boolean {
    const t = this.tuple;
    const l = this.local;
    const p = this.peer;
    t.fill(0);
    if (family === 'inet') {
      for (let i = 0; i < 4; i++) {
        t[i] = l[4 + i]!;
        t[4 + i] = p[4 + i]!;
      }
      t[8] = l[2]!;
      t[9] = l[3]!;
      t[10] = p[2]!;
      t[11] = p[3]!;
    } else {
      for (let i = 0; i < 16; i++) {
        t[i] = l[8 + i]!;
        t[16 + i] = p[8 + i]!;
      }
      t[32] = l[2]!;
      t[33] = l[3]!;
      t[34] = p[2]!;
      t[35] = p[3]!;
    }
    // A sockhash lookup from userspace answers ENOSPC for any key when the value is not a u64
    // (the kernel checks value_size first), so walk the keys: the map holds only live sockets.
    const fd = this.mapFd('km_socket');
    let rc = libbpf.mapNextKey(fd, null, this.nextTuple);
    while (rc === 0) {
      if (sameBytes(this.nextTuple, t)) return true;
      this.prevTuple.set(this.nextTuple);
      rc = libbpf.mapNextKey(fd, this.prevTuple, this.nextTuple);
    }
    return false;
  }

  /** The socket's raw sock_storage_data, or null when it has none. */
  private lookupStorage(r: SockRec): Uint8Array | null {
    if (this.fast) {
      // kf_observe without the TCP flag: only the sk_storage lookup.
      this.fast.observe(r.fd, 0, this.out);
      return this.storageFromOut();
    }
    this.fdKey[0] = r.fd;
    const rc = libbpf.mapLookup(this.mapFd('km_sockstorage'), this.fdKeyBytes, this.storageValue);
    if (rc < 0) {
      if (-rc === E.ENOENT) return null;
      throw new KmeshCheckError('worker', `km_sockstorage lookup failed (${errnoName(rc)})`);
    }
    return this.storageValue;
  }

  private opSend(r: SockRec, messages: number): void {
    const parts: Buffer[] = [r.expected];
    // A TCP socket without a connection (never connected, or left in SYN_SENT) cannot deliver:
    // do not wait for SO_SNDTIMEO on each message.
    const flags = MSG_NOSIGNAL | (r.protocol === 'tcp' && r.server < 0 ? MSG_DONTWAIT : 0);
    for (let i = 0; i < messages; i++) {
      const payload = payloadFor(r.id, r.sent);
      // Only a message the socket took is one the peer should see (and numbers the next one).
      const n = libc.send(r.fd, payload, payload.length, flags);
      if (n <= 0) continue;
      // A connected UDP socket's datagram: the DNS stand-in at its peer answers it.
      if (r.protocol === 'udp') this.dns.pump();
      r.sent++;
      parts.push(Buffer.from(payload.subarray(0, n)));
    }
    r.expected = Buffer.concat(parts);
    const stream = r.protocol === 'tcp' && r.server >= 0 ? this.readStream(r) : null;
    this.w.send(r.id, stream, this.lookupStorage(r), r.family);
  }

  private recvAll(r: SockRec): void {
    for (;;) {
      const n = libc.recv(r.server, this.recvBuf, this.recvBuf.length, MSG_DONTWAIT);
      if (n <= 0) return;
      r.received = Buffer.concat([r.received, Buffer.from(this.recvBuf.subarray(0, n))]);
    }
  }

  /** Bytes a complete stream must hold: the payload, plus a prefix when one has started. */
  private wanted(r: SockRec): number {
    const b = r.received;
    if (b.length >= 5 && b[0] === 0x01 && b[1] === 0 && b[2] === 0 && b[3] === 0) {
      if (b[4] === 6) return r.expected.length + 16;
      if (b[4] === 18) return r.expected.length + 28;
    }
    return r.expected.length;
  }

  private readStream(r: SockRec): StreamView {
    this.recvAll(r);
    const deadline = Date.now() + STREAM_WAIT_MS;
    while (r.received.length < this.wanted(r)) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      this.pollFd.fill(0);
      new DataView(this.pollFd.buffer).setInt32(0, r.server, true);
      new DataView(this.pollFd.buffer).setInt16(4, POLLIN, true);
      libc.poll(this.pollFd, 1, Math.min(left, 20));
      this.recvAll(r);
    }
    const got = r.received;
    const parsed = parseTlv(got);
    const rest = parsed ? got.subarray(parsed.size) : got;
    return { tlv: parsed ? parsed.tlv : null, payloadIntact: rest.equals(r.expected), hex: toHex(got) };
  }

  private closeSock(r: SockRec): void {
    // Server first: its RST (inherited SO_LINGER {1,0}) closes the client, so neither side
    // keeps TIME_WAIT and ephemeral ports do not run out.
    if (this.fast) {
      this.fast.close(r.server, r.fd, r.protocol === 'tcp' ? 1 : 0);
      r.server = -1;
      return;
    }
    if (r.server >= 0) libc.close(r.server);
    else if (r.protocol === 'tcp') libc.setsockopt(r.fd, SOL_SOCKET, SO_LINGER, this.linger, 8);
    r.server = -1;
    libc.close(r.fd);
  }

  private closeAll(): void {
    for (const r of this.socks.values()) this.closeSock(r);
    this.socks.clear();
    for (const fd of this.pending.values()) libc.close(fd);
    this.pending.clear();
  }

  // ---- test-run --------------------------------------------------------------------------------

  /**
   * BPF_PROG_TEST_RUN first; on ENOTSUPP (cgroup_sock_addr on 6.18) connect4/6 run for real:
   * a socket of the context's family and protocol connects to its destination, and ctxOut
   * carries the peer it reached. A program verdict of 0 would make the connect fail with EPERM.
   */
  testRun(program: TestRunProgram, ctx: ConnectCtx): TestRunResult {
    const role = program === 'cgroup_connect4_prog' ? 'connect4' : program === 'cgroup_connect6_prog' ? 'connect6' : program === 'sockops_prog' ? 'sockops' : 'sendmsg';
    const tried = testRunSyscall(this.dp.progs[role], role, ctx);
    if (tried.ok) return { retval: tried.retval, via: 'test-run', ctxOut: { peer: tried.peer, error: null } };
    if (tried.errno !== E.ENOTSUPP && tried.errno !== E.EOPNOTSUPP && tried.errno !== E.EINVAL) {
      throw new KmeshCheckError('worker', `BPF_PROG_TEST_RUN of ${program} failed (${errnoName(tried.errno)})`);
    }
    if (role !== 'connect4' && role !== 'connect6') {
      throw new KmeshCheckError('unsupported', `${program} cannot run standalone on this kernel (BPF_PROG_TEST_RUN: ${errnoName(tried.errno)}): run it through a case (connect, send)`);
    }
    if ((role === 'connect4') !== (ctx.family === 'inet')) {
      throw new KmeshCheckError('codec', `${program} runs on ${role === 'connect4' ? 'AF_INET' : 'AF_INET6'} sockets; the context says ${ctx.family}`);
    }
    this.ensureListener(ctx.dest.port);
    const id = -1;
    // Observations of its own: decoded here the way the parent decodes a case's.
    const caseWriter = this.w;
    this.w = new ObsWriter();
    let o;
    try {
      this.opSocket(id, ctx.family, ctx.protocol);
      this.opConnect(this.socks.get(id)!, ctx.dest);
      this.w.endCase();
      const { bytes, streams } = this.w.take();
      o = decodeObservations(bytes, streams)[0]![1]!;
    } finally {
      this.w = caseWriter;
      this.closeAll();
    }
    const error = o.error ?? null;
    return { retval: error === 'EPERM' ? 0 : 1, via: 'socket', ctxOut: { peer: o.peer ?? null, error } };
  }

  /** Checks that sockets get the pod address as their local IP (the design's premise). */
  checkLocalAddresses(samples: ReadonlyArray<{ family: Family; dest: string; local: string }>): void {
    for (const s of samples) {
      const fd = libc.socket(s.family === 'inet' ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      const n = writeSockaddr(this.addr, s.family, { addr: s.dest, port: 9 });
      const rc = libc.connect(fd, this.addr, n);
      this.len[0] = SOCKADDR_MAX;
      libc.getsockname(fd, this.local, this.len);
      libc.close(fd);
      const got = readSockaddr(this.local).addr;
      if (rc < 0 || got !== s.local) {
        throw new KmeshCheckError('environment', `a socket to ${s.dest} gets local address ${rc < 0 ? errnoName(errno()) : got}, expected ${s.local}: the namespace routes are not as designed`);
      }
    }
  }

  close(): void {
    this.closeAll();
    this.dns.close();
    for (const [port, fd] of this.listeners) {
      libc.close(fd);
      this.fast?.setListener(port, -1);
    }
    this.listeners.clear();
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}

const P_MAPOPS = 1;
const P_SOCKET = 2;
const P_CONNECT = 3;
const P_CLOSE = 4;
const P_END = 5;
/** Program size at which the pending cases run (bounds the latency of a batch's first case). */
const PROGRAM_FLUSH_BYTES = 256 * 1024;

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

function portOf(sa: Uint8Array): number {
  return ((sa[2] ?? 0) << 8) | (sa[3] ?? 0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
