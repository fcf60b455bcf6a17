// Shared by the kernel-executor suites: starting an executor (failing loudly without root), and
// small builders for map states and cases written in the document's terms.

import { createKernelExecutor, type KernelExecutor, type KernelExecutorOptions } from '../../bpf/kernel/executor.js';
import { service } from '../../model/builders.js';
import type { Case, Family, MapState, Operation, Protocol, Service, SockAddr, Waypoint } from '../../model/domain.js';

export const NO_WP: Waypoint = { addr: '0.0.0.0', port: 0 };

/** Starts a kernel executor; without root the error says so (the suites must not skip silently). */
export async function startKernel(opts: KernelExecutorOptions = {}): Promise<KernelExecutor> {
  if (process.geteuid && process.geteuid() !== 0) {
    throw new Error('kernel executor tests require root (CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN): run them as root or with sudo');
  }
  return createKernelExecutor(opts);
}

export { frontend as fe, endpoint as ep, backend as be, maps as state } from '../../model/builders.js';

export function svc(id: number, o: { counts?: number[]; policy?: number; ports?: Array<[number, number]>; waypoint?: Waypoint } = {}): Service {
  return service(id, { counts: o.counts ?? [1], ports: o.ports ?? [[80, 8080]], ...(o.policy !== undefined ? { policy: o.policy } : {}), ...(o.waypoint ? { waypoint: o.waypoint } : {}) });
}

/** One socket: created, connected to `dest`, then `sends` sends of one message each, then closed. */
export function connectCase(st: MapState, family: Family, dest: SockAddr, o: { enrolled?: boolean; protocol?: Protocol; sends?: number; extra?: Operation[] } = {}): Case {
  const ops: Operation[] = [{ op: 'socket', sock: 0, family, protocol: o.protocol ?? 'tcp' }, { op: 'connect', sock: 0, dest }, ...(o.extra ?? [])];
  for (let i = 0; i < (o.sends ?? 0); i++) ops.push({ op: 'send', sock: 0, messages: 1 });
  ops.push({ op: 'close', sock: 0 });
  return { state: st, kind: 'consistent', enrolled: o.enrolled ?? true, ops };
}
