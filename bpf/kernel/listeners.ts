// The worker's listeners: one dual-stack TCP listener per port the running case names
// (bpf/runner/listening.ts is the policy), kept open across cases up to a bound, and the
// accepted server sides of client connections, matched to their clients by address.

import type { Backend, Case, Operation, Service } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { SOCKADDR_MAX, sockaddrKey, writeSockaddr } from '../codec/sockaddr.js';
import { backendPorts, namedPorts, operationPorts, servicePorts } from '../runner/listening.js';
import type { FastPath } from './fastpath.js';
import { AF_INET6, IPPROTO_IPV6, IPV6_V6ONLY, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET, SO_LINGER, SO_REUSEADDR, errno, errnoName, libc } from './libc.js';

const LISTEN_BACKLOG = 4096;
const MAX_LISTENERS = 4000;

type Named = Service | Backend | readonly Operation[];

export class Listeners {
  private readonly closed: ReadonlySet<number>;
  private readonly byPort = new Map<number, number>();
  /** Accepted server sides no client claimed yet, by the client's address (sockaddrKey). */
  private readonly pending = new Map<string, number>();
  /** Services, backends and op lists whose ports have listeners (forgotten when any is dropped). */
  private ensured = new WeakSet<object>();
  private drops = 0;
  private readonly addr = new Uint8Array(SOCKADDR_MAX);
  private readonly acceptAddr = new Uint8Array(SOCKADDR_MAX);
  private readonly len = new Uint32Array(1);
  private readonly one = new Int32Array([1]);
  private readonly zero = new Int32Array([0]);
  /** SO_LINGER {1, 0}: closing sends RST and leaves no TIME_WAIT. */
  readonly linger = new Int32Array([1, 0]);

  constructor(
    closedPorts: readonly number[],
    private readonly fast: FastPath,
  ) {
    this.closed = new Set(closedPorts);
  }

  get count(): number {
    return this.byPort.size;
  }

  fdOf(port: number): number | undefined {
    return this.byPort.get(port);
  }

  /** Whether the case's ports listen (then its entities are remembered as done). */
  ready(c: Case): boolean {
    const fresh = this.freshOf(c);
    if (fresh.length === 0) return true;
    for (const p of portsOf(fresh)) if (!this.closed.has(p) && !this.byPort.has(p)) return false;
    for (const x of fresh) this.ensured.add(x);
    return true;
  }

  /**
   * Opens listeners on every port the case names. Entities and operation lists are shared between
   * the cases of a batch (bpf/codec/case-wire.ts): each one is looked at once while its listeners
   * stay open.
   */
  listen(c: Case): void {
    const fresh = this.freshOf(c);
    if (fresh.length === 0) return;
    const dropsBefore = this.drops;
    const keep = (): ReadonlySet<number> => namedPorts(c);
    for (const p of portsOf(fresh)) this.ensure(p, keep);
    if (this.drops === dropsBefore) for (const x of fresh) this.ensured.add(x);
  }

  /** Opens a listener on `port` unless it has one; `keep` gives the ports the current case needs. */
  ensure(port: number, keep?: () => ReadonlySet<number>): void {
    if (this.closed.has(port) || this.byPort.has(port)) return;
    if (this.byPort.size >= MAX_LISTENERS) this.drop(keep?.());
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
    this.byPort.set(port, fd);
    this.fast.setListener(port, fd);
  }

  private drop(keep?: ReadonlySet<number>): void {
    // Oldest first (Map keeps insertion order); a later case reopens what it needs.
    this.drops++;
    this.ensured = new WeakSet<object>();
    let n = this.byPort.size - MAX_LISTENERS / 2;
    for (const [port, fd] of this.byPort) {
      if (n <= 0) break;
      if (keep?.has(port)) continue;
      n--;
      this.acceptFrom(fd, null);
      libc.close(fd);
      this.byPort.delete(port);
      this.fast.setListener(port, -1);
    }
  }

  private freshOf(c: Case): Named[] {
    const st = c.state;
    const fresh: Named[] = [];
    for (const s of st.services) if (!this.ensured.has(s)) fresh.push(s);
    for (const b of st.backends) if (!this.ensured.has(b)) fresh.push(b);
    if (!this.ensured.has(c.ops)) fresh.push(c.ops);
    return fresh;
  }

  /**
   * Accepts from a listener until the connection of `want` (a sockaddrKey) comes out or the queue
   * is empty; connections of other clients wait in `pending`. Returns the accepted fd or -1.
   */
  acceptFrom(lfd: number, want: string | null): number {
    for (;;) {
      this.len[0] = SOCKADDR_MAX;
      const fd = libc.accept4(lfd, this.acceptAddr, this.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return -1;
      const key = sockaddrKey(this.acceptAddr);
      if (key === want) return fd;
      this.park(key, fd);
    }
  }

  /** Keeps the server side of a connection no client has claimed yet. */
  park(key: string, fd: number): void {
    const old = this.pending.get(key);
    if (old !== undefined) libc.close(old);
    this.pending.set(key, fd);
  }

  get anyPending(): boolean {
    return this.pending.size > 0;
  }

  /** The accepted server side of the client at `local` (sockaddr) connected to `peer`, or -1. */
  serverOf(peer: Uint8Array, local: Uint8Array): number {
    const key = sockaddrKey(local);
    const fd = this.pending.get(key);
    if (fd !== undefined) {
      this.pending.delete(key);
      return fd;
    }
    const lfd = this.byPort.get(portOf(peer));
    return lfd === undefined ? -1 : this.acceptFrom(lfd, key);
  }

  /** Closes the server sides no client claimed (at the end of each case). */
  closePending(): void {
    for (const fd of this.pending.values()) libc.close(fd);
    this.pending.clear();
  }

  close(): void {
    this.closePending();
    for (const [port, fd] of this.byPort) {
      libc.close(fd);
      this.fast.setListener(port, -1);
    }
    this.byPort.clear();
  }
}

function portsOf(fresh: readonly Named[]): Set<number> {
  const ports = new Set<number>();
  for (const x of fresh) {
    if (Array.isArray(x)) operationPorts(x as readonly Operation[], ports);
    else if ('servicePorts' in x) servicePorts(x, ports);
    else backendPorts(x as Backend, ports);
  }
  return ports;
}

export function portOf(sa: Uint8Array): number {
  return ((sa[2] ?? 0) << 8) | (sa[3] ?? 0);
}
