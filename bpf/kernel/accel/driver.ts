// Runs one acceleration case on real sockets: two fresh private network namespaces per case (so
// equal four-tuples can coexist, and no TIME_WAIT of an earlier case is in the way), sockets made
// in them by switching the calling thread, all inside the cgroup the pair is attached to unless a
// case puts an end outside it. Observes what each end reads, how much of it TCP carried
// (tcpi_bytes_received: zero when every message was redirected), bytes read by any other socket,
// and the two maps after every end has closed. Maps are emptied after each case.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccelCase, AccelKey, AccelObservation, AccelPair, DirectionObservation, End, Netns } from '../../../model/accel/domain.js';
import { messageBytes, toHexBytes } from '../../../model/accel/domain.js';
import { SOCK_KEY_SIZE, decodeSockKey, encodeSockParam } from '../../codec/accel.js';
import { KmeshCheckError } from '../../../shared/errors.js';
import { libbpf } from '../libbpf.js';
import { AF_INET, AF_INET6, IPPROTO_IPV6, IPV6_V6ONLY, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, SOCK_CLOEXEC, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR, errno, errnoName, libc } from '../libc.js';
import { SOCKADDR_MAX, writeSockaddr } from '../../codec/sockaddr.js';
import type { LoadedAccel } from './loader.js';
import { awaitEstablished, closeFd, currentNetns, inNetns, netnsCookie, newPrivateNetns, tcpBytes } from './sys.js';

/** How long a receiver waits for bytes that should arrive (a liveness bound, not a judgement). */
const RECEIVE_WAIT_MS = 1000;

interface Ends {
  client: number;
  server: number;
  open: { client: boolean; server: boolean };
  /** tcpi_bytes_received of each end, taken before the pair's first close. */
  viaTcp: { client: number; server: number } | null;
  received: { client: number[]; server: number[] };
  sent: { client: number; server: number };
}

export interface AccelEnvironment {
  readonly cgroupRoot: string;
  readonly cgroup: string;
}

function fail(what: string): never {
  throw new KmeshCheckError('environment', `${what} failed (${errnoName(errno())})`);
}

export class AccelDriver {
  private readonly home = currentNetns();
  private readonly sa = new Uint8Array(SOCKADDR_MAX);
  private readonly buf = new Uint8Array(65536);
  private readonly pollfd = new Uint8Array(8);

  constructor(
    private readonly dp: LoadedAccel,
    private readonly env: AccelEnvironment,
  ) {}

  close(): void {
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
    return libc.poll(this.pollfd, 1, ms) > 0;
  }

