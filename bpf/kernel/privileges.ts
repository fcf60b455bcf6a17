// The privilege check done before anything else: the effective capability set of this process.
// unshare(CLONE_NEWNET) and cgroup writes need CAP_SYS_ADMIN (which also covers bpf()), routes
// need CAP_NET_ADMIN.

import { readFileSync } from 'node:fs';
import { KmeshCheckError, NEEDS_ROOT } from '../../shared/errors.js';

export const CAP = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_BPF: 39 } as const;

export function effectiveCapabilities(status = '/proc/self/status'): bigint {
  const line = readFileSync(status, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('CapEff:'));
  return line ? BigInt(`0x${line.slice('CapEff:'.length).trim()}`) : 0n;
}

export function missingCapabilities(eff = effectiveCapabilities()): string[] {
  const has = (bit: number) => ((eff >> BigInt(bit)) & 1n) === 1n;
  const missing: string[] = [];
  if (!has(CAP.CAP_SYS_ADMIN)) missing.push('CAP_SYS_ADMIN');
  if (!has(CAP.CAP_NET_ADMIN)) missing.push('CAP_NET_ADMIN');
  if (!has(CAP.CAP_BPF) && !has(CAP.CAP_SYS_ADMIN)) missing.push('CAP_BPF');
  return missing;
}

export function assertPrivileges(): void {
  const missing = missingCapabilities();
  if (missing.length) throw new KmeshCheckError('privileges', `the kernel executor ${NEEDS_ROOT} (missing ${missing.join(', ')})`);
}
