// The compiled kernel worker, checked to be as new as its sources. (The package root and our
// objects are named in shared/package.ts, re-exported here for the kernel's callers.)

import { compiledScript, packageRoot } from '../../shared/package.js';

export { defaultObjects, packageRoot } from '../../shared/package.js';

/** Source folders and files the worker is compiled from. */
const WORKER_SOURCES = ['bpf/kernel', 'bpf/codec', 'bpf/runner', 'shared', 'model/address.ts', 'model/domain.ts', 'model/environment.ts', 'model/executor.ts'];

/** The compiled worker, checked to exist and to be at least as new as every source it is built from. */
export function workerScript(root = packageRoot()): string {
  return compiledScript('bpf/kernel/worker.js', 'worker', { sources: WORKER_SOURCES, root });
}
