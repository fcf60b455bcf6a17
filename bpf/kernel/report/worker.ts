// One-shot report harness, run as `unshare -n node dist/bpf/kernel/report/worker.js`: reads
// {objects, cases, localPorts?} as JSON on stdin, makes and joins its own cgroup, loads and attaches the data
// path with its cgroup_skb object, runs the cases (driver.ts) and writes
// {ok, observations} or {ok: false, error} as JSON on stdout. Cleans up on exit.

import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { KmeshCheckError, isKmeshCheckError } from '../../../shared/errors.js';
import { createAndJoinCgroup, findCgroup2Mount, removeCgroup, sweepStaleCgroups } from '../cgroup.js';
import type { ReportCase } from '../../../model/report/domain.js';
import { ReportDriver } from './driver.js';
import { loadReportPath, type ReportObjectPaths } from './loader.js';

console.log = console.error;

function main(): unknown {
  const input = JSON.parse(readFileSync(0, 'utf8')) as { objects: ReportObjectPaths; cases: ReportCase[]; localPorts?: [number, number] };
  // This process's own namespace (unshare -n): the setting goes with it.
  if (input.localPorts) writeFileSync('/proc/sys/net/ipv4/ip_local_port_range', `${input.localPorts[0]} ${input.localPorts[1]}\n`);
  const root = findCgroup2Mount();
  sweepStaleCgroups(root);
  const cgroup = createAndJoinCgroup(root);
  const cgroupFd = openSync(cgroup, 'r');
  let dp: ReturnType<typeof loadReportPath> | null = null;
  let driver: ReportDriver | null = null;
  try {
    dp = loadReportPath(input.objects, cgroupFd);
    driver = new ReportDriver(dp);
    driver.setup();
    const d = driver;
    return input.cases.map((c) => d.run(c));
  } finally {
    driver?.close();
    dp?.close();
    closeSync(cgroupFd);
    removeCgroup(root, cgroup);
  }
}

try {
  process.stdout.write(JSON.stringify({ ok: true, observations: main() }));
} catch (e) {
  const err = isKmeshCheckError(e) ? e : new KmeshCheckError('worker', `internal error: ${(e as Error).stack ?? String(e)}`);
  process.stdout.write(JSON.stringify({ ok: false, error: { code: err.code, message: err.message } }));
}
