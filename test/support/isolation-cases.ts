// The cases of the case-isolation tests (test/vm and test/kernel). A data path whose DNS server
// map is one array entry for the node (mutant dns-server-global) records the server the first
// queried, and the second, which queries another server without a redirect, must still get its
// reply from that server, as it does when run alone. And a case's enable_monitoring
// (Case.monitoringOff) is its own, neither the loaded default nor the case before's.

import { backend, frontend } from '../../model/builders.js';
import type { Case, Operation } from '../../model/domain.js';
import { EMPTY_STATE } from '../../model/domain.js';
import type { Executor } from '../../model/executor.js';

const udp = (server: string): Operation[] => [
  { op: 'socket', sock: 0, family: 'inet', protocol: 'udp' },
  { op: 'sendto', sock: 0, dest: { addr: server, port: 53 }, n: 1 },
  { op: 'recvfrom', sock: 0 },
];
/** Redirected to the proxy 10.1.0.1: the array entry records server 10.1.0.2 behind proxy 10.1.0.1. */
export const writes: Case = { state: { ...EMPTY_STATE, backends: [backend(0, '10.1.0.1')] }, kind: 'consistent', enrolled: true, ops: udp('10.1.0.2') };
/**
 * An IPv6 proxy an AF_INET socket cannot take: no redirect, and the reply comes from 10.1.0.1
 * itself, which a leftover entry would take for the proxy and restore to 10.1.0.2.
 */
export const reads: Case = { state: { ...EMPTY_STATE, backends: [backend(0, 'fd00::53')] }, kind: 'consistent', enrolled: true, ops: udp('10.1.0.1') };

const replyFrom = (obs: ReadonlyArray<{ op: string; from?: { addr: string } | null }>) => obs.find((o) => o.op === 'recvfrom')?.from?.addr;

/** Runs `writes` then `reads` on `executor` (closed after) and gives the source of the reply `reads` received. */
export async function replyAfterWrites(executor: Executor): Promise<string | undefined> {
  try {
    const [, after] = await executor.run([writes, reads]);
    return replyFrom(after!);
  } finally {
    await executor.close();
  }
}

/** A direct connect to a pod behind a waypoint, which puts the socket in km_socket (section 4). */
const viaWaypoint = (monitoring: boolean): Case => ({
  state: { ...EMPTY_STATE, frontends: [frontend('10.3.0.7', 7)], backends: [backend(7, '10.3.0.7', [], { addr: '10.9.0.2', port: 15008 })] },
  kind: 'consistent',
  enrolled: true,
  ...(monitoring ? {} : { monitoringOff: true as const }),
  ops: [
    { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
    { op: 'connect', sock: 0, dest: { addr: '10.3.0.7', port: 9090 } },
  ],
});

/**
 * Runs one such connect per entry of `monitoring` (reports on or off) in one batch on `executor`
 * (closed after) and gives whether each socket was in km_socket: with a data path that inserts
 * only while enable_monitoring is on (mutant waypoint-needs-monitoring), exactly `monitoring`.
 */
export async function membershipByMonitoring(executor: Executor, monitoring: readonly boolean[]): Promise<boolean[]> {
  try {
    const runs = await executor.run(monitoring.map(viaWaypoint));
    return runs.map((obs) => obs[1]?.inSockhash === true);
  } finally {
    await executor.close();
  }
}
