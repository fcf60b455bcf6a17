// kf_settle, the shim's bounded wait for what loopback should already have delivered: it answers
// as poll() does, but a wait for something that will not come ends once nothing is in flight in
// the namespace instead of running to its bound. Run in a child process of its own under
// `unshare -n` (the counters it reads are the namespace's), with a bound far beyond the child's
// time limit, so a wait run to its bound fails the test.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';

const dist = join(packageRoot(), 'dist/bpf');
const BOUND_MS = 120_000;

const CHILD = `
import { execFileSync } from 'node:child_process';
import { fastPath } from '${dist}/kernel/fastpath.js';
import { libc, AF_INET, SOCK_DGRAM, SOCK_STREAM, POLLIN } from '${dist}/kernel/libc.js';
import { writeSockaddr } from '${dist}/codec/sockaddr.js';
execFileSync('ip', ['link', 'set', 'lo', 'up']);
const fast = fastPath();
const POLLOUT = 4;
const sa = new Uint8Array(128);
const at = (port) => writeSockaddr(sa, 'inet', { addr: '127.0.0.1', port });
const pollfd = (fd, events) => { const p = new Uint8Array(8); const v = new DataView(p.buffer); v.setInt32(0, fd, true); v.setInt16(4, events, true); return p; };
const out = {};
const a = libc.socket(AF_INET, SOCK_DGRAM, 0);
if (libc.bind(a, sa, at(5301)) < 0) throw new Error('bind');
out.nothingSent = fast.settle(pollfd(a, POLLIN), 1, ${BOUND_MS});
const b = libc.socket(AF_INET, SOCK_DGRAM, 0);
libc.connect(b, sa, at(5301));
libc.send(b, new Uint8Array([1]), 1, 0);
out.datagramSent = fast.settle(pollfd(a, POLLIN), 1, ${BOUND_MS});
const l = libc.socket(AF_INET, SOCK_STREAM, 0);
libc.bind(l, sa, at(8080));
libc.listen(l, 8);
const c = libc.socket(AF_INET, SOCK_STREAM, 0);
out.connectRc = libc.connect(c, sa, at(8080));
out.connected = fast.settle(pollfd(c, POLLOUT), 1, ${BOUND_MS});
out.notAccepted = fast.settle(pollfd(c, POLLIN), 1, ${BOUND_MS});
process.stdout.write(JSON.stringify(out));
`;

describe('kf_settle (root, private namespace)', () => {
  it('answers as poll() when something is ready, and ends a wait for what will not come without running to its bound', () => {
    const r = spawnSync('unshare', ['-n', process.execPath, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 30_000 });
    expect(r.error, r.stderr).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    expect(out).toEqual({ nothingSent: 0, datagramSent: 1, connectRc: 0, connected: 1, notAccepted: 0 });
  }, 40_000);
});
