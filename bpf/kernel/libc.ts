// libc through koffi: the socket calls of the harness's hot loop. Buffers are passed as `void *`
// (koffi hands the memory itself to C), so callers preallocate and reuse them.

import koffi from 'koffi';

const lib = koffi.load('libc.so.6');

export const libc = {
  socket: lib.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number,
  bind: lib.func('int bind(int fd, void *addr, uint32_t len)') as (fd: number, addr: Uint8Array, len: number) => number,
  listen: lib.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number,
  connect: lib.func('int connect(int fd, void *addr, uint32_t len)') as (fd: number, addr: Uint8Array, len: number) => number,
  getpeername: lib.func('int getpeername(int fd, void *addr, void *len)') as (fd: number, addr: Uint8Array, len: Uint32Array) => number,
  getsockname: lib.func('int getsockname(int fd, void *addr, void *len)') as (fd: number, addr: Uint8Array, len: Uint32Array) => number,
  setsockopt: lib.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)') as (fd: number, level: number, name: number, val: Uint8Array | Int32Array, len: number) => number,
  getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *val, void *len)') as (fd: number, level: number, name: number, val: Uint8Array | Int32Array, len: Uint32Array) => number,
  accept4: lib.func('int accept4(int fd, void *addr, void *len, int flags)') as (fd: number, addr: Uint8Array | null, len: Uint32Array | null, flags: number) => number,
  recv: lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)') as (fd: number, buf: Uint8Array, len: number, flags: number) => number,
  send: lib.func('intptr_t send(int fd, void *buf, size_t len, int flags)') as (fd: number, buf: Uint8Array, len: number, flags: number) => number,
  close: lib.func('int close(int fd)') as (fd: number) => number,
  poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)') as (fds: Uint8Array, n: number, timeout: number) => number,
  ioctl: lib.func('int ioctl(int fd, unsigned long req, ...)'),
  vsnprintf: lib.func('int vsnprintf(void *buf, size_t size, void *fmt, void *args)') as (buf: Uint8Array, size: number, fmt: unknown, args: unknown) => number,
  getpid: lib.func('int getpid(void)') as () => number,
};

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_LINGER = 13;
export const SO_SNDTIMEO = 21;
export const SO_COOKIE = 57;
export const SO_NETNS_COOKIE = 71;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_ERRQUEUE = 0x2000;
export const POLLIN = 1;
export const POLLERR = 8;
export const SO_SNDBUF = 7;
export const SO_SNDBUFFORCE = 32;

export { errnoName } from '../runner/errno.js';

/**
 * Lets socket `fd` hold `bytes` unsent (what the peer has not read yet): above the system's
 * wmem_max when privileged (SO_SNDBUFFORCE), else as far as it allows. Best effort.
 */
export function growSendBuffer(fd: number, bytes: number): void {
  const v = new Int32Array([bytes]);
  if (libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, v, 4) < 0) libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, v, 4);
}

export function errno(): number {
  return koffi.errno();
}

/**
 * poll() for up to `ms`, waiting again for what is left when a signal cuts it short (a profiler's
 * SIGPROF): poll() is never restarted, and a wait ended so would look like nothing arriving.
 */
export function pollFor(fds: Uint8Array, n: number, ms: number): number {
  const end = performance.now() + ms;
  for (;;) {
    const rc = libc.poll(fds, n, Math.max(0, Math.ceil(end - performance.now())));
    if (rc >= 0 || errno() !== E.EINTR) return rc;
  }
}

export const E = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  E2BIG: 7,
  EAGAIN: 11,
  EACCES: 13,
  EINVAL: 22,
  ENOSPC: 28,
  EOPNOTSUPP: 95,
  EISCONN: 106,
  ENOTSUPP: 524,
} as const;
