// The generated section on connection reports and inbound authorization (sockops reports,
// cgroup_skb, the authorization ring): what is checked and how, each invariant with its statement, the record layouts from
// bpf/codec/report.ts, and the readings of docs/interpretation.md's report list.

import { AUTH_REQUEST_SIZE, TCP_PROBE_INFO_SIZE, TCP_PROBE_OFFSETS } from '../../bpf/codec/report.js';
import { reportInvariants } from '../../model/report/invariants.js';
import { mdTable } from './markdown.js';

export const REPORT_SECTION = '9. Connection reports and inbound authorization';

/** `- **R1. Title.** ...` lines of interpretation.md. */
export function reportReadings(interpretation: string): Array<{ id: string; title: string }> {
  const out: Array<{ id: string; title: string }> = [];
  for (const line of interpretation.split('\n')) {
    const m = /^- \*\*(R\d+)\.\s+(.+?)\*\*/.exec(line);
    if (m) out.push({ id: m[1]!, title: (m[2] ?? '').replace(/[.:]\s*$/, '') });
  }
  return out;
}

export function reportSection(interpretation: string): string[] {
  const readings = reportReadings(interpretation);
  return [
    `## ${REPORT_SECTION}`,
    '',
    'The sockops object reports TCP connections of enrolled pods into the `km_tcp_probe` ring buffer',
    '(established, close) and asks user space to authorize inbound ones through `km_auth_req`; a',
    '`cgroup_skb` object adds periodic reports. The checker loads the data path with the `cgroup_skb`',
    'object into a fresh cgroup in a private namespace, sets the globals (`enable_monitoring`,',
    "`enable_periodic_report`, `node_ip`, `pod_gateway`) through the objects' global-data maps (some",
    'cases leave the first two as the objects load them, so that their defaults, 1 and 0, are checked), runs',
    'connections (direct or through an IPv4 or IPv6 service VIP), closed by a FIN exchange or, now and then, by a',
    'reset (the first closer aborts: `SO_LINGER` with a zero timeout), plays user space (it stores a verdict under each',
    'requested tuple), reads both ring buffers and, after the closes, `km_auth_res`. The kernel',
    "executor runs the cases that let time pass on the VM with the same objects, since the kernel's",
    'clock cannot be moved; a hand-written case of the test suite confirms periodic reports on real',
    'sockets by waiting past the 5 s period. The',
    'userspace VM plays the same connections (callbacks, handshake, data, ACK, FIN and RST packets through',
    '`cgroup_skb`) with the clock as an input: it reads one value until the case lets time pass before',
    'a send or the close, so waits just under, exactly on and just over 5 s are generated. Some ends',
    'are not managed (bound to, or listening on, 127.0.0.2, which is never enrolled; an AF_INET6 client',
    'bound to fd00:1::ffff:7f00:1, which is neither enrolled nor the node ::ffff:127.0.0.1 it ends like). Some cases run',
    'in a namespace withdrawn from `km_manage` (a control connect to port 930 from 127.0.0.2) whose',
    'local IPs stay enrolled: connect then makes no socket storage, so only the servers are reported,',
    'which is how a report path that makes storage of its own for a client shows. Every record is',
    "decoded byte for byte: padding and the bytes outside the tuple's view must be 0 (the VM's ring",
    'buffers hand out poisoned memory, so a byte the program leaves unwritten shows).',
    '',
    ...reportInvariants.flatMap((inv) => [`### ${inv.name}`, '', `> ${inv.statement}`, '']),
    '### Records',
    '',
    `\`tcp_probe_info\`, ${TCP_PROBE_INFO_SIZE} B:`,
    '',
    ...mdTable(
      ['Offset', 'Field'],
      Object.entries(TCP_PROBE_OFFSETS).map(([k, v]) => [String(v), k]),
    ),
    '',
    `\`ringbuf_msg_type\`, ${AUTH_REQUEST_SIZE} B: 0 type, 4 the tuple (client to server, ports host order); the tuple is also the \`km_auth_res\` key.`,
    '',
    '### Readings',
    '',
    ...(readings.length ? readings.map((r) => `- ${r.id}. ${r.title}`) : ['(none)']),
    '',
  ];
}
