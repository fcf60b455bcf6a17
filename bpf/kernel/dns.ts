// The kernel socket layer's UDP datagrams for section 6 (DNS over UDP sends): sendto, recvfrom
// and deliver on real sockets, and a DNS stand-in inside the private namespace. The stand-in is
// one UDP socket per address a case may query (the servers it names and every DNS proxy address
// its states hold), bound to that address and port 53 (IP_FREEBIND / IPV6_FREEBIND: the
// namespace's addresses are AnyIP routes, not configured ones). Loopback delivers a datagram
// inside the sending syscall, so after every send the stand-ins are read without waiting: where a
// query arrived is the stand-in that got it, and it answers at once from its own address.
// Runs in the worker, inside the namespace and the worker's cgroup (the stand-ins' own datagrams
// pass the hooks too: their port is never 53 on the client side, so nothing is rewritten).
// A datagram a stand-in sends that no socket takes comes back to it as an ICMP error (IP_RECVERR),
// so a recvfrom that finds nothing need not wait for it; where the error does not come (ICMP rate
// limits), the bounded wait stays.

import koffi from 'koffi';
import { canonicalSockText, isIPv4Form, v4MappedInner } from '../../model/address.js';
import { DNS_PORT, DNS_PROXY_UID, dnsAnswerTo, type Case, type Family, type SockAddr } from '../../model/domain.js';
import { ANY_ADDRESS, kernelPeer, routable, type Environment } from '../../model/environment.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { SOCKADDR_MAX, readSockaddr, writeSockaddr } from '../codec/sockaddr.js';
import type { DatagramReceived, DatagramSent } from '../runner/socket-layer.js';
import type { FastPath } from './fastpath.js';
import { AF_INET, AF_INET6, E, IPPROTO_IPV6, IPV6_V6ONLY, MSG_DONTWAIT, MSG_ERRQUEUE, MSG_NOSIGNAL, POLLERR, POLLIN, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, errno, errnoName, libc } from './libc.js';

const lib = koffi.load('libc.so.6');
const sendto = lib.func('intptr_t sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t alen)') as (
  fd: number,
  buf: Uint8Array,
  len: number,
  flags: number,
  addr: Uint8Array,
  alen: number,
) => number;
const recvfrom = lib.func('intptr_t recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *alen)') as (
  fd: number,
  buf: Uint8Array,
  len: number,
  flags: number,
  addr: Uint8Array,
  alen: Uint32Array,
) => number;

const SOL_IP = 0;
const IP_FREEBIND = 15;
const IP_RECVERR = 11;
const IPV6_FREEBIND = 78;
const IPV6_RECVERR = 25;
/** Stand-ins kept open between cases (each is one fd); beyond this they are all closed first. */
const MAX_STANDINS = 256;
/**
 * How long to wait at most for a datagram the loopback should already have delivered (anomalies
 * only); the wait ends sooner once nothing is in flight in the namespace (kf_settle).
 */
const LATE_DELIVERY_MS = 20;

