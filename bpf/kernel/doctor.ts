// What the kernel executor needs from this machine, checked one by one with a remedy each:
// capabilities, the cgroup2 mount, kernel BTF, libbpf, the C shim every socket operation goes
// through, map creation and network namespaces.

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync } from 'node:fs';
import { NEEDS_ROOT } from '../../shared/errors.js';
import { findCgroup2Mount } from './cgroup.js';
import { buildShim } from './fastpath.js';
import { missingCapabilities } from './privileges.js';

export interface DoctorCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly remedy: string;
}

function check(name: string, remedy: string, run: () => string): DoctorCheck {
  try {
    return { name, ok: true, detail: run(), remedy: '' };
  } catch (e) {
    return { name, ok: false, detail: (e as Error).message.split('\n')[0] ?? String(e), remedy };
  }
}

export async function doctorChecks(): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  checks.push(
    check('capabilities', NEEDS_ROOT, () => {
      const missing = missingCapabilities();
      if (missing.length) throw new Error(`missing ${missing.join(', ')}`);
      return 'CAP_SYS_ADMIN and CAP_NET_ADMIN present';
    }),
  );
  checks.push(check('cgroup2', 'mount cgroup2, e.g. mount -t cgroup2 none /sys/fs/cgroup', () => `mounted at ${findCgroup2Mount()}`));
  checks.push(
    check('kernel BTF', 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y', () => {
      if (!existsSync('/sys/kernel/btf/vmlinux')) throw new Error('/sys/kernel/btf/vmlinux is missing');
      return '/sys/kernel/btf/vmlinux present';
    }),
  );
  let libbpfOk = false;
  let libbpfMod: typeof import('./libbpf.js') | null = null;
  try {
    libbpfMod = await import('./libbpf.js');
    libbpfOk = true;
    checks.push({ name: 'libbpf', ok: true, detail: 'libbpf.so.1 loads', remedy: '' });
  } catch (e) {
    checks.push({ name: 'libbpf', ok: false, detail: (e as Error).message.split('\n')[0] ?? '', remedy: 'apt-get install libbpf1' });
  }
  checks.push(
    check('C shim', 'apt-get install gcc libbpf-dev', () => {
      if (!libbpfOk) throw new Error('skipped: libbpf does not load');
      return `${buildShim()} builds`;
    }),
  );
  checks.push(
    check('map creation', NEEDS_ROOT, () => {
      if (!libbpfOk || !libbpfMod) throw new Error('skipped: libbpf does not load');
      const { libbpf } = libbpfMod;
      const fd = libbpf.mapCreate(2 /* ARRAY */, 'kmesh_doctor', 4, 4, 1, null);
      if (fd < 0) throw new Error(`bpf(BPF_MAP_CREATE) failed with errno ${-fd}${-fd === 1 ? ' (EPERM)' : ''}`);
      closeSync(fd);
      return 'a 1-entry array map was created and closed';
    }),
  );
  checks.push(
    check('network namespaces', `${NEEDS_ROOT}; unshare is in util-linux`, () => {
      const r = spawnSync('unshare', ['-n', 'true'], { encoding: 'utf8' });
      if (r.error) throw new Error(`cannot run unshare: ${r.error.message}`);
      if (r.status !== 0) throw new Error(`unshare -n true failed: ${(r.stderr || `exit ${r.status}`).trim()}`);
      return 'unshare -n works';
    }),
  );
  return checks;
}
