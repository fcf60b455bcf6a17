// The kernel's socket layer for the case runner: real sockets in the worker's namespace and
// cgroup, with the attached data path. Each socket operation is one call into the C shim
// (fastpath.ts): kf_socket, kf_connect (connect, getpeername, accept of the server side, the
// sk_storage and sockhash reads), kf_close; a state's map writes are one kf_map_ops call.

import type { Case, Family, Protocol, SockAddr, SocketId, StartEnrolment } from '../../model/domain.js';
import { writtenEnrolment } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import { ENABLE_MONITORING, ROUTING_MAPS, STRUCTS, monitoringBytes, type MapName } from '../codec/abi.js';
import { SOCKADDR_MAX, sockaddrKey, writeSockaddr } from '../codec/sockaddr.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { ConnectSeen, DatagramReceived, DatagramSent, RunnerSocket, SocketLayer } from '../runner/socket-layer.js';
import { KernelDns } from './dns.js';
import { controlConnects, netnsCookie } from './enrolment.js';
import { enrolmentEntries } from '../codec/manage.js';
import { KF_ACCEPT, KF_DEFER, KF_INET6, KF_TCP, OUT, checkAbi, registerResets, resetMaps, type FastPath } from './fastpath.js';
import type { ResetMap } from './loader.js';
import type { SetGlobal } from './globals.js';
import { Listeners, portOf } from './listeners.js';
import { AF_INET, AF_INET6, E, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_STREAM, errno, errnoName, libc } from './libc.js';
import { MapWriter } from './map-writes.js';

/**
 * How long a send waits at most for its bytes to reach the listener (loopback delivers at once);
 * the wait ends sooner once nothing is in flight in the namespace (kf_settle).
 */
export const STREAM_WAIT_MS = 200;
/**
 * A TCP socket's SO_SNDTIMEO, in microseconds: one slice (the kernel rounds it up to a jiffy). A
 * loopback handshake completes inside connect(); only a connect the kernel leaves in SYN_SENT (an
 * AF_INET6 socket whose earlier v4-mapped connect was refused by RST: a native IPv6 connect then
 * never completes, ~134 s to ETIMEDOUT) returns after the slice. The shim then waits for it, up to
 * 250 ms or until no segment is in flight in the namespace (connect_tcp in fastpath.c), and reports
 * EINPROGRESS if it is still connecting (model/environment.ts, kernelConnect). A blocked send on a
 * connected socket returns after the slice too: nothing drains its peer meanwhile, so a longer
 * wait could not change what it returns.
 */
export const TCP_SNDTIMEO_US = 1000;

export interface KernelSock {
  readonly fd: number;
  /** Accepted server side of this connection, or -1. */
  server: number;
  /** What the server side has received so far. */
  received: Buffer;
}

const EMPTY = Buffer.alloc(0);

