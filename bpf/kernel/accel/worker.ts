// The acceleration harness process, started as `unshare -n node dist/bpf/kernel/accel/worker.js`:
// makes and joins its own cgroup, loads and attaches ma_ops/ma_redirect there, then runs cases
// (each in two fresh private namespaces, see driver.ts) on length-prefixed JSON requests on
// stdin/stdout. Cleans up on `close`, end of stdin, SIGINT/SIGTERM/SIGHUP.

import { closeSync, openSync } from 'node:fs';
import { KmeshCheckError } from '../../../shared/errors.js';
import { cleanUpOnExit, errorReply } from '../worker-lifecycle.js';
import { createAndJoinCgroup, findCgroup2Mount, removeCgroup, sweepStaleCgroups } from '../cgroup.js';
import { FrameReader, frame } from '../protocol.js';
import { AccelDriver } from './driver.js';
import { loadAccel, type AccelObjectPaths, type LoadedAccel } from './loader.js';
import type { AccelRequest, AccelWorkerInfo } from './protocol.js';

console.log = console.error;
console.info = console.error;

let session: { root: string; cgroup: string; cgroupFd: number; dp: LoadedAccel | null; driver: AccelDriver | null } | null = null;
let cleaned = false;

function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  const s = session;
  if (!s) return;
  for (const f of [() => s.driver?.dispose(), () => s.dp?.close(), () => closeSync(s.cgroupFd)]) {
    try {
      f();
    } catch {
      // keep releasing the rest
    }
  }
  try {
    removeCgroup(s.root, s.cgroup);
  } catch (e) {
    process.stderr.write(`kmesh-check accel worker: ${(e as Error).message}\n`);
  }
}

function init(objects: AccelObjectPaths): AccelWorkerInfo {
  const root = findCgroup2Mount();
  sweepStaleCgroups(root);
  const cgroup = createAndJoinCgroup(root);
  session = { root, cgroup, cgroupFd: openSync(cgroup, 'r'), dp: null, driver: null };
  session.dp = loadAccel(objects, session.cgroupFd);
  session.driver = new AccelDriver(session.dp, { cgroupRoot: root, cgroup });
  return { pid: process.pid, cgroup };
}

function handle(req: AccelRequest): unknown {
  switch (req.type) {
    case 'init':
      return init(req.objects);
    case 'run': {
      const d = session?.driver;
      if (!d) throw new KmeshCheckError('worker', 'the acceleration worker is not initialised');
      return req.cases.map((c) => d.run(c));
    }
    case 'close':
      cleanup();
      return { closed: true };
    default:
      throw new KmeshCheckError('worker', `unknown request ${JSON.stringify((req as { type: unknown }).type)}`);
  }
}

const reader = new FrameReader();
process.stdin.on('data', (chunk: Buffer) => {
  for (const msg of reader.push(chunk)) {
    const req = msg as AccelRequest;
    try {
      process.stdout.write(frame({ ok: true, result: handle(req) }));
    } catch (e) {
      process.stdout.write(frame(errorReply(e)));
    }
    if (req.type === 'close') process.exit(0);
  }
});
cleanUpOnExit(cleanup);
