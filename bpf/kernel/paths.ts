// The compiled kernel worker, checked to be as new as its sources. (The package root and our
// objects are named in shared/package.ts, re-exported here for the kernel's callers.)

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../../shared/package.js';
import { KmeshCheckError } from '../../shared/errors.js';

export { defaultObjects, packageRoot } from '../../shared/package.js';

/** Source folders and files the worker is compiled from. */
const WORKER_SOURCES = ['bpf/kernel', 'bpf/codec', 'bpf/runner', 'shared', 'model/address.ts', 'model/domain.ts', 'model/environment.ts', 'model/executor.ts'];

function tsFiles(root: string, rel: string): string[] {
  const p = join(root, rel);
  if (!existsSync(p)) return [];
  if (statSync(p).isFile()) return rel.endsWith('.ts') ? [rel] : [];
  return readdirSync(p).flatMap((n) => tsFiles(root, join(rel, n)));
}

/**
 * The compiled worker, checked to exist and to be at least as new as every source it is built
 * from (a stale worker would run old code against new tests).
 */
export function workerScript(root = packageRoot()): string {
  const worker = join(root, 'dist/bpf/kernel/worker.js');
  if (!existsSync(worker)) throw new KmeshCheckError('build', `the compiled worker ${relative(root, worker)} is missing: run npm run build:ts`);
  for (const src of WORKER_SOURCES.flatMap((s) => tsFiles(root, s))) {
    const out = join(root, 'dist', src.replace(/\.ts$/, '.js'));
    if (!existsSync(out) || statSync(out).mtimeMs < statSync(join(root, src)).mtimeMs) {
      throw new KmeshCheckError('build', `dist/ is older than ${src}: run npm run build:ts`);
    }
  }
  return worker;
}
