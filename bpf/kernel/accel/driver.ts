// The kernel's socket layer of the acceleration case runner (bpf/runner/accel-runner.ts): real
// sockets in fresh private network namespaces, made on first use per case (so equal four-tuples
// can coexist, and no TIME_WAIT of an earlier case is in the way), created by switching the
// calling thread, all inside the cgroup the pair is attached to unless a case puts an end outside
// it. TCP's share of the bytes is tcpi_bytes_received (zero when every message was redirected).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccelCase, AccelFilter, AccelObservation, AccelPair, Netns } from '../../../model/accel/domain.js';
import { SOCK_KEY_SIZE, encodeSockParam } from '../../codec/accel.js';
import { runAccelCase, type AccelSocketLayer, type MapsRead } from '../../runner/accel-runner.js';
import { KmeshCheckError } from '../../../shared/errors.js';
import { libbpf } from '../libbpf.js';
import { AF_INET, AF_INET6, IPPROTO_IPV6, IPV6_V6ONLY, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, SOCK_CLOEXEC, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR, E, errno, errnoName, libc, pollFor } from '../libc.js';
import { SOCKADDR_MAX, writeSockaddr } from '../../codec/sockaddr.js';
import type { LoadedAccel } from './loader.js';
import { abortClose, awaitEstablished, closeFd, currentNetns, inNetns, netnsCookie, newPrivateNetns, tcpBytes } from './sys.js';

/** How long a receiver waits for bytes that should arrive (a liveness bound, not a judgement). */
const RECEIVE_WAIT_MS = 1000;

export interface AccelEnvironment {
  readonly cgroupRoot: string;
  readonly cgroup: string;
}

function fail(what: string): never {
  throw new KmeshCheckError('environment', `${what} failed (${errnoName(errno())})`);
}

export class AccelDriver implements AccelSocketLayer<number> {
  private readonly home = currentNetns();
  /** The running case's namespaces (fds, by Netns), cookies and listeners. */
  private namespaces: number[] = [];
  private cookies = new Map<bigint, Netns>();
  private listeners = new Map<string, number>();
  private readonly sa = new Uint8Array(SOCKADDR_MAX);
  private readonly buf = new Uint8Array(65536);
  private readonly pollfd = new Uint8Array(8);

  constructor(
    private readonly dp: LoadedAccel,
    private readonly env: AccelEnvironment,
  ) {}

  /** Gives back the home namespace's fd (the worker's clean-up). */
  dispose(): void {
    closeFd(this.home);
  }

  /** Moves this process out of (or back into) the harness cgroup; sockets made meanwhile stay outside. */
  private outside<T>(yes: boolean, f: () => T): T {
    if (!yes) return f();
    writeFileSync(join(this.env.cgroupRoot, 'cgroup.procs'), String(process.pid));
    try {
      return f();
    } finally {
      writeFileSync(join(this.env.cgroup, 'cgroup.procs'), String(process.pid));
    }
  }

