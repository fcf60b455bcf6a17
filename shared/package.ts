// Where the package's own files are: its root (found from this module, whether it runs from
// sources or from dist/) and the BPF objects it builds, named once for every command.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KmeshCheckError } from './errors.js';

/** The file names of our three objects in build/bpf, by role (model/executor.ts ObjectPaths). */
export const OBJECT_FILES = { connect: 'cgroup_sock.o', sockops: 'sockops.o', sendmsg: 'sendmsg.o' } as const;

export type ObjectRole = keyof typeof OBJECT_FILES;

export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'kmesh-check') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    if (dirname(dir) === dir) throw new KmeshCheckError('build', `cannot find the kmesh-check package root above ${from}`);
  }
}

/** Paths of our objects in `dir` (default: build/bpf of the package). */
export function defaultObjects(root = packageRoot(), dir = join(root, 'build/bpf')): Record<ObjectRole, string> {
  return { connect: join(dir, OBJECT_FILES.connect), sockops: join(dir, OBJECT_FILES.sockops), sendmsg: join(dir, OBJECT_FILES.sendmsg) };
}

/** The same-node acceleration objects (section 8); they may be one file. */
export interface AccelObjectPaths {
  /** The object holding `ma_ops` (sockops). */
  readonly ops: string;
  /** The object holding `ma_redirect` (sk_msg); may be the same file. */
  readonly redirect: string;
}

/** Our acceleration objects in build/bpf. */
export function defaultAccelObjects(root = packageRoot()): AccelObjectPaths {
  return { ops: join(root, 'build/bpf/ma_ops.o'), redirect: join(root, 'build/bpf/ma_redirect.o') };
}
