// Runs connection-report cases on real sockets in the worker's private namespace: enrols the
// namespace, 127.0.0.1 and ::1 by control connects (a case outside withdraws the namespace from
// 127.0.0.2 and enrols it again after), writes the case's routing state and globals, then
// per connection: listen, connect, accept, (user space stores a verdict under the requested
// tuple, may turn monitoring off or withdraw the pod's IPs), sends both ways, closes in the case's order (or
// aborts); finally drains km_tcp_probe and km_auth_req
// and lists the verdicts left in km_auth_res. Records travel as hex; the parent decodes them.

import { execFileSync } from 'node:child_process';
import { CONTROL_ADDR, ControlPort, type SockAddr } from '../../../model/domain.js';
import { REPORT_MANAGED_LOCALS, REPORT_NEAR_MAPPED_LOCAL, REPORT_UNMANAGED_LOCAL, clientLocalAddr, type ReportCase } from '../../../model/report/domain.js';
import { encodeState, fromHex } from '../../codec/state.js';
import { decodeAuthRequest } from '../../codec/report.js';
import { toHex } from '../../codec/state.js';
import { KmeshCheckError } from '../../../shared/errors.js';
import { libbpf } from '../libbpf.js';
import { AF_INET, AF_INET6, E, IPPROTO_IPV6, IPV6_V6ONLY, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, SOCK_CLOEXEC, SOCK_STREAM, SOL_SOCKET, SO_REUSEADDR, errno, errnoName, libc, pollFor } from '../libc.js';
import type { Family } from '../../../model/address.js';
import { SOCKADDR_MAX, readSockaddr, writeSockaddr } from '../../codec/sockaddr.js';
import type { Globals, LoadedReportPath } from './loader.js';
import type { RawReportObservation } from '../../codec/report.js';
import { RingReader } from './ringbuf.js';
import { fastPath, fastPathUnavailable, registerResets, resetMaps, type FastPath } from '../fastpath.js';
import { abortClose, awaitEstablished } from '../accel/sys.js';

function v4Mapped(ip: string): Uint8Array {
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  ip.split('.').forEach((p, i) => (b[12 + i] = Number(p)));
  return b;
}

/** Bytes sent at once at most, then read at the peer: well inside a loopback receive buffer. */
const SEND_SLICE = 16 * 1024;

/**
 * Closes a connection's two ends, the first closer first; aborting (ReportConn.abort), it sends a
 * reset (SO_LINGER on, timeout 0), and the second end is closed once the reset has taken it to
 * CLOSE, so that its close sends nothing of its own.
 */
