// Enrolment in the kernel: one TCP control connect to 0.0.0.2 or ::2 bound to each of the
// environment's enrolled locals, on port 929 (enrol) or 930 (withdraw). Nothing listens there,
// so the SYN goes out (sockops TCP_CONNECT_CB records or removes the local IP) and is refused.

import type { Family } from '../../model/domain.js';
import { CONTROL_ADDR, ControlPort } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { SOCKADDR_MAX, writeSockaddr } from '../codec/sockaddr.js';
import { AF_INET, AF_INET6, SOCK_CLOEXEC, SOCK_STREAM, errno, errnoName, libc } from './libc.js';

const ECONNREFUSED = 111;
const addr = new Uint8Array(SOCKADDR_MAX);

export function controlConnects(env: Environment, want: boolean): void {
  const port = want ? ControlPort.enrol : ControlPort.withdraw;
  for (const local of env.enrolledLocals) {
    const family: Family = local.includes(':') ? 'inet6' : 'inet';
    const fd = libc.socket(family === 'inet' ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new KmeshCheckError('worker', `control socket failed (${errnoName(errno())})`);
    const b = writeSockaddr(addr, family, { addr: local, port: 0 });
    if (libc.bind(fd, addr, b) < 0) {
      const err = errnoName(errno());
      libc.close(fd);
      throw new KmeshCheckError('environment', `cannot bind a control socket to ${local} (${err}): is it an address of the namespace?`);
    }
    const n = writeSockaddr(addr, family, { addr: CONTROL_ADDR[family], port });
    const rc = libc.connect(fd, addr, n);
    const err = rc < 0 ? errno() : 0;
    libc.close(fd);
    if (rc === 0 || err !== ECONNREFUSED) {
      throw new KmeshCheckError(
        'environment',
        `control connect from ${local} to ${CONTROL_ADDR[family]}:${port} ended with ${rc === 0 ? 'success' : errnoName(err)}, expected ECONNREFUSED: are the namespace routes in place?`,
      );
    }
  }
}