export function socketType(protocol: Protocol): number {
  return (protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC;
}

export class KernelSockets implements SocketLayer<KernelSock> {
  readonly keepsEnrolment = true;
  readonly maps: MapWriter;
  readonly listeners: Listeners;
  /** UDP datagrams, the DNS stand-ins and the section 6 operations (dns.ts). */
  readonly dns: KernelDns;
  private readonly addr = new Uint8Array(SOCKADDR_MAX);
  private readonly out: Uint8Array;
  private readonly outI32: Int32Array;
  private readonly outPeer: Uint8Array;
  private readonly outLocal: Uint8Array;
  private readonly outStorage: Uint8Array;
  private readonly err2 = new Int32Array(2);
  private readonly recvBuf = new Uint8Array(64 * 1024);
  private readonly pollFd = new Uint8Array(8);
  /** Bounded waits for stream bytes loopback had not delivered yet (none on the normal path). */
  lateStreamWaits = 0;
  private readonly seen: { error: number; peer: Uint8Array | null; storage: Uint8Array | null; inSockhash: boolean } = { error: -1, peer: null, storage: null, inSockhash: false };

  constructor(
    maps: ReadonlyMap<MapName, number>,
    private readonly env: Environment,
    readonly fast: FastPath,
    private readonly resettable: readonly ResetMap[],
    private readonly setGlobal: SetGlobal,
  ) {
    this.maps = new MapWriter(maps, fast);
    checkAbi(fast.init(this.maps.fd('km_socket'), STRUCTS.bpf_sock_tuple.size, this.maps.fd('km_sockstorage'), STRUCTS.sock_storage_data.size));
    registerResets(fast, resettable);
    // The maps kf_map_ops writes (a state's diff, km_manage), for the map writer if it is loaded.
    fast.writerMaps(new Int32Array([...ROUTING_MAPS, 'km_manage' as const].map((m) => this.maps.fd(m))), ROUTING_MAPS.length + 1);
    this.listeners = new Listeners(env.closedPorts, fast);
    this.dns = new KernelDns(env, fast);
    this.out = new Uint8Array(fast.outSize);
    this.outI32 = new Int32Array(this.out.buffer);
    this.outPeer = this.out.subarray(OUT.peer, OUT.peer + SOCKADDR_MAX);
    this.outLocal = this.out.subarray(OUT.local, OUT.local + SOCKADDR_MAX);
    this.outStorage = this.out.subarray(OUT.storage, OUT.storage + STRUCTS.sock_storage_data.size);
  }

  /** Puts the maps outside the ABI back (whole cases do so in the shim): a case sees nothing of the ones before. */
  beginCase(): boolean {
    resetMaps(this.fast);
    return false;
  }

  readonly writeMap = (name: Parameters<MapWriter['queue']>[0], key: Uint8Array, value: Uint8Array | null): void => this.maps.queue(name, key, value);

  mapsWritten(): void {
    this.maps.flush();
  }

  resetMaps(): void {
    this.maps.resetMaps();
  }

  /** Whether km_manage holds entries the harness wrote (emptied before the next control connects). */
  private manageWritten = false;
  private cookie: bigint | null = null;

  setEnrolment(want: StartEnrolment): void {
    const plan = this.takeEnrolmentPlan(want);
    try {
      if (plan.manage) this.maps.replaceManage(plan.manage);
    } catch (e) {
      this.manageUnknown();
      throw e;
    }
    if (plan.controlConnects) controlConnects(this.env, want === true, this.fast);
  }

  /**
   * How to change to enrolment `want`, for both paths (this runner's setEnrolment and whole
   * cases in kf_run): `manage`, the entries to write to km_manage once it is emptied (none:
   * emptied only, leaving a written enrolment), or null when it is not touched; then control
   * connects, or not (a written enrolment makes none). Takes the writes as made: whoever makes
   * them calls manageUnknown() if they fail (an emptying not made must not be forgotten).
   */
  takeEnrolmentPlan(want: StartEnrolment): { readonly manage: ReadonlyArray<readonly [Uint8Array, Uint8Array]> | null; readonly controlConnects: boolean } {
    const written = writtenEnrolment(want);
    const was = this.manageWritten;
    this.manageWritten = written !== null;
    if (written) return { manage: enrolmentEntries((this.cookie ??= netnsCookie()), this.env, written), controlConnects: false };
    return { manage: was ? [] : null, controlConnects: true };
  }

  /** After a failure: km_manage may still hold what the harness wrote. */
  manageUnknown(): void {
    this.manageWritten = true;
  }

  /**
   * Sets enable_monitoring. The maps outside the ABI, global data among them, are put back before
   * every case to bytes taken once: they are put back now, set, and taken again.
   */
  setMonitoring(on: boolean): void {
    resetMaps(this.fast);
    if (this.setGlobal(ENABLE_MONITORING, monitoringBytes(on)) > 0) registerResets(this.fast, this.resettable);
  }

  listen(c: Case): void {
    this.listeners.listen(c);
    this.dns.prepare(c);
  }

  open(id: SocketId, family: Family, protocol: Protocol, bindTo?: string): KernelSock {
    const fd = this.fast.socket(family === 'inet' ? AF_INET : AF_INET6, socketType(protocol), protocol === 'tcp' ? TCP_SNDTIMEO_US : 0, this.err2);
    if (fd < 0) {
      const err = errnoName(this.err2[1]!);
      if (this.err2[0] === 1) throw new KmeshCheckError('worker', `socket() failed (${err})`);
      throw new KmeshCheckError('worker', `setting SO_SNDTIMEO on a TCP socket failed (${err})`);
    }
    if (bindTo !== undefined && libc.bind(fd, this.addr, writeSockaddr(this.addr, family, { addr: bindTo, port: 0 })) < 0) {
      const err = errnoName(errno());
      libc.close(fd);
      throw new KmeshCheckError('worker', `binding socket ${id} to ${bindTo} failed (${err}): is it an address of the harness's namespace?`);
    }
    return { fd, server: -1, received: EMPTY };
  }

  /**
   * kf_connect makes the connect and its reads in one call, unless server sides of other clients
   * are pending: then it stops after getsockname and the match happens here.
   */
  connect(r: RunnerSocket<KernelSock>, dest: SockAddr): ConnectSeen {
    const s = r.handle;
    const n = writeSockaddr(this.addr, r.family, dest);
    const tcp = r.protocol === 'tcp';
    let flags = (tcp ? KF_TCP : 0) | (r.family === 'inet6' ? KF_INET6 : 0);
    if (tcp && s.server < 0) flags |= this.listeners.anyPending ? KF_DEFER : KF_ACCEPT;
    const o = this.outI32;
    this.fast.connect(s.fd, this.addr, n, flags, this.out);
    const rc = o[OUT.rc >> 2]!;
    const seen = this.seen;
    seen.error = rc < 0 ? o[OUT.err >> 2]! : -1;
    seen.peer = null;
    seen.inSockhash = false;
    if (o[OUT.connected >> 2] === 1) {
      if (rc === 0) seen.peer = this.outPeer;
      if (tcp) {
        if (s.server < 0) this.claimServer(s);
        if (o[OUT.deferred >> 2] === 1) this.fast.observe(s.fd, flags, this.out);
        seen.inSockhash = o[OUT.inSockhash >> 2] === 1;
      }
    }
    seen.storage = this.storageFromOut();
    return seen;
  }

  /** The server side of a just-connected client, from what kf_connect accepted or left to do. */
  private claimServer(s: KernelSock): void {
    const o = this.outI32;
    // Connections of other clients accepted on the way wait, as in Listeners.acceptFrom.
    const others = o[OUT.others >> 2]!;
    for (let i = 0; i < others; i++) {
      const at = OUT.other + i * OUT.otherStride;
      this.listeners.park(sockaddrKey(this.out.subarray(at + 4, at + 4 + SOCKADDR_MAX)), o[at >> 2]!);
    }
    const server = o[OUT.server >> 2]!;
    if (server === -2) {
      const lfd = this.listeners.fdOf(portOf(this.outPeer));
      s.server = lfd === undefined ? -1 : this.listeners.acceptFrom(lfd, sockaddrKey(this.outLocal));
    } else if (o[OUT.deferred >> 2] === 1) {
      s.server = this.listeners.serverOf(this.outPeer, this.outLocal);
    } else {
      s.server = server;
    }
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

  storage(r: RunnerSocket<KernelSock>): Uint8Array | null {
    // kf_observe without the TCP flag: only the sk_storage lookup.
    this.fast.observe(r.handle.fd, 0, this.out);
    return this.storageFromOut();
  }

  send(r: RunnerSocket<KernelSock>, payload: Uint8Array): number {
    // A TCP socket without a connection (never connected, or left in SYN_SENT) cannot deliver:
    // do not wait for SO_SNDTIMEO on each message.
    const flags = MSG_NOSIGNAL | (r.protocol === 'tcp' && r.handle.server < 0 ? MSG_DONTWAIT : 0);
    const n = libc.send(r.handle.fd, payload, payload.length, flags);
    // A connected UDP socket's datagram: the DNS stand-in at its peer answers it.
    if (n > 0 && r.protocol === 'udp') this.dns.pump();
    return n;
  }

  sendto(r: RunnerSocket<KernelSock>, dest: SockAddr, query: string): DatagramSent {
    return this.dns.sendto({ fd: r.handle.fd, family: r.family }, dest, query);
  }

  recvfrom(r: RunnerSocket<KernelSock>): DatagramReceived {
    return this.dns.recvfrom({ fd: r.handle.fd, family: r.family });
  }

  deliver(r: RunnerSocket<KernelSock>, from: SockAddr, data: string): string | null {
    return this.dns.deliver({ fd: r.handle.fd, family: r.family }, from, data);
  }

  received(r: RunnerSocket<KernelSock>, complete: (got: Uint8Array) => boolean): Uint8Array | null {
    const s = r.handle;
    if (r.protocol !== 'tcp' || s.server < 0) return null;
    this.recvAll(s);
    const deadline = Date.now() + STREAM_WAIT_MS;
    while (!complete(s.received)) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      this.pollFd.fill(0);
      new DataView(this.pollFd.buffer).setInt32(0, s.server, true);
      new DataView(this.pollFd.buffer).setInt16(4, POLLIN, true);
      this.lateStreamWaits++;
      if (this.fast.settle(this.pollFd, 1, left) <= 0) break;
      this.recvAll(s);
    }
    return s.received;
  }

  /** What the server side has now; a short read means the queue is empty (no recv that finds nothing). */
  private recvAll(s: KernelSock): void {
    for (;;) {
      const n = libc.recv(s.server, this.recvBuf, this.recvBuf.length, MSG_DONTWAIT);
      if (n <= 0) return;
      s.received = Buffer.concat([s.received, Buffer.from(this.recvBuf.subarray(0, n))]);
      if (n < this.recvBuf.length) return;
    }
  }

  close(r: RunnerSocket<KernelSock>): void {
    // Server first: its RST (inherited SO_LINGER {1,0}) closes the client, so neither side
    // keeps TIME_WAIT and ephemeral ports do not run out.
    this.fast.close(r.handle.server, r.handle.fd, r.protocol === 'tcp' ? 1 : 0);
    r.handle.server = -1;
  }

  endCase(): void {
    this.listeners.closePending();
  }

  /** Releases the listeners (sockets of a case are closed by the runner), and the maps from the map writer. */
  closeAll(): void {
    this.fast.writerMaps(new Int32Array(0), 0);
    this.listeners.close();
    this.dns.close();
  }
}