/** What the layer needs of a socket: its fd and family. */
export interface UdpRec {
  readonly fd: number;
  readonly family: Family;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class KernelDns {
  /** Stand-in fds by address text (IPv4, or native IPv6). */
  private readonly standins = new Map<string, number>();
  private readonly buf = new Uint8Array(2048);
  private readonly sa = new Uint8Array(SOCKADDR_MAX);
  private readonly from = new Uint8Array(SOCKADDR_MAX);
  private readonly len = new Uint32Array(1);
  /** takeErrors' own buffers: it runs between a recvfrom and the answer sent to its `from`. */
  private readonly errBuf = new Uint8Array(64);
  private readonly errAt = new Uint8Array(SOCKADDR_MAX);
  private readonly errLen = new Uint32Array(1);
  private readonly one = new Int32Array([1]);
  /** The current case sends or receives datagrams (prepare). */
  private active = false;
  private pollFds = new Uint8Array(0);
  private addrs: string[] = [];
  /** Stand-in datagrams sent to each client port and not yet received. */
  private readonly owed = new Map<number, number>();
  private readonly clientPoll = new Uint8Array(8);
  /** Bounded waits for a late delivery so far (none on the normal path; the worker's info reports them). */
  lateWaits = 0;

  constructor(
    private readonly env: Environment,
    private readonly fast: Pick<FastPath, 'settle'>,
  ) {}

  /** Every address a case's queries and datagrams may reach, stand-ins opened and drained. */
  prepare(c: Case): void {
    this.owed.clear();
    // Only cases that receive or name datagrams need answers; the others never read them.
    this.active = c.ops.some((op) => op.op === 'sendto' || op.op === 'recvfrom' || op.op === 'deliver');
    if (!this.active) return;
    const addrs = new Set<string>();
    const add = (text: string | null) => {
      if (text === null) return;
      const inner = v4MappedInner(text) ?? text;
      const family: Family = inner.includes(':') ? 'inet6' : 'inet';
      // A query to the any-address goes to loopback: the stand-in is there.
      const plain = kernelPeer(family, { addr: inner, port: 0 }).addr;
      if (routable(this.env, family, { addr: plain, port: 0 })) addrs.add(canonicalSockText(family, plain));
    };
    const proxies = (s: Case['state']) => {
      for (const b of s.backends) if (b.uid === DNS_PROXY_UID && (isIPv4Form(b.addr) || b.addr.includes(':'))) add(b.addr);
    };
    proxies(c.state);
    for (const op of c.ops) {
      if (op.op === 'sendto') {
        add(op.dest.addr);
        // The any-address of a socket with an IPv4 source (connected: the pod's) goes there.
        if ((v4MappedInner(op.dest.addr) ?? op.dest.addr) === ANY_ADDRESS.inet) add(this.env.podAddress.inet);
      } else if (op.op === 'deliver') add(op.from.addr);
      else if (op.op === 'connect' && op.dest.port === DNS_PORT) add(op.dest.addr);
      // A bound socket's any-address queries go to its own address.
      else if (op.op === 'socket' && op.bindTo !== undefined) add(op.bindTo);
      else if (op.op === 'apply') proxies(op.state);
    }
    if (this.standins.size + addrs.size > MAX_STANDINS) this.close();
    for (const a of addrs) this.standin(a);
    this.pollSet();
    this.drainAll();
  }

  /**
   * Empties the stand-ins: one poll finds those holding anything (a datagram, or an error a
   * recvfrom would report), so an empty one costs no recvfrom that finds nothing.
   */
  private drainAll(): void {
    const n = this.addrs.length;
    if (n === 0) return;
    const v = this.clearRevents();
    const rc = libc.poll(this.pollFds, n, 0);
    if (rc === 0) return;
    // A failed poll tells nothing: drain them all, as without it.
    for (let i = 0; i < n; i++) if (rc < 0 || v.getInt16(i * 8 + 6, true) !== 0) this.drain(v.getInt32(i * 8, true));
  }

  /** The stand-ins' pollfds with every revents cleared, for a poll or a kf_settle to fill. */
  private clearRevents(): DataView {
    const v = new DataView(this.pollFds.buffer);
    for (let i = 0; i < this.addrs.length; i++) v.setInt16(i * 8 + 6, 0, true);
    return v;
  }

  /** One pollfd (fd, POLLIN) per stand-in, in the map's order. */
  private pollSet(): void {
    const n = this.standins.size;
    if (this.pollFds.length < n * 8) this.pollFds = new Uint8Array(n * 8);
    const v = new DataView(this.pollFds.buffer);
    let i = 0;
    for (const fd of this.standins.values()) {
      v.setInt32(i * 8, fd, true);
      v.setInt16(i * 8 + 4, POLLIN, true);
      v.setInt16(i * 8 + 6, 0, true);
      i++;
    }
    this.addrs = [...this.standins.keys()];
  }

  /** The stand-in at `addr`:53, opened on first use. */
  private standin(addr: string): number {
    let fd = this.standins.get(addr);
    if (fd !== undefined) return fd;
    fd = this.boundAt({ addr, port: DNS_PORT });
    this.standins.set(addr, fd);
    return fd;
  }

  /** A UDP socket bound to `at` (an address of the namespace), taking ICMP errors. */
  private boundAt(at: SockAddr): number {
    const family: Family = at.addr.includes(':') ? 'inet6' : 'inet';
    const fd = libc.socket(family === 'inet' ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new KmeshCheckError('worker', `socket() for the DNS stand-in failed (${errnoName(errno())})`);
    if (family === 'inet6') libc.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, this.one, 4);
    const level = family === 'inet' ? SOL_IP : IPPROTO_IPV6;
    libc.setsockopt(fd, level, family === 'inet' ? IP_FREEBIND : IPV6_FREEBIND, this.one, 4);
    libc.setsockopt(fd, level, family === 'inet' ? IP_RECVERR : IPV6_RECVERR, this.one, 4);
    const n = writeSockaddr(this.sa, family, at);
    if (libc.bind(fd, this.sa, n) < 0) {
      const err = errnoName(errno());
      libc.close(fd);
      throw new KmeshCheckError('worker', `binding the DNS stand-in to ${at.addr}:${at.port} failed (${err})`);
    }
    return fd;
  }

  private drain(fd: number): void {
    // Errors too: one left queued would later be taken as this case's datagram (owed is by port).
    this.takeErrors(fd);
    while (this.receiveAt(fd) >= 0);
  }

  /**
   * The next datagram on a stand-in's queue into buf and from (its length), or -1 once the queue
   * is empty. An error the recvfrom reports first is an ICMP error ahead of the datagrams
   * (IP_RECVERR): those are taken, and the queue read again.
   */
  private receiveAt(fd: number): number {
    this.len[0] = SOCKADDR_MAX;
    const n = recvfrom(fd, this.buf, this.buf.length, MSG_DONTWAIT, this.from, this.len);
    if (n >= 0 || errno() === E.EAGAIN) return n;
    this.takeErrors(fd);
    this.len[0] = SOCKADDR_MAX;
    return recvfrom(fd, this.buf, this.buf.length, MSG_DONTWAIT, this.from, this.len);
  }

  /** A stand-in's datagram to the address in `from`; the same retry as receiveAt when a pending error fails it. */
  private sendFrom(fd: number, d: Uint8Array, alen: number): boolean {
    if (sendto(fd, d, d.length, MSG_NOSIGNAL, this.from, alen) >= 0) return true;
    this.takeErrors(fd);
    return sendto(fd, d, d.length, MSG_NOSIGNAL, this.from, alen) >= 0;
  }

  /**
   * Answers what reached the stand-ins (one poll finds them); the last address a query reached,
   * or null. Outside a case that uses datagrams nobody reads the answers: nothing is done.
   */
  pump(): SockAddr | null {
    if (!this.active || this.addrs.length === 0) return null;
    const n = this.addrs.length;
    const v = this.clearRevents();
    if (libc.poll(this.pollFds, n, 0) <= 0) return null;
    let at: SockAddr | null = null;
    for (let i = 0; i < n; i++) {
      const revents = v.getInt16(i * 8 + 6, true);
      const fd = v.getInt32(i * 8, true);
      // First the errors: a pending one would fail the recvfrom below before the queued queries.
      if ((revents & POLLERR) !== 0) this.takeErrors(fd);
      if ((revents & POLLIN) === 0) continue;
      const addr = this.addrs[i]!;
      for (;;) {
        const n = this.receiveAt(fd);
        if (n < 0) break;
        at = { addr, port: DNS_PORT };
        const answer = enc.encode(dnsAnswerTo(dec.decode(this.buf.subarray(0, n))));
        if (this.sendFrom(fd, answer, this.len[0]!)) this.owe(readSockaddr(this.from).port);
      }
    }
    return at;
  }

  /**
   * The ICMP errors queued on a stand-in, each naming where a datagram it sent found no socket:
   * that datagram is owed no more. Taking the last one also clears the error a recvfrom would
   * otherwise report before the stand-in's queued queries.
   */
  private takeErrors(fd: number): void {
    for (;;) {
      this.errLen[0] = SOCKADDR_MAX;
      if (recvfrom(fd, this.errBuf, this.errBuf.length, MSG_ERRQUEUE | MSG_DONTWAIT, this.errAt, this.errLen) < 0) return;
      this.owe(readSockaddr(this.errAt).port, -1);
    }
  }

  /** takeErrors() on every stand-in that holds an error (one poll finds them). */
  private takeAllErrors(): void {
    const n = this.addrs.length;
    const v = this.clearRevents();
    if (libc.poll(this.pollFds, n, 0) <= 0) return;
    for (let i = 0; i < n; i++) if ((v.getInt16(i * 8 + 6, true) & POLLERR) !== 0) this.takeErrors(v.getInt32(i * 8, true));
  }

  /** Datagrams the stand-ins sent to a port and nobody has received yet. */
  private owe(port: number, n = 1): void {
    const left = (this.owed.get(port) ?? 0) + n;
    if (left > 0) this.owed.set(port, left);
    else this.owed.delete(port);
  }

  /**
   * Loopback delivers inside the sending syscall, unless the kernel defers its softirq work; when
   * nothing came where something is expected, wait for it a little (never on the normal path).
   */
  private waitReadable(fds: Uint8Array, n: number): boolean {
    this.lateWaits++;
    return this.fast.settle(fds, n, LATE_DELIVERY_MS) > 0;
  }

  /** pump(), and if no stand-in got anything, one short wait for a late delivery. */
  private pumpExpecting(): SockAddr | null {
    const at = this.pump();
    if (at !== null || this.addrs.length === 0) return at;
    this.clearRevents();
    if (!this.waitReadable(this.pollFds, this.addrs.length)) return null;
    return this.pump();
  }

  /** One query datagram to `dest` (checked by the runner). */
  sendto(r: UdpRec, dest: SockAddr, query: string): DatagramSent {
    const alen = writeSockaddr(this.sa, r.family, dest);
    const q = enc.encode(query);
    if (sendto(r.fd, q, q.length, MSG_NOSIGNAL, this.sa, alen) < 0) return { error: errnoName(errno()), arrivedAt: null };
    // A query to port 53 always has a stand-in where it may go; anything else may arrive nowhere.
    return { error: null, arrivedAt: dest.port === DNS_PORT ? this.pumpExpecting() : this.pump() };
  }

  recvfrom(r: UdpRec): DatagramReceived {
    const port = this.localPort(r);
    this.len[0] = SOCKADDR_MAX;
    let n = recvfrom(r.fd, this.buf, this.buf.length, MSG_DONTWAIT, this.from, this.len);
    let e = n < 0 ? errno() : 0;
    // Something was sent here and not received, nor came back as undeliverable: give a deferred
    // delivery its chance.
    if (e === E.EAGAIN && (this.owed.get(port) ?? 0) > 0) this.takeAllErrors();
    if (e === E.EAGAIN && (this.owed.get(port) ?? 0) > 0) {
      const v = new DataView(this.clientPoll.buffer);
      v.setInt32(0, r.fd, true);
      v.setInt16(4, POLLIN, true);
      v.setInt16(6, 0, true);
      if (this.waitReadable(this.clientPoll, 1)) {
        this.len[0] = SOCKADDR_MAX;
        n = recvfrom(r.fd, this.buf, this.buf.length, MSG_DONTWAIT, this.from, this.len);
        e = n < 0 ? errno() : 0;
      }
      // Dropped (a connected socket takes only its peer's datagrams): it will not come.
      this.owed.delete(port);
    }
    if (n < 0) {
      return { from: null, data: null, error: e === E.EAGAIN ? 'EAGAIN' : errnoName(e) };
    }
    this.owe(port, -1);
    const s = readSockaddr(this.from);
    return { from: { addr: s.addr, port: s.port }, data: dec.decode(this.buf.subarray(0, n)), error: null };
  }

  /**
   * The stand-in at `from` sends one datagram to the socket's port, in the stand-in's family: at
   * the socket's own address of that family when it has one, else (bound to a wildcard, or to an
   * address of the other family, which the kernel then finds no socket for) at the pod's address.
   * From a port other than 53, a socket bound there for this datagram alone sends it: one kept
   * open would take the datagrams a case sends to that port, which go nowhere otherwise.
   */
  deliver(r: UdpRec, from: SockAddr, data: string): string | null {
    this.len[0] = SOCKADDR_MAX;
    if (libc.getsockname(r.fd, this.sa, this.len) < 0) throw new KmeshCheckError('worker', `getsockname failed (${errnoName(errno())})`);
    const local = readSockaddr(this.sa);
    if (local.port === 0) return 'EDESTADDRREQ';
    this.owe(local.port);
    const family: Family = from.addr.includes(':') ? 'inet6' : 'inet';
    const inner = local.family === 'inet' ? local.addr : v4MappedInner(local.addr);
    const own = family === 'inet' ? inner : inner === null ? local.addr : null;
    const to = own !== null && own !== '0.0.0.0' && own !== '::' ? own : this.env.podAddress[family];
    const source: SockAddr = { addr: canonicalSockText(family, from.addr), port: from.port };
    const kept = from.port === DNS_PORT;
    const known = this.standins.size;
    const fd = kept ? this.standin(source.addr) : this.boundAt(source);
    if (this.standins.size !== known) this.pollSet();
    try {
      const alen = writeSockaddr(this.from, family, { addr: to, port: local.port });
      const d = enc.encode(data);
      if (!this.sendFrom(fd, d, alen)) throw new KmeshCheckError('worker', `the DNS stand-in could not send to ${to}:${local.port} (${errnoName(errno())})`);
      // An ICMP error already back (loopback answers inside the send) says the datagram is owed no more.
      if (!kept) this.takeErrors(fd);
    } finally {
      if (!kept) libc.close(fd);
    }
    return null;
  }

  /** The socket's local port (0 before it has one). */
  private localPort(r: UdpRec): number {
    this.len[0] = SOCKADDR_MAX;
    if (libc.getsockname(r.fd, this.sa, this.len) < 0) return 0;
    return readSockaddr(this.sa).port;
  }

  close(): void {
    for (const fd of this.standins.values()) libc.close(fd);
    this.standins.clear();
    this.addrs = [];
  }
}
