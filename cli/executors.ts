// Choosing and opening an executor. The default is the real kernel where this process may use it
// (root with bpf(), cgroups and network namespaces), otherwise the userspace VM; the choice and
// its reason are always printed.

import type { Executor, ObjectPaths } from '../model/executor.js';
import { DEFAULT_ENVIRONMENT, type Environment } from '../model/environment.js';
import { KmeshCheckError } from '../shared/errors.js';
import { missingCapabilities } from '../bpf/kernel/privileges.js';

export type ExecutorName = 'kernel' | 'vm' | 'model';

export interface OpenedExecutor {
  readonly name: ExecutorName;
  /** Undefined for `model`: the reference model is checked against the spec alone. */
  readonly executor: Executor | undefined;
  readonly env: Environment;
  readonly why: string;
}

/** Privileged means the capabilities the kernel executor needs, whatever the uid. */
export function isPrivileged(): boolean {
  return missingCapabilities().length === 0;
}

export function defaultExecutorName(): { name: ExecutorName; why: string } {
  const missing = missingCapabilities();
  return missing.length === 0
    ? { name: 'kernel', why: 'running with CAP_SYS_ADMIN and CAP_NET_ADMIN, so the compiled objects run in the real kernel' }
    : { name: 'vm', why: `not root (missing ${missing.join(', ')}), so the compiled objects run in the userspace VM; use sudo for the kernel executor` };
}

export async function openExecutor(name: ExecutorName, objects: Partial<ObjectPaths>, why: string): Promise<OpenedExecutor> {
  switch (name) {
    case 'model':
      return { name, executor: undefined, env: DEFAULT_ENVIRONMENT, why };
    case 'kernel': {
      const { createKernelExecutor } = await import('../bpf/kernel/executor.js');
      const executor = await createKernelExecutor({ objects });
      return { name, executor, env: executor.environment, why };
    }
    case 'vm': {
      const vm = await import('../bpf/vm/executor.js').catch(() => null);
      if (!vm) throw new KmeshCheckError('unsupported', 'the userspace VM executor is not available in this build: use --executor kernel or model');
      const executor: Executor = await vm.createVmExecutor({ objects });
      return { name, executor, env: executor.environment, why };
    }
  }
}
