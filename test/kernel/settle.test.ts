// kf_settle, the shim's bounded wait for what loopback should already have delivered: it answers
// as poll() does, but a wait for something that will not come ends once nothing is in flight in
// the namespace instead of running to its bound. Run in a child process of its own under
// `unshare -n` (the counters it reads are the namespace's), with a bound far beyond the child's
// time limit, so a wait run to its bound fails the test. A signal (a profiler's SIGPROF) must not
// end a wait either: that would look like a data path that delivered nothing.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';

const dist = join(packageRoot(), 'dist/bpf');
const BOUND_MS = 120_000;

const CHILD = `
import { execFileSync, spawn } from 'node:child_process';
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
// Signals every millisecond or so while waits for nothing run: none may end one early (-1, EINTR).
process.on('SIGUSR2', () => {});
const signaller = spawn('sh', ['-c', 'while kill -USR2 ' + process.pid + '; do sleep 0.001; done'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 50));
const quiet = libc.socket(AF_INET, SOCK_DGRAM, 0);
if (libc.bind(quiet, sa, at(5302)) < 0) throw new Error('bind');
const answers = new Set();
for (let i = 0; i < 100; i++) answers.add(fast.settle(pollfd(quiet, POLLIN), 1, ${BOUND_MS}));
signaller.kill();
out.underSignals = [...answers];
process.stdout.write(JSON.stringify(out));
`;

describe('kf_settle (root, private namespace)', () => {
  it('answers as poll() when something is ready, ends a wait for what will not come without running to its bound, and is not cut short by signals', () => {
    const r = spawnSync('unshare', ['-n', process.execPath, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 30_000 });
    expect(r.error, r.stderr).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toEqual({ nothingSent: 0, datagramSent: 1, connectRc: 0, connected: 1, notAccepted: 0, underSignals: [0] });
  }, 40_000);
});