function closePair([first, second]: readonly [number, number], abort: boolean): void {
  if (abort) abortClose(first, second);
  else libc.close(first);
  libc.close(second);
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class ReportDriver {
  private readonly sa = new Uint8Array(SOCKADDR_MAX);
  private readonly buf = new Uint8Array(65536);
  /** What a send sends: SEND_SLICE bytes of 'a', of which a send takes as many as it needs. */
  private readonly payload = new Uint8Array(SEND_SLICE).fill(0x61);
  private readonly probe: RingReader;
  private readonly authReq: RingReader;

  /** The kernel worker's shim: it puts the maps outside the ABI back before each case, as it does there. */
  private readonly fast: FastPath;

  constructor(private readonly dp: LoadedReportPath) {
    const fast = fastPath();
    if (!fast) throw new KmeshCheckError('build', `the report harness's C shim is unavailable (${fastPathUnavailable()}): install gcc and libbpf-dev, then retry`);
    this.fast = fast;
    registerResets(fast, dp.resettable);
    this.probe = new RingReader(this.map('km_tcp_probe'), 'km_tcp_probe');
    this.authReq = new RingReader(this.map('km_auth_req'), 'km_auth_req');
  }

  private map(name: string): number {
    const fd = this.dp.maps.get(name);
    if (fd === undefined) throw new KmeshCheckError('object-content', `no object defines map ${name} (kmesh-dataplane.md section 7)`);
    return fd;
  }

  /**
   * lo up, local routes for the control addresses, the near-mapped client address on lo (IPv6
   * binds only configured addresses), and the enrolment of this namespace, 127.0.0.1 and ::1.
   */
  setup(): void {
    execFileSync('ip', ['-batch', '-'], {
      input: `link set lo up\nroute replace local 0.0.0.2/32 dev lo table local\nroute replace local ::2/128 dev lo table local\naddress replace ${REPORT_NEAR_MAPPED_LOCAL}/128 dev lo nodad\n`,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    for (const local of REPORT_MANAGED_LOCALS) this.controlConnect(local, ControlPort.enrol);
  }

  /** A control connect bound to `local` (refused: nothing listens on the control ports). */
  private controlConnect(local: string, port: number): void {
    const family: Family = local.includes(':') ? 'inet6' : 'inet';
    const fd = this.socket(family);
    this.bind(fd, { addr: local, port: 0 }, family);
    const len = writeSockaddr(this.sa, family, { addr: CONTROL_ADDR[family], port });
    const rc = libc.connect(fd, this.sa, len);
    libc.close(fd);
    if (rc === 0) throw new KmeshCheckError('environment', `the control connect to ${CONTROL_ADDR[family]}:${port} was accepted: something listens there`);
  }

  close(): void {
    this.probe.close();
    this.authReq.close();
  }

  private socket(family: Family = 'inet'): number {
    const fd = libc.socket(family === 'inet' ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new KmeshCheckError('environment', `socket() failed (${errnoName(errno())})`);
    libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, new Int32Array([1]), 4);
    if (family === 'inet6') libc.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, new Int32Array([0]), 4);
    return fd;
  }

  private bind(fd: number, a: SockAddr, family: Family = 'inet'): void {
    const len = writeSockaddr(this.sa, family, a);
    if (libc.bind(fd, this.sa, len) < 0) throw new KmeshCheckError('environment', `bind(${a.addr}:${a.port}) failed (${errnoName(errno())})`);
  }

  /**
   * A client socket bound to `local` on a port no earlier connection of the case had: records are
   * told apart by their tuple, and a port freed by an earlier close (its client closed last, no
   * TIME_WAIT) can come back from bind(0) for the same server. A socket given such a port is held
   * open in `held` (closed after the case), so that the next bind gets another: each try takes a
   * new port, until bind fails for want of one.
   */
  private clientSocket(family: Family, local: string, earlier: readonly { client: SockAddr }[], held: number[]): number {
    for (;;) {
      const fd = this.socket(family);
      held.push(fd);
      this.bind(fd, { addr: local, port: 0 }, family);
      const port = this.name(fd, false).port;
      if (!earlier.some((e) => e.client.port === port)) return held.pop()!;
    }
  }

  private name(fd: number, peer: boolean): SockAddr {
    const len = new Uint32Array([SOCKADDR_MAX]);
    (peer ? libc.getpeername : libc.getsockname)(fd, this.sa, len);
    const a = readSockaddr(this.sa);
    return { addr: a.addr, port: a.port };
  }

  private readAll(fd: number, n: number): void {
    const pfd = new Uint8Array(8);
    const dv = new DataView(pfd.buffer);
    let got = 0;
    while (got < n) {
      dv.setInt32(0, fd, true);
      dv.setInt16(4, POLLIN, true);
      if (pollFor(pfd, 1, 1000) <= 0) throw new KmeshCheckError('environment', `waited 1 s for ${n - got} of ${n} bytes`);
      const r = libc.recv(fd, this.buf, Math.min(this.buf.length, n - got), MSG_DONTWAIT);
      if (r <= 0 && errno() !== E.EAGAIN) throw new KmeshCheckError('environment', `recv failed (${errnoName(errno())})`);
      if (r > 0) got += r;
    }
  }

  run(c: ReportCase): RawReportObservation {
    // Before the globals: .data and .bss are among the maps put back.
    resetMaps(this.fast);
    const g: Globals = {
      // As loaded (the reset put them back to the bytes registered right after load), or as user space sets them.
      ...(c.globalsAsLoaded ? {} : { enableMonitoring: c.monitoring ? 1 : 0, enablePeriodicReport: c.periodic ? 1 : 0 }),
      nodeIp: c.nodeIp ? v4Mapped(c.nodeIp) : new Uint8Array(16),
      podGateway: c.podGateway ? v4Mapped(c.podGateway) : new Uint8Array(16),
    };
    this.dp.setGlobals(g);
    const written: Array<[number, Uint8Array]> = [];
    for (const [name, entries] of encodeState(c.state)) {
      for (const [k, v] of entries) {
        const key = fromHex(k);
        if (libbpf.mapUpdate(this.map(name), key, v, 0) < 0) throw new KmeshCheckError('environment', `cannot write ${name}`);
        written.push([this.map(name), key]);
      }
    }
    // Outside: the namespace withdraws from the unmanaged local, so its managed IPs stay enrolled.
    if (c.namespaceOutside) this.controlConnect(REPORT_UNMANAGED_LOCAL, ControlPort.withdraw);
    this.probe.drain();
    this.authReq.drain();
    const conns: Array<{ client: SockAddr; server: SockAddr; window: [string, string] }> = [];
    const auth: string[] = [];
    /** Sockets holding ports the case must not reuse (clientSocket), closed after the case. */
    const held: number[] = [];
    /** Connections closed last (ReportConn.closeLast): their ends in closing order, and whether aborted. */
    const deferred: Array<{ ends: [number, number]; abort: boolean }> = [];
    try {
      for (const conn of c.conns) {
        if ((conn.handshakeNs ?? 0) > 0)
          // The harness cannot carry this case out ('environment': its phase stops, the others' findings stand).
          throw new KmeshCheckError('environment', 'a handshake that lets time pass cannot run on the kernel (loopback completes it inside connect()): such report cases run on the VM');
        const listenFamily: Family = conn.listen.addr.includes(':') ? 'inet6' : 'inet';
        const listener = this.socket(listenFamily);
        this.bind(listener, conn.listen, listenFamily);
        libc.listen(listener, 8);
        const clientFamily = conn.clientFamily ?? 'inet';
        const client = this.clientSocket(clientFamily, clientLocalAddr(conn), conns, held);
        const len = writeSockaddr(this.sa, clientFamily, conn.connectTo);
        // CLOCK_MONOTONIC, bpf_ktime_get_ns's clock: connect_ns of both ends falls in between.
        const from = process.hrtime.bigint();
        if (libc.connect(client, this.sa, len) < 0) throw new KmeshCheckError('environment', `connect to ${conn.connectTo.addr}:${conn.connectTo.port} failed (${errnoName(errno())})`);
        const server = libc.accept4(listener, null, null, SOCK_CLOEXEC);
        libc.close(listener);
        if (server < 0) throw new KmeshCheckError('environment', `accept failed (${errnoName(errno())})`);
        if (!awaitEstablished(server)) throw new KmeshCheckError('environment', 'the accepted socket did not become established within 1 s');
        conns.push({ client: this.name(client, false), server: this.name(server, false), window: [String(from), String(process.hrtime.bigint())] });
        // User space reads the requests and stores a verdict under each requested tuple.
        for (const rec of this.authReq.drain()) {
          auth.push(toHex(rec));
          const req = decodeAuthRequest(rec);
          if (conn.storeVerdict && req.tuple) libbpf.mapUpdate(this.map('km_auth_res'), rec.slice(4), new Uint8Array([1, 0, 0, 0]), 0);
        }
        if (conn.monitoringOff) this.dp.setGlobals({ ...g, enableMonitoring: 0 });
        if (conn.monitoringOn) this.dp.setGlobals({ ...g, enableMonitoring: 1 });
        if (conn.withdraw) for (const local of REPORT_MANAGED_LOCALS) this.controlConnect(local, ControlPort.withdraw);
        for (const s of conn.sends) {
          if (s.waitNs) sleep(Math.ceil(s.waitNs / 1e6));
          const [from, to] = s.from === 'client' ? [client, server] : [server, client];
          // In slices, each read before the next: a send larger than the peer's receive buffer
          // would block this one thread for good.
          for (let left = s.size; left > 0; left -= SEND_SLICE) {
            const n = Math.min(left, SEND_SLICE);
            if (libc.send(from, this.payload, n, MSG_NOSIGNAL) !== n) throw new KmeshCheckError('environment', `send failed (${errnoName(errno())})`);
            this.readAll(to, n);
          }
        }
        if (conn.closeWaitNs) sleep(Math.ceil(conn.closeWaitNs / 1e6));
        const ends: [number, number] = conn.firstClose === 'client' ? [client, server] : [server, client];
        const abort = conn.abort === true;
        if (conn.closeLast) deferred.push({ ends, abort });
        else closePair(ends, abort);
      }
      while (deferred.length > 0) {
        const d = deferred.shift()!;
        closePair(d.ends, d.abort);
      }
      for (const rec of this.authReq.drain()) auth.push(toHex(rec));
      const probe = this.probe.drain().map(toHex);
      const verdictsLeft: string[] = [];
      const res = this.map('km_auth_res');
      let prev: Uint8Array | null = null;
      for (;;) {
        const next = new Uint8Array(36);
        if (libbpf.mapNextKey(res, prev, next) < 0) break;
        verdictsLeft.push(toHex(next));
        prev = next;
      }
      for (const k of verdictsLeft) libbpf.mapDelete(res, fromHex(k));
      return { conns, probe, auth, verdictsLeft };
    } finally {
      for (const fd of held) libc.close(fd);
      for (const d of deferred) for (const fd of d.ends) libc.close(fd);
      for (const [fd, key] of written) libbpf.mapDelete(fd, key);
      // Enrolled again as setup() left it: the pod's IPs after a withdrawal, else the namespace's cookie after one outside.
      if (c.conns.some((k) => k.withdraw === true)) for (const local of REPORT_MANAGED_LOCALS) this.controlConnect(local, ControlPort.enrol);
      else if (c.namespaceOutside) this.controlConnect(REPORT_MANAGED_LOCALS[0]!, ControlPort.enrol);
    }
  }
}
