// Mutants of the connection-report paths (section 7): each one plausible bug behind a
// `MUTANT_REPORT_*` / `MUTANT_AUTH_*` flag in bpf/src, built by bpf/Makefile into
// build/mutants/<name>/ like the others. Kept apart from mutants.ts because the routing checker
// cannot judge them: the report invariants (model/report) do.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KmeshCheckError } from './errors.js';
import type { ReportObjectPaths } from './kernel/report/loader.js';
import { packageRoot } from './kernel/paths.js';

export interface ReportMutant {
  readonly name: string;
  readonly flag: string;
  readonly description: string;
  readonly expectedInvariant: string;
  /**
   * Where it shows: 'kernel' on real sockets; 'vm' only where unwritten ring-buffer memory is
   * poisoned (the kernel's ring starts zeroed, so a byte left unwritten reads 0 there until the
   * ring wraps).
   */
  readonly shows: 'kernel' | 'vm';
}

export const REPORT_MUTANTS: readonly ReportMutant[] = [
  { name: 'report-no-close', flag: 'MUTANT_REPORT_NO_CLOSE', description: 'sockops sends no CLOSE report.', expectedInvariant: 'report-close', shows: 'kernel' },
  {
    name: 'report-periodic-early',
    flag: 'MUTANT_REPORT_PERIODIC_EARLY',
    description: 'cgroup_skb does not wait for the established report, so the first packets of a connect are reported periodically.',
    expectedInvariant: 'report-once-established',
    shows: 'kernel',
  },
  {
    name: 'auth-key-net-ports',
    flag: 'MUTANT_AUTH_KEY_NET_PORTS',
    description: 'At close the km_auth_res key has its ports in network order, so the verdict stored under the request (host order) outlives the connection.',
    expectedInvariant: 'auth-cleanup',
    shows: 'kernel',
  },
  {
    name: 'report-padding-unwritten',
    flag: 'MUTANT_REPORT_PADDING_UNWRITTEN',
    description: 'The report is reserved in the ring buffer and filled field by field, its padding never written.',
    expectedInvariant: 'report-bytes-written',
    shows: 'vm',
  },
];

/** Builds one report mutant; the four objects the report harness loads. */
export function buildReportMutant(name: string, root = packageRoot()): ReportObjectPaths {
  const m = REPORT_MUTANTS.find((x) => x.name === name);
  if (!m) throw new KmeshCheckError('unsupported', `unknown report mutant '${name}': use one of ${REPORT_MUTANTS.map((x) => x.name).join(', ')}`);
  const dir = join(root, 'build/mutants', m.name);
  const files = { connect: 'cgroup_sock.o', sockops: 'sockops.o', sendmsg: 'sendmsg.o', skb: 'cgroup_skb.o' } as const;
  const objects = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, join(dir, f)])) as unknown as ReportObjectPaths;
  const r = spawnSync('make', ['--no-print-directory', '-C', join(root, 'bpf'), `OUT=${dir}`, `EXTRA_CFLAGS=-D${m.flag}`, ...Object.values(objects)], { encoding: 'utf8' });
  if (r.error) throw new KmeshCheckError('build', `cannot run make for ${m.name} (${r.error.message}): install make and clang`);
  if (r.status !== 0 || Object.values(objects).some((p) => !existsSync(p))) {
    const cause = `${r.stderr}\n${r.stdout}`.split('\n').find((l) => /error:/i.test(l))?.trim() ?? `make exited with ${r.status}`;
    throw new KmeshCheckError('build', `building ${m.name} failed: ${cause}`);
  }
  return objects;
}
