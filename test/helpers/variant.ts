// A variant of a data path's sources for a test: copied into the test's folder, edited by text
// replacement (each replaced text must be there), and built with the project's Makefile.

import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { packageRoot } from '../../shared/package.js';

/** One edit: in source file `file`, `from` replaced by `to`. */
export type SourceEdit = readonly [file: string, from: string, to: string];

/** Builds `src` (default our bpf/src) with `edits` made into `dir`/out; gives an object's path by name ('sockops' -> dir/out/sockops.o). */
export function buildVariant(dir: string, edits: readonly SourceEdit[], src = join(packageRoot(), 'bpf/src')): (object: string) => string {
  cpSync(src, join(dir, 'src'), { recursive: true });
  for (const [file, from, to] of edits) {
    const path = join(dir, 'src', file);
    const text = readFileSync(path, 'utf8');
    expect(text, file).toContain(from);
    writeFileSync(path, text.replace(from, to));
  }
  const r = spawnSync('make', ['--no-print-directory', '-C', join(packageRoot(), 'bpf'), `SRC=${join(dir, 'src')}`, `OUT=${join(dir, 'out')}`], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return (object) => join(dir, 'out', `${object}.o`);
}

/** The routing objects (connect, sockops, sendmsg) of a variant built by buildVariant. */
export function objectsOf(o: (object: string) => string): { connect: string; sockops: string; sendmsg: string } {
  return { connect: o('cgroup_sock'), sockops: o('sockops'), sendmsg: o('sendmsg') };
}

/** The report objects (section 7) of a variant built by buildVariant: the routing ones and cgroup_skb. */
export function reportObjectsOf(o: (object: string) => string): { connect: string; sockops: string; sendmsg: string; skb: string } {
  return { ...objectsOf(o), skb: o('cgroup_skb') };
}

/** km_auth_res with a u64 value: a section 7 map of another shape than its table's. */
export const WIDE_AUTH_VERDICT: SourceEdit = ['auth.h', '__type(value, __u32);\n\t__uint(max_entries, KM_AUTH_RES_MAX);', '__type(value, __u64);\n\t__uint(max_entries, KM_AUTH_RES_MAX);'];
export const WIDE_AUTH_VERDICT_ERROR = /^map km_auth_res in \w+\.o: value size 8 B, expected 4 B \(u32\)$/;

/** enable_monitoring loaded as 0, against section 7's default of 1: only cases that leave the globals as loaded can tell. */
export const MONITORING_OFF_BY_DEFAULT: SourceEdit = ['report_abi.h', 'volatile __u32 enable_monitoring = 1;', 'volatile __u32 enable_monitoring = 0;'];
