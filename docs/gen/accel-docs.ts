// The generated section on same-node acceleration (the ma_ops/ma_redirect pair): what is
// checked and how it is observed, the filter's rules as a reason table, each invariant with its
// statement, a worked example run through the reference model, the maps and byte layouts from
// bpf/codec/accel.ts, and the readings of docs/interpretation.md's acceleration list.

import { ACCEL_MAPS, SOCK_KEY_OFFSETS, SOCK_PARAM_OFFSETS, SOCK_PARAM_SIZE } from '../../bpf/codec/accel.js';
import { mapTypeName } from '../../bpf/codec/abi.js';
import { EMPTY_FILTER, type AccelCase, type AccelPair } from '../../model/accel/domain.js';
import { formatAccelCase, formatAccelObservation } from '../../model/accel/format.js';
import { accelInvariants } from '../../model/accel/invariants.js';
import { expectedAccel } from '../../model/accel/model.js';
import { code, codeBlock, mdTable } from './markdown.js';

export const ACCEL_SECTION = '8. Same-node acceleration';

const P: AccelPair = { netns: 0, family: 'inet', clientAddr: '127.0.0.1', clientPort: 40000, serverAddr: '127.0.0.1', serverPort: 8080, outside: 'none' };

/** The worked example: one four-tuple in two namespaces, and a connection the filter returns. */
export const ACCEL_EXAMPLE: AccelCase = {
  filter: { ...EMPTY_FILTER, returnPorts: [{ begin: 8081, end: 8081 }] },
  pairs: [P, { ...P, netns: 1 }, { ...P, clientPort: 40001, serverPort: 8081 }],
  ops: [
    { op: 'connect', pair: 0 },
    { op: 'connect', pair: 1 },
    { op: 'connect', pair: 2 },
    { op: 'send', pair: 0, from: 'client', size: 8 },
    { op: 'send', pair: 1, from: 'server', size: 8 },
    { op: 'send', pair: 2, from: 'client', size: 8 },
    { op: 'close', pair: 0, end: 'client' },
    { op: 'close', pair: 1, end: 'server' },
    { op: 'close', pair: 1, end: 'client' },
    { op: 'close', pair: 0, end: 'server' },
    { op: 'close', pair: 2, end: 'server' },
    { op: 'close', pair: 2, end: 'client' },
  ],
};

/** `- **A1. Title.** ...` lines of interpretation.md. */
export function accelReadings(interpretation: string): Array<{ id: string; title: string }> {
  const out: Array<{ id: string; title: string }> = [];
  for (const line of interpretation.split('\n')) {
    const m = /^- \*\*(A\d+)\.\s+(.+?)\*\*/.exec(line);
    if (m) out.push({ id: m[1]!, title: (m[2] ?? '').replace(/[.:]\s*$/, '') });
  }
  return out;
}

export function accelSection(interpretation: string): string[] {
  const readings = accelReadings(interpretation);
  return [
    `## ${ACCEL_SECTION}`,
    '',
    'A separate pair of programs, `ma_ops` (sockops) and `ma_redirect` (sk_msg, attached to',
    '`sock_ops_map`), hands each message of two connected local IPv4 TCP sockets straight to the',
    "peer's receive queue. The checker runs each case on real sockets: the pair attached to a fresh",
    'cgroup, two fresh private network namespaces per case (so that two connections can have the same',
    'four-tuple), ends created inside or outside the cgroup, sends in both directions and closes in',
    'either order, the first closer now and then aborting (a reset, which takes both ends straight to',
    'CLOSE: the cleanup must happen then too), and now and then user space writing a new filter while',
    "connections are open. A direction counts as accelerated when the receiver's `tcpi_bytes_received` stays",
    '0 while it reads the bytes (redirected bytes never pass through TCP). After every end has',
    'closed, both maps are read.',
    '',
    'A connection is accelerated exactly when both ends are AF_INET sockets created in the cgroup and',
    'the filter (`sock_param_map[0]`) admits its four addresses and four ports (each end sees the',
    'same two addresses and ports, swapped), the filter in the map when it connects: a new filter',
    'changes nothing for a connection already open, and its close cleans up whatever the filter says',
    'then:',
    '',
    ...mdTable(
      ['Reason', 'Accelerated', 'When'],
      [
        ['not-ipv4', 'no', 'the sockets are AF_INET6 (v4-mapped or not)'],
        ['client-outside / server-outside', 'no', 'an end was created outside the cgroup'],
        ['return-cidr', 'no', 'a return CIDR holds one of the addresses'],
        ['return-port', 'no', 'a return range holds one of the ports'],
        ['accept-cidr', 'no', 'accept CIDRs are given and an address lies in none of them'],
        ['accept-port', 'no', 'accept ranges are given and no port lies in any of them'],
        ['admitted', 'yes', 'otherwise (empty lists constrain nothing)'],
      ],
    ),
    '',
    ...accelInvariants.flatMap((inv) => [`### ${inv.name}`, '', `> ${inv.statement}`, '']),
    '### Example',
    '',
    'Pairs 0 and 1 share one four-tuple in two namespaces; pair 2 uses a port the filter returns.',
    'The model expects:',
    '',
    ...codeBlock('text', [...formatAccelCase(ACCEL_EXAMPLE), '', ...formatAccelObservation(ACCEL_EXAMPLE, expectedAccel(ACCEL_EXAMPLE))]),
    '',
    '### Maps and layouts',
    '',
    ...mdTable(
      ['Map', 'Type', 'Key', 'Value', 'Max entries'],
      ACCEL_MAPS.map((m) => [code(m.name), mapTypeName(m.type), `${m.keySize} B`, `${m.valueSize} B`, String(m.maxEntries)]),
    ),
    '',
    ...mdTable(
      ['Struct', 'Size', 'Layout (offset: field)'],
      [
        [
          '`sock_key` (packed)',
          '24',
          `${SOCK_KEY_OFFSETS.sip4} sip4; ${SOCK_KEY_OFFSETS.dip4} dip4 (network order); ${SOCK_KEY_OFFSETS.sport} sport; ${SOCK_KEY_OFFSETS.dport} dport (u32, port in network order in the low 16 bits); ${SOCK_KEY_OFFSETS.netnsCookie} u64 netns_cookie`,
        ],
        [
          '`sock_param` (packed)',
          String(SOCK_PARAM_SIZE),
          `${SOCK_PARAM_OFFSETS.acceptCidrs} accept CIDRs; ${SOCK_PARAM_OFFSETS.returnCidrs} return CIDRs; ${SOCK_PARAM_OFFSETS.acceptPorts} accept port ranges; ${SOCK_PARAM_OFFSETS.returnPorts} return port ranges (each a u8 count and 10 pairs of host-order u32: ip, mask / begin, end; a program reads only the first count of them: the checker fills the rest with stale pairs that match everything); ${SOCK_PARAM_OFFSETS.dump} dump settings`,
        ],
      ],
    ),
    '',
    '### Readings',
    '',
    ...(readings.length ? readings.map((r) => `- ${r.id}. ${r.title}`) : ['(none)']),
    '',
  ];
}
