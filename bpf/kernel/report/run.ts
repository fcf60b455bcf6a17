// Parent side of the report harness: runs cases in a one-shot worker under `unshare -n` (its own
// private namespace and cgroup) and returns the observations.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KmeshCheckError } from '../../../shared/errors.js';
import { defaultObjects, packageRoot } from '../paths.js';
import { assertPrivileges } from '../privileges.js';
import type { ReportCase, ReportObservation } from '../../../model/report/domain.js';
import { decodeObservation, type RawReportObservation } from '../../codec/report.js';
import type { ReportObjectPaths } from './loader.js';
import { crashLine } from '../worker-process.js';

export function defaultReportObjects(root = packageRoot()): ReportObjectPaths {
  return { ...defaultObjects(root), skb: join(root, 'build/bpf/cgroup_skb.o') };
}

export interface ReportRunOptions {
  /**
   * The ephemeral ports of the worker's private namespace (net.ipv4.ip_local_port_range, which
   * IPv6 shares), first and last; the kernel's default when absent. A narrow range makes a port
   * come back from bind(0) within a case, as it seldom does by chance.
   */
  readonly localPorts?: readonly [number, number];
}

export function runReportCases(cases: readonly ReportCase[], objects: Partial<ReportObjectPaths> = {}, o: ReportRunOptions = {}): ReportObservation[] {
  assertPrivileges();
  const ports = o.localPorts;
  if (ports && !(ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535) && ports[0] <= ports[1])) {
    throw new KmeshCheckError('unsupported', `localPorts ${ports.join(' ')}: give the first and last ephemeral port, 1 to 65535, first <= last`);
  }
  const root = packageRoot();
  const worker = join(root, 'dist/bpf/kernel/report/worker.js');
  if (!existsSync(worker)) throw new KmeshCheckError('build', 'dist/bpf/kernel/report/worker.js is missing: run npm run build:ts');
  const r = spawnSync('unshare', ['-n', process.execPath, worker], {
    input: JSON.stringify({ objects: { ...defaultReportObjects(root), ...objects }, cases, ...(o.localPorts ? { localPorts: o.localPorts } : {}) }),
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new KmeshCheckError('environment', `cannot run the report worker (${r.error.message})`);
  let out: { ok: boolean; observations?: RawReportObservation[]; error?: { code: string; message: string } };
  try {
    out = JSON.parse(r.stdout);
  } catch {
    throw new KmeshCheckError('worker', `the report worker stopped (exit ${r.status}): ${crashLine(r.stderr)}`);
  }
  if (!out.ok) throw new KmeshCheckError((out.error?.code ?? 'worker') as 'worker', out.error?.message ?? 'unknown error');
  return out.observations!.map(decodeObservation);
}
