// Where things are: the package root (found from this module, whether it runs from sources or
// from dist/), the compiled worker, and the default BPF objects.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ObjectPaths } from '../../model/executor.js';
import { KmeshCheckError } from '../errors.js';

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

export function defaultObjects(root = packageRoot()): ObjectPaths {
  return {
    connect: join(root, 'build/bpf/cgroup_sock.o'),
    sockops: join(root, 'build/bpf/sockops.o'),
    sendmsg: join(root, 'build/bpf/sendmsg.o'),
  };
}

/** Source folders and files the worker is compiled from. */
const WORKER_SOURCES = ['bpf/kernel', 'bpf/codec', 'bpf/errors.ts', 'model/address.ts', 'model/domain.ts', 'model/environment.ts', 'model/executor.ts'];

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
