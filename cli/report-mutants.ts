// Mutants of the connection-report paths (section 7): each one plausible bug, a patch
// bpf/mutants/<name>.patch built by the same mechanism as the routing mutants of mutants.ts
// (patched copy of bpf/src, build/mutants/<name>/). A table of its own because the routing
// checker cannot judge them: the report invariants (model/report) do.

import { KmeshCheckError } from '../shared/errors.js';
import { packageRoot } from '../shared/package.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { buildPatched, builtObjects } from './mutants.js';

export interface ReportMutant {
  readonly name: string;
  readonly description: string;
  readonly expectedInvariant: string;
  /**
   * Where it shows: 'kernel' on real sockets; 'vm' only where unwritten ring-buffer memory is
   * poisoned (the kernel's ring starts zeroed, so a byte left unwritten reads 0 there until the
   * ring wraps) or where the clock is an input (elapsed time exactly on the 5 s threshold), which
   * on the kernel executor means its cases that let time pass, run on the VM.
   */
  readonly shows: 'kernel' | 'vm';
  /** The smallest exhaustive scope that has its shape (default 1; scope 1 has AF_INET clients only). */
  readonly scope?: number;
}

export const REPORT_MUTANTS: readonly ReportMutant[] = [
  { name: 'report-no-close', description: 'sockops sends no CLOSE report.', expectedInvariant: 'report-close', shows: 'kernel' },
  {
    name: 'report-waypoint-bound-skipped',
    description: 'sockops sends no ESTABLISHED report for a waypoint-bound connection (it leaves it to the waypoint), though section 7 asks for one of every managed outbound connection.',
    expectedInvariant: 'report-once-established',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'report-periodic-early',
    description: 'cgroup_skb does not wait for the established report, so the first packets of a connect are reported periodically.',
    expectedInvariant: 'report-once-established',
    shows: 'kernel',
  },
  {
    name: 'auth-key-net-ports',
    description: 'At close the km_auth_res key has its ports in network order, so the verdict stored under the request (host order) outlives the connection.',
    expectedInvariant: 'auth-cleanup',
    shows: 'kernel',
  },
  {
    name: 'report-outbound-creates-storage',
    description: 'sockops creates the socket storage of an outbound connection when connect made none, so a client in a namespace that is not enrolled is reported as long as its local IP is.',
    expectedInvariant: 'report-once-established',
    shows: 'kernel',
  },
  {
    name: 'report-v6-original-port-net',
    description: 'The IPv6 view of the original destination in a report keeps its port in network order.',
    expectedInvariant: 'report-bytes-written',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'report-v6-mapped-original-folded',
    description: 'A v4-mapped original destination is written in the IPv4 view even in an IPv6 report (an AF_INET6 client sent through an IPv4 VIP to an IPv6 backend).',
    expectedInvariant: 'report-bytes-written',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'report-v6-original-in-v4-record',
    description:
      'An IPv4 report holds any recorded original in its IPv4 view, a native IPv6 one as its last word (an AF_INET6 client sent through an IPv6 VIP to an IPv4 backend), where no original can be written.',
    expectedInvariant: 'report-bytes-written',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'auth-type-from-family',
    description: "The authorization request's type follows the socket's family, so an AF_INET6 listener's IPv4 (v4-mapped) connection is requested as IPv6.",
    expectedInvariant: 'auth-request',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'report-start-unstamped',
    description: "Socket storage is created without the connect time, so a report's start is 0 and its duration the time since boot.",
    expectedInvariant: 'report-bytes-written',
    shows: 'kernel',
  },
  {
    name: 'report-start-at-established',
    description: "sockops stamps a client's connect time when it is established (ACTIVE_ESTABLISHED) instead of keeping connect4/6's, so a report's start is late by the handshake.",
    expectedInvariant: 'report-bytes-written',
    shows: 'vm',
  },
  {
    name: 'report-kept-original-omitted',
    description: 'An IPv4 report leaves out an original destination equal to the server end, as a connect kept without a rewrite (a pod reached by its own address) records it.',
    expectedInvariant: 'report-bytes-written',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'report-periodic-ungated',
    description: 'cgroup_skb checks only enable_periodic_report, so a connection keeps getting periodic reports after user space turns monitoring off.',
    expectedInvariant: 'report-periodic',
    shows: 'vm',
    scope: 2,
  },
  {
    name: 'report-close-gated',
    description: 'The CLOSE report is gated on enable_monitoring, so a connection reported established before user space turned monitoring off never gets its CLOSE report.',
    expectedInvariant: 'report-close',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'report-close-after-withdrawal',
    description:
      'sockops handles a close only while the local IP is still enrolled, so a connection whose pod withdrew from km_manage after it was established gets no CLOSE report and its verdict outlives it.',
    expectedInvariant: 'report-close',
    shows: 'kernel',
  },
  {
    name: 'report-bytes-u16',
    description: 'The sent and received byte counts of a report are kept at 16 bits, so a connection that carried 65,536 bytes or more reports less than it did.',
    expectedInvariant: 'report-bytes-written',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'auth-exempt-low64',
    description: 'The node and gateway exemption compares only the last 64 bits of the peer, so an IPv6 client ending like the v4-mapped node IP (fd00:1::ffff:127.0.0.1) is never asked about.',
    expectedInvariant: 'auth-request',
    shows: 'kernel',
    scope: 2,
  },
  {
    name: 'report-close-original-cached',
    description:
      "The CLOSE report of an outbound connection takes its original destination from a copy the object keeps of the last outbound connection established, not from the socket's storage: right while connections follow one another, wrong once one closes after another was made.",
    expectedInvariant: 'report-bytes-written',
    shows: 'kernel',
  },
  {
    name: 'report-padding-unwritten',
    description: 'The report is reserved in the ring buffer and filled field by field, its padding never written.',
    expectedInvariant: 'report-bytes-written',
    shows: 'vm',
  },
  {
    name: 'report-periodic-at-threshold',
    description: 'cgroup_skb sends a periodic report when exactly 5 s passed since the last one, not only after more than 5 s.',
    expectedInvariant: 'report-periodic',
    shows: 'vm',
  },
  {
    name: 'report-close-at-fin',
    description:
      'sockops reports the close (and forgets the verdict) as the connection starts closing, at FIN_WAIT1 or CLOSE_WAIT: one CLOSE report per end after a FIN exchange, but none after a reset, which takes both ends straight from ESTABLISHED to CLOSE.',
    expectedInvariant: 'report-close',
    shows: 'kernel',
  },
  {
    name: 'report-periodic-from-connect',
    description:
      'cgroup_skb times the period of a connection that has had no report yet from its connect, so a connection established with monitoring off gets a periodic report, before any established one, once user space turns monitoring on and 5 s have passed.',
    expectedInvariant: 'report-once-established',
    shows: 'vm',
  },
];

/** Builds one report mutant; the four objects the report harness loads. */
export function buildReportMutant(name: string, root = packageRoot()): ReportObjectPaths {
  const m = REPORT_MUTANTS.find((x) => x.name === name);
  if (!m) throw new KmeshCheckError('unsupported', `unknown report mutant '${name}': use one of ${REPORT_MUTANTS.map((x) => x.name).join(', ')}`);
  const files = { connect: 'cgroup_sock.o', sockops: 'sockops.o', sendmsg: 'sendmsg.o', skb: 'cgroup_skb.o' } as const;
  return builtObjects(buildPatched(m.name, root), files, `mutant ${m.name}`);
}
