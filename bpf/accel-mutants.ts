// Mutants of the same-node acceleration objects (ma_ops.o, ma_redirect.o): each one plausible bug,
// chosen at compile time by a `MUTANT_MA_*` flag guarding a small `#ifdef` in bpf/src/accel_*.h or
// ma_ops.c, built by bpf/Makefile into build/mutants/<name>/ exactly like the routing mutants of
// mutants.ts. Kept apart from that list because the routing checker cannot judge these objects:
// the acceleration checks (model/accel) do.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KmeshCheckError } from './errors.js';
import type { AccelObjectPaths } from './kernel/accel/loader.js';
import { packageRoot } from './kernel/paths.js';

export interface AccelMutant {
  readonly name: string;
  readonly flag: string;
  readonly description: string;
  /** The invariant a correct checker catches it with. */
  readonly expectedInvariant: string;
}

export const ACCEL_MUTANTS: readonly AccelMutant[] = [
  {
    name: 'ma-filter-any-all-swapped',
    flag: 'MUTANT_MA_FILTER_ANY_ALL_SWAPPED',
    description: 'The filter takes one matching address as enough for the accept CIDRs and wants all four ports in the accept ranges (any and all swapped).',
    expectedInvariant: 'redirect-filter',
  },
  {
    name: 'ma-key-no-netns',
    flag: 'MUTANT_MA_KEY_NO_NETNS',
    description: 'sock_key leaves the network namespace cookie out (0), so equal four-tuples of two namespaces share keys.',
    expectedInvariant: 'redirect-isolation',
  },
  {
    name: 'ma-entries-kept',
    flag: 'MUTANT_MA_ENTRIES_KEPT',
    description: "ma_ops does not delete a connection's sock_proxy_map entries when it closes.",
    expectedInvariant: 'redirect-cleanup',
  },
];

/** Builds one acceleration mutant (make rebuilds only what changed); its two objects. */
export function buildAccelMutant(name: string, root = packageRoot()): AccelObjectPaths {
  const m = ACCEL_MUTANTS.find((x) => x.name === name);
  if (!m) throw new KmeshCheckError('unsupported', `unknown acceleration mutant '${name}': use one of ${ACCEL_MUTANTS.map((x) => x.name).join(', ')}`);
  const dir = join(root, 'build/mutants', m.name);
  const r = spawnSync('make', ['--no-print-directory', '-C', join(root, 'bpf'), `OUT=${dir}`, `EXTRA_CFLAGS=-D${m.flag}`, join(dir, 'ma_ops.o'), join(dir, 'ma_redirect.o')], { encoding: 'utf8' });
  if (r.error) throw new KmeshCheckError('build', `cannot run make for ${m.name} (${r.error.message}): install make and clang`);
  const objects = { ops: join(dir, 'ma_ops.o'), redirect: join(dir, 'ma_redirect.o') };
  if (r.status !== 0 || !existsSync(objects.ops) || !existsSync(objects.redirect)) {
    const cause = `${r.stderr}\n${r.stdout}`.split('\n').find((l) => /error/i.test(l))?.trim() ?? `make exited with ${r.status}`;
    throw new KmeshCheckError('build', `building ${m.name} failed: ${cause}`);
  }
  return objects;
}
