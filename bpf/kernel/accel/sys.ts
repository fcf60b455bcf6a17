// The few system calls the acceleration driver needs beyond libc.ts: network namespaces for the
// calling thread (unshare, setns), interface flags (bring `lo` up without spawning `ip`), shutdown,
// and TCP_INFO. Namespace calls move only the calling thread, which is the thread that runs
// every koffi call here (kernel-notes.md); a socket keeps the namespace it was created in.

import { openSync, closeSync } from 'node:fs';
import koffi from 'koffi';
import { KmeshCheckError, NEEDS_ROOT } from '../../../shared/errors.js';
import { AF_INET, SOCK_DGRAM, SOL_SOCKET, SO_LINGER, errno, errnoName, libc } from '../libc.js';

const lib = koffi.load('libc.so.6');
const sys = {
  unshare: lib.func('int unshare(int flags)') as (flags: number) => number,
  setns: lib.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number,
  shutdown: lib.func('int shutdown(int fd, int how)') as (fd: number, how: number) => number,
};

const CLONE_NEWNET = 0x40000000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;
export const TCP_INFO = 11;
export const SO_NETNS_COOKIE = 71;
/** Offsets in struct tcp_info (uapi linux/tcp.h). */
export const TCPI_BYTES_ACKED = 120;
export const TCPI_BYTES_RECEIVED = 128;
const TCP_INFO_SIZE = 232;

/** An fd of the calling thread's network namespace. */
export function currentNetns(): number {
  return openSync('/proc/thread-self/ns/net', 'r');
}

export function enterNetns(fd: number): void {
  if (sys.setns(fd, CLONE_NEWNET) < 0) throw new KmeshCheckError('environment', `setns(CLONE_NEWNET) failed (${errnoName(-errno())}): ${NEEDS_ROOT}`);
}

function bringLoopbackUp(): void {
  const fd = libc.socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) throw new KmeshCheckError('environment', `socket() for SIOCSIFFLAGS failed (${errnoName(-errno())})`);
  try {
    const ifr = new Uint8Array(40);
    ifr.set(Buffer.from('lo'));
    if ((libc.ioctl(fd, SIOCGIFFLAGS, 'void *', ifr) as number) < 0) throw new KmeshCheckError('environment', `SIOCGIFFLAGS lo failed (${errnoName(-errno())})`);
    const dv = new DataView(ifr.buffer);
    dv.setUint16(16, dv.getUint16(16, true) | IFF_UP, true);
    if ((libc.ioctl(fd, SIOCSIFFLAGS, 'void *', ifr) as number) < 0) throw new KmeshCheckError('environment', `SIOCSIFFLAGS lo up failed (${errnoName(-errno())}): ${NEEDS_ROOT}`);
  } finally {
    libc.close(fd);
  }
}

/**
 * A fresh private namespace with `lo` up, returned as an fd; the calling thread is back in
 * `home` afterwards. Only loopback exists there: nothing leaves the host.
 */
export function newPrivateNetns(home: number): number {
  if (sys.unshare(CLONE_NEWNET) < 0) throw new KmeshCheckError('privileges', `unshare(CLONE_NEWNET) failed (${errnoName(-errno())}): ${NEEDS_ROOT}`);
  let fd: number;
  try {
    fd = currentNetns();
    bringLoopbackUp();
  } finally {
    enterNetns(home);
  }
  return fd;
}

/** Runs `f` with the calling thread in namespace `ns`, then returns to `home`. */
export function inNetns<T>(ns: number, home: number, f: () => T): T {
  enterNetns(ns);
  try {
    return f();
  } finally {
    enterNetns(home);
  }
}

export function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

export const SHUT_WR = 1;
export function shutdown(fd: number, how: number): number {
  return sys.shutdown(fd, how);
}

/** tcpi_bytes_acked and tcpi_bytes_received of a TCP socket. */
export function tcpBytes(fd: number): { acked: number; received: number } {
  const info = new Uint8Array(TCP_INFO_SIZE);
  const len = new Uint32Array([info.length]);
  if (libc.getsockopt(fd, 6, TCP_INFO, info, len) < 0) throw new KmeshCheckError('environment', `getsockopt(TCP_INFO) failed (${errnoName(-errno())})`);
  const dv = new DataView(info.buffer);
  return { acked: Number(dv.getBigUint64(TCPI_BYTES_ACKED, true)), received: Number(dv.getBigUint64(TCPI_BYTES_RECEIVED, true)) };
}

/** tcpi_state, the socket's TCP state. */
export function tcpState(fd: number): number {
  const info = new Uint8Array(TCP_INFO_SIZE);
  const len = new Uint32Array([info.length]);
  if (libc.getsockopt(fd, 6, TCP_INFO, info, len) < 0) throw new KmeshCheckError('environment', `getsockopt(TCP_INFO) failed (${errnoName(-errno())})`);
  return info[0]!;
}

/** tcpi_state values (the kernel's TCP states). */
export const TCP_ESTABLISHED = 1;
export const TCP_CLOSE = 7;

/** Waits (bounded) until a TCP socket is in `state`; whether it got there. */
export function awaitState(fd: number, state: number, boundMs = 1000): boolean {
  const until = Date.now() + boundMs;
  for (;;) {
    if (tcpState(fd) === state) return true;
    if (Date.now() > until) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  }
}

/**
 * Aborts a TCP connection from `fd` (SO_LINGER on, timeout 0: close sends a reset) and returns once
 * the reset has taken `peer` to CLOSE, so that closing the peer afterwards sends nothing of its own.
 */
export function abortClose(fd: number, peer: number): void {
  if (libc.setsockopt(fd, SOL_SOCKET, SO_LINGER, new Int32Array([1, 0]), 8) < 0) throw new KmeshCheckError('environment', `setting SO_LINGER failed (${errnoName(errno())})`);
  libc.close(fd);
  if (!awaitState(peer, TCP_CLOSE)) throw new KmeshCheckError('environment', 'the peer of an aborted connection did not take its reset within 1 s');
}

/**
 * Waits (bounded) until an accepted socket is ESTABLISHED. A child enters the accept queue still
 * in SYN_RECV when the handshake's last ACK is processed on another CPU; the kernel runs the
 * PASSIVE_ESTABLISHED callback before it sets ESTABLISHED, so once this returns the sockops
 * programs have seen the socket. On loopback it is nearly always so at once.
 */
export function awaitEstablished(fd: number, boundMs = 1000): boolean {
  return awaitState(fd, TCP_ESTABLISHED, boundMs);
}

/** The network namespace cookie of a socket's namespace (SO_NETNS_COOKIE). */
export function netnsCookie(fd: number): bigint {
  const v = new Uint8Array(8);
  const len = new Uint32Array([8]);
  if (libc.getsockopt(fd, 1, SO_NETNS_COOKIE, v, len) < 0) throw new KmeshCheckError('environment', `getsockopt(SO_NETNS_COOKIE) failed (${errnoName(-errno())})`);
  return new DataView(v.buffer).getBigUint64(0, true);
}
