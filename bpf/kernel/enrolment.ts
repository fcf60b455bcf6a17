// Enrolment in the kernel: one TCP control connect to 0.0.0.2 or ::2 bound to each of the
// environment's enrolled locals, on port 929 (enrol) or 930 (withdraw). Nothing listens there,
// so the SYN goes out (sockops TCP_CONNECT_CB records or removes the local IP) and is refused.
// Each connect is one shim call (kf_control); whole cases make the same calls inside kf_run.
// Enrolment by writing (Case.enrolmentWrite) writes km_manage instead, keyed by this namespace's
// cookie as SO_NETNS_COOKIE tells it.

import type { Family } from '../../model/domain.js';
import { CONTROL_ADDR, ControlPort } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { writeSockaddr } from '../codec/sockaddr.js';
import type { FastPath } from './fastpath.js';
import { AF_INET, AF_INET6, SOCK_CLOEXEC, SOCK_DGRAM, SOL_SOCKET, SO_NETNS_COOKIE, errnoName, libc } from './libc.js';

/** Bytes of a control sockaddr in a kf_run program (sockaddr_in6). */
export const CONTROL_SOCKADDR = 28;

/** One control connect: from `local` (bound, port 0) to the control address. */
export interface ControlConnect {
  readonly local: string;
  readonly family: Family;
  readonly domain: number;
  readonly port: number;
  readonly bind: Uint8Array;
  readonly dest: Uint8Array;
}

const plans = new WeakMap<Environment, Record<'true' | 'false', readonly ControlConnect[]>>();

/** The control connects that enrol (`want`) or withdraw, encoded once per environment. */
export function controlPlan(env: Environment, want: boolean): readonly ControlConnect[] {
  let p = plans.get(env);
  if (!p) {
    const of = (w: boolean) =>
      env.enrolledLocals.map((local): ControlConnect => {
        const family: Family = local.includes(':') ? 'inet6' : 'inet';
        const port = w ? ControlPort.enrol : ControlPort.withdraw;
        const bind = new Uint8Array(CONTROL_SOCKADDR);
        const dest = new Uint8Array(CONTROL_SOCKADDR);
        const b = writeSockaddr(bind, family, { addr: local, port: 0 });
        const d = writeSockaddr(dest, family, { addr: CONTROL_ADDR[family], port });
        return { local, family, domain: family === 'inet' ? AF_INET : AF_INET6, port, bind: bind.subarray(0, b), dest: dest.subarray(0, d) };
      });
    p = { true: of(true), false: of(false) };
    plans.set(env, p);
  }
  return p[want ? 'true' : 'false'];
}

/** The error of a control connect that failed at `stage` (kf_control: 1 socket, 2 bind, 3 connect not refused). */
export function controlError(c: ControlConnect, stage: number, err: number): KmeshCheckError {
  if (stage === 1) return new KmeshCheckError('worker', `control socket failed (${errnoName(err)})`);
  if (stage === 2) return new KmeshCheckError('environment', `cannot bind a control socket to ${c.local} (${errnoName(err)}): is it an address of the namespace?`);
  return new KmeshCheckError(
    'environment',
    `control connect from ${c.local} to ${CONTROL_ADDR[c.family]}:${c.port} ended with ${err === 0 ? 'success' : errnoName(err)}, expected ECONNREFUSED: are the namespace routes in place?`,
  );
}

const err = new Int32Array(1);

export function controlConnects(env: Environment, want: boolean, fast: FastPath): void {
  for (const c of controlPlan(env, want)) {
    const stage = fast.control(c.domain, c.bind, c.bind.length, c.dest, c.dest.length, err);
    if (stage !== 0) throw controlError(c, stage, err[0]!);
  }
}

/** The cookie of the network namespace the calling thread is in (SO_NETNS_COOKIE, Linux 5.14). */
export function netnsCookie(): bigint {
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new KmeshCheckError('worker', 'socket() for SO_NETNS_COOKIE failed');
  try {
    const val = new Uint8Array(8);
    const len = new Uint32Array([8]);
    if (libc.getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, val, len) !== 0 || len[0] !== 8) {
      throw new KmeshCheckError('environment', 'getsockopt(SO_NETNS_COOKIE) failed: enrolment by km_manage writes needs Linux 5.14 or newer');
    }
    return new DataView(val.buffer).getBigUint64(0, true);
  } finally {
    libc.close(fd);
  }
}
