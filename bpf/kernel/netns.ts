// The private network namespace the worker runs in (started as `unshare -n`): only `lo`, the
// pod's addresses on it, and the environment's local prefixes routed to lo as AnyIP routes whose
// preferred source is the pod address, so that every harness socket's local IP is the pod's
// (sockops records it at the enrolment connect and checks it at ACTIVE_ESTABLISHED).
//
// Measured on 6.18: local routes for 0.0.0.2/32 and ::2/128 are accepted; a TCP connect there
// sends a SYN (TCP_CONNECT_CB fires) and is refused with ECONNREFUSED, from the pod address.
// ::1 keeps its own source unless its address is removed and re-added as a route with `src`.
// One exception the routes cannot change: a connect to 0.0.0.0 (or ::ffff:0.0.0.0) is turned
// into 127.0.0.1 -> 127.0.0.1 by the kernel before any route lookup; the harness therefore also
// enrols 127.0.0.1 (enrolment.ts).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseAddress } from '../../model/address.js';
import type { Environment } from '../../model/environment.js';
import { KmeshCheckError, NEEDS_ROOT } from '../../shared/errors.js';
import type { Family } from '../../model/domain.js';
import { SOCKADDR_MAX, readSockaddr, writeSockaddr } from '../codec/sockaddr.js';
import { AF_INET, AF_INET6, SOCK_CLOEXEC, SOCK_DGRAM, errno, errnoName, libc } from './libc.js';

/** The `ip -batch` lines that build `env` inside a fresh namespace. */
export function namespaceCommands(env: Environment): string[] {
  const lines = ['link set lo up', `addr add ${env.podAddress.inet}/32 dev lo`, `addr add ${env.podAddress.inet6}/128 dev lo nodad`];
  const v6Loopback = env.localPrefixes.some((p) => p.split('/')[0] === '::1');
  // The ::1 address route has no preferred source; replace it by one that has.
  if (v6Loopback) lines.push('addr del ::1/128 dev lo');
  for (const prefix of env.localPrefixes) {
    const v4 = parseAddress(prefix.split('/')[0] ?? '').length === 4;
    const src = v4 ? env.podAddress.inet : env.podAddress.inet6;
    lines.push(`route replace local ${prefix} dev lo src ${src} table local`);
  }
  // The kernel's own 127.0.0.1/32 route is more specific than 127.0.0.0/8: give it the pod source too.
  if (env.localPrefixes.includes('127.0.0.0/8')) {
    lines.push(`route replace local 127.0.0.1 dev lo proto kernel scope host src ${env.podAddress.inet} table local`);
  }
  return lines;
}

/** The namespace must be private: refuse to touch the host's network. */
export function assertPrivateNamespace(): void {
  const links = readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]?.trim())
    .filter((n): n is string => !!n);
  if (links.some((n) => n !== 'lo')) {
    throw new KmeshCheckError('environment', `the worker is not in a private network namespace (links: ${links.join(', ')}): start it with unshare -n`);
  }
}

export function setupNamespace(env: Environment): void {
  assertPrivateNamespace();
  const script = namespaceCommands(env).join('\n') + '\n';
  try {
    execFileSync('ip', ['-batch', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; code?: string };
    if (err.code === 'ENOENT') throw new KmeshCheckError('environment', 'the ip command (iproute2) is missing: apt-get install iproute2');
    const text = (err.stderr?.toString() ?? String(e)).trim().split('\n')[0] ?? '';
    if (/Operation not permitted/.test(text)) throw new KmeshCheckError('privileges', `ip: ${text}: ${NEEDS_ROOT}`);
    throw new KmeshCheckError('environment', `building the namespace failed: ip: ${text}`);
  }
}

/** Checks that sockets get the pod address as their local IP (the design's premise). */
export function checkLocalAddresses(samples: ReadonlyArray<{ family: Family; dest: string; local: string }>): void {
  const addr = new Uint8Array(SOCKADDR_MAX);
  const local = new Uint8Array(SOCKADDR_MAX);
  const len = new Uint32Array(1);
  for (const s of samples) {
    const fd = libc.socket(s.family === 'inet' ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const n = writeSockaddr(addr, s.family, { addr: s.dest, port: 9 });
    const rc = libc.connect(fd, addr, n);
    len[0] = SOCKADDR_MAX;
    libc.getsockname(fd, local, len);
    libc.close(fd);
    const got = readSockaddr(local).addr;
    if (rc < 0 || got !== s.local) {
      throw new KmeshCheckError('environment', `a socket to ${s.dest} gets local address ${rc < 0 ? errnoName(errno()) : got}, expected ${s.local}: the namespace routes are not as designed`);
    }
  }
}