  /** Reads what is there now, or until `want` bytes arrived or the wait ran out. */
  private read(fd: number, want: number, waitMs: number): number[] {
    const got: number[] = [];
    while (want === 0 ? this.wait(fd, 0) : got.length < want && this.wait(fd, waitMs)) {
      const n = libc.recv(fd, this.buf, want === 0 ? this.buf.length : Math.min(this.buf.length, want - got.length), MSG_DONTWAIT);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) got.push(this.buf[i]!);
    }
    return got;
  }

  run(c: AccelCase): AccelObservation {
    const { sock_ops_map: opsMap, sock_proxy_map: proxyMap, sock_param_map: paramMap } = this.dp.maps;
    if (libbpf.mapUpdate(paramMap, new Uint8Array(4), encodeSockParam(c.filter), 0) < 0) fail('writing sock_param_map[0]');
    const namespaces: number[] = [];
    const cookies = new Map<bigint, Netns>();
    const listeners = new Map<string, number>();
    const ends: Array<Ends | null> = c.pairs.map(() => null);
    const stray: Array<{ pair: number; end: End; bytes: string }> = [];
    const ns = (n: Netns): number => {
      while (namespaces.length <= n) namespaces.push(newPrivateNetns(this.home));
      return namespaces[n]!;
    };
    const sweep = (except: number) => {
      ends.forEach((e, p) => {
        if (!e) return;
        for (const end of ['client', 'server'] as const) {
          if (!e.open[end] || e[end] === except) continue;
          const got = this.read(e[end], 0, 0);
          if (got.length) stray.push({ pair: p, end, bytes: toHexBytes(Uint8Array.from(got)) });
        }
      });
    };
    try {
      for (const op of c.ops) {
        const pair = c.pairs[op.pair];
        if (!pair) throw new KmeshCheckError('codec', `operation on pair ${op.pair}, but the case has ${c.pairs.length} pairs`);
        if (op.op === 'connect') {
          ends[op.pair] = this.connect(pair, ns(pair.netns), listeners, cookies);
          continue;
        }
        const e = ends[op.pair];
        if (!e) throw new KmeshCheckError('codec', `pair ${op.pair} is used before its connect`);
        if (op.op === 'send') {
          const to: End = op.from === 'client' ? 'server' : 'client';
          if (!e.open[op.from] || !e.open[to]) throw new KmeshCheckError('codec', `pair ${op.pair}: a send needs both ends open`);
          const msg = messageBytes(op.pair, op.from, e.sent[op.from]++, op.size);
          const n = libc.send(e[op.from], msg, msg.length, MSG_NOSIGNAL);
          if (n !== msg.length) fail(`send of ${msg.length} bytes (sent ${n})`);
          e.received[to].push(...this.read(e[to], msg.length, RECEIVE_WAIT_MS));
          sweep(e[to]);
        } else {
          if (!e.open[op.end]) throw new KmeshCheckError('codec', `pair ${op.pair}: the ${op.end} closes twice`);
          if (!e.viaTcp) e.viaTcp = { client: tcpBytes(e.client).received, server: tcpBytes(e.server).received };
          sweep(-1);
          libc.close(e[op.end]);
          e.open[op.end] = false;
        }
      }
      sweep(-1);
      for (const e of ends) {
        if (!e) continue;
        if (!e.viaTcp) e.viaTcp = { client: tcpBytes(e.client).received, server: tcpBytes(e.server).received };
      }
    } finally {
      for (const e of ends) {
        if (!e) continue;
        if (e.open.client) libc.close(e.client);
        if (e.open.server) libc.close(e.server);
        e.open.client = e.open.server = false;
      }
      for (const fd of listeners.values()) libc.close(fd);
      for (const fd of namespaces) closeFd(fd);
    }
    const key = (b: Uint8Array): AccelKey => {
      const k = decodeSockKey(b);
      return { local: k.local, localPort: k.localPort, remote: k.remote, remotePort: k.remotePort, netns: cookies.get(k.cookie) ?? null, cookie: k.cookie.toString() };
    };
    const opsKeys = this.keys(opsMap);
    const proxyKeys = this.keys(proxyMap);
    const value = new Uint8Array(SOCK_KEY_SIZE);
    const proxyEntries = proxyKeys.flatMap((k) => (libbpf.mapLookup(proxyMap, k, value) === 0 ? [{ key: key(k), peer: key(value.slice()) }] : []));
    for (const k of proxyKeys) libbpf.mapDelete(proxyMap, k);
    for (const k of opsKeys) libbpf.mapDelete(opsMap, k);
    const direction = (e: Ends, to: End): DirectionObservation => ({ received: toHexBytes(Uint8Array.from(e.received[to])), viaTcp: e.viaTcp?.[to] ?? 0 });
    return {
      pairs: ends.map((e) => (e ? { toServer: direction(e, 'server'), toClient: direction(e, 'client') } : { toServer: { received: '', viaTcp: 0 }, toClient: { received: '', viaTcp: 0 } })),
      stray,
      sockOpsKeys: opsKeys.map(key),
      proxyEntries,
    };
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

  private connect(pair: AccelPair, nsFd: number, listeners: Map<string, number>, cookies: Map<bigint, Netns>): Ends {
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
      cookies.set(netnsCookie(client), pair.netns);
      return { client, server, open: { client: true, server: true }, viaTcp: null, received: { client: [], server: [] }, sent: { client: 0, server: 0 } };
    });
  }
}
