// Where the package's own files are: its root (found from this module, whether it runs from
// sources or from dist/) and the BPF objects it builds, named once for every command.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
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

/**
 * A compiled module of the package to start a worker on, `dist/<path>`: a worker runs JavaScript,
 * also when its parent runs from sources (under vitest). `what` names it in the error without it,
 * and `instead` what else a user can do then, beside rebuilding. With `sources` (folders and
 * files of the package root), it must also be as new as every TypeScript file among them where
 * they are present: a stale worker would run old code beside new.
 */
export function compiledScript(path: string, what: string, o: { readonly instead?: string; readonly sources?: readonly string[]; readonly root?: string } = {}): string {
  const root = o.root ?? packageRoot();
  const script = join(root, 'dist', path);
  if (!existsSync(script)) throw new KmeshCheckError('build', `the compiled ${what} dist/${path} is missing: run npm run build:ts${o.instead ? ` (or ${o.instead})` : ''}`);
  for (const src of (o.sources ?? []).flatMap((s) => tsFiles(root, s))) {
    const out = join(root, 'dist', src.replace(/\.ts$/, '.js'));
    if (!existsSync(out) || statSync(out).mtimeMs < statSync(join(root, src)).mtimeMs) throw new KmeshCheckError('build', `dist/ is older than ${src}: run npm run build:ts`);
  }
  return script;
}

/** The TypeScript files at `rel` under `root` (a file, or a folder's, recursively). */
function tsFiles(root: string, rel: string): string[] {
  const p = join(root, rel);
  if (!existsSync(p)) return [];
  if (statSync(p).isFile()) return rel.endsWith('.ts') ? [rel] : [];
  return readdirSync(p).flatMap((n) => tsFiles(root, join(rel, n)));
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