  private socket(family: 'inet' | 'inet6'): number {
    const fd = libc.socket(family === 'inet' ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail('socket()');
    libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, new Int32Array([1]), 4);
    // v4-mapped addresses need a dual-stack socket, whatever the namespace's default.
    if (family === 'inet6') libc.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, new Int32Array([0]), 4);
    return fd;
  }

  private bind(fd: number, family: 'inet' | 'inet6', addr: string, port: number): void {
    const len = writeSockaddr(this.sa, family, { addr, port });
    if (libc.bind(fd, this.sa, len) < 0) fail(`bind(${addr}:${port})`);
  }

  private wait(fd: number, ms: number): boolean {
    const dv = new DataView(this.pollfd.buffer);
    dv.setInt32(0, fd, true);
    dv.setInt16(4, POLLIN, true);
    dv.setInt16(6, 0, true);
    return pollFor(this.pollfd, 1, ms) > 0;
  }

  /** Reads what is there now, or until `want` bytes arrived or the wait ran out. */
  private readBytes(fd: number, want: number, waitMs: number): number[] {
    const got: number[] = [];
    while (want === 0 ? this.wait(fd, 0) : got.length < want && this.wait(fd, waitMs)) {
      const n = libc.recv(fd, this.buf, want === 0 ? this.buf.length : Math.min(this.buf.length, want - got.length), MSG_DONTWAIT);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) got.push(this.buf[i]!);
    }
    return got;
  }

  run(c: AccelCase): AccelObservation {
    return runAccelCase(this, c);
  }

  // ---- the socket layer of the case runner (bpf/runner/accel-runner.ts) ---------------------

  begin(): void {
    this.namespaces = [];
    this.cookies = new Map();
    this.listeners = new Map();
  }

  setFilter(f: AccelFilter): void {
    if (libbpf.mapUpdate(this.dp.maps.sock_param_map, new Uint8Array(4), encodeSockParam(f), 0) < 0) fail('writing sock_param_map[0]');
  }

  connect(pair: AccelPair): { client: number; server: number } {
    while (this.namespaces.length <= pair.netns) this.namespaces.push(newPrivateNetns(this.home));
    return this.connectIn(pair, this.namespaces[pair.netns]!);
  }

  send(fd: number, msg: Uint8Array): string | null {
    const n = libc.send(fd, msg, msg.length, MSG_NOSIGNAL);
    if (n === msg.length) return null;
    // EACCES is an sk_msg verdict of SK_DROP: the data path's doing, an observation.
    if (n < 0 && errno() === E.EACCES) return 'EACCES';
    return fail(`send of ${msg.length} bytes (sent ${n})`);
  }

  read(fd: number, want: number): Uint8Array {
    return Uint8Array.from(this.readBytes(fd, want, want === 0 ? 0 : RECEIVE_WAIT_MS));
  }

  tcpReceived(fd: number): number {
    return tcpBytes(fd).received;
  }

  close(fd: number, resetPeer?: number): void {
    if (resetPeer !== undefined) abortClose(fd, resetPeer);
    else libc.close(fd);
  }

  release(): void {
    for (const fd of this.listeners.values()) libc.close(fd);
    for (const fd of this.namespaces) closeFd(fd);
    this.listeners.clear();
    this.namespaces = [];
  }

  readMaps(empty: boolean): MapsRead {
    const { sock_ops_map: opsMap, sock_proxy_map: proxyMap } = this.dp.maps;
    const opsKeys = this.keys(opsMap);
    const proxyKeys = this.keys(proxyMap);
    const value = new Uint8Array(SOCK_KEY_SIZE);
    const proxy = proxyKeys.flatMap((k) => (libbpf.mapLookup(proxyMap, k, value) === 0 ? [{ key: k, value: value.slice() }] : []));
    if (empty) {
      for (const k of proxyKeys) libbpf.mapDelete(proxyMap, k);
      for (const k of opsKeys) libbpf.mapDelete(opsMap, k);
    }
    const cookies = this.cookies;
    return { opsKeys, proxy, netnsOf: (cookie) => cookies.get(cookie) ?? null };
  }

  private keys(fd: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let prev: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(SOCK_KEY_SIZE);
      if (libbpf.mapNextKey(fd, prev, next) < 0) break;
      out.push(next);
      prev = next;
      if (out.length > 4096) throw new KmeshCheckError('worker', 'a map walk did not end: the map changed while it was read');
    }
    return out;
  }

  private connectIn(pair: AccelPair, nsFd: number): { client: number; server: number } {
    const listeners = this.listeners;
    const serverOut = pair.outside === 'server';
    // A v4-mapped client talks to an AF_INET listener: the listener's family is the server end's.
    const serverFamily = pair.family === 'inet6' ? 'inet6' : 'inet';
    const clientFamily = pair.family === 'inet' ? 'inet' : 'inet6';
    const mapped = (a: string) => (pair.family === 'mapped' ? `::ffff:${a}` : a);
    const lkey = `${pair.netns}/${serverFamily}/${pair.serverAddr}/${pair.serverPort}/${serverOut}`;
    return inNetns(nsFd, this.home, () => {
      let listener = listeners.get(lkey);
      if (listener === undefined) {
        listener = this.outside(serverOut, () => this.socket(serverFamily));
        listeners.set(lkey, listener);
        this.bind(listener, serverFamily, pair.serverAddr, pair.serverPort);
        if (libc.listen(listener, 64) < 0) fail('listen()');
      }
      const client = this.outside(pair.outside === 'client', () => this.socket(clientFamily));
      this.bind(client, clientFamily, mapped(pair.clientAddr), pair.clientPort);
      const len = writeSockaddr(this.sa, clientFamily, { addr: mapped(pair.serverAddr), port: pair.serverPort });
      if (libc.connect(client, this.sa, len) < 0) {
        const why = errnoName(errno());
        libc.close(client);
        throw new KmeshCheckError('environment', `connect ${pair.clientAddr}:${pair.clientPort} -> ${pair.serverAddr}:${pair.serverPort} failed (${why})`);
      }
      if (!this.wait(listener, RECEIVE_WAIT_MS)) fail('waiting for the connection to be accepted');
      const server = libc.accept4(listener, null, null, SOCK_CLOEXEC);
      if (server < 0) fail('accept4()');
      if (!awaitEstablished(server)) fail('waiting for the accepted socket to be established');
      this.cookies.set(netnsCookie(client), pair.netns);
      return { client, server };
    });
  }
}
