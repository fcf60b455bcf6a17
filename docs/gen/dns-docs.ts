// The section on DNS over UDP sends (kmesh-dataplane.md section 6): the three hooks, what each
// does, the operations the checker drives them with and the coverage classes a run must reach.
// Generated from the same constants the checker uses, so the names cannot drift.

import { DNS_HOOK_SECTIONS } from '../../bpf/codec/abi.js';
import { DNS_CLASSES } from '../../properties/dns-traits.js';
import { code, mdTable } from './markdown.js';

const HOOK_JOBS: Readonly<Record<keyof typeof DNS_HOOK_SECTIONS, string>> = {
  sendmsg4:
    'a UDP send that names an IPv4 destination (AF_INET, or AF_INET6 to a v4-mapped address, connected or not): the control gate, then for an enrolled, unconnected socket sending to port 53 while `km_backend[0]` has an IPv4 address, the destination IP becomes the proxy (port kept) and the original is recorded once',
  recvmsg4: "a receive that asks for the source on an AF_INET socket: a datagram from the proxy of the socket's most recent redirected query, port 53, is reported as from that query's server",
  recvmsg6: 'the same for AF_INET6 sockets: the v4-mapped source `::ffff:proxy` becomes `::ffff:server`; native IPv6 sources are left alone',
};

export function dnsSection(title: string): string[] {
  return [
    `## ${title}`,
    '',
    'Resolvers that `sendto()` a server and `recvfrom()` the reply never run the connect programs.',
    'The connect object handles them with three more programs, found by ELF section in whatever',
    'objects the checker is given (an object set without them is checked without them, and the',
    'VM says which it ran):',
    '',
    ...mdTable(
      ['hook', 'runs for'],
      (Object.keys(DNS_HOOK_SECTIONS) as (keyof typeof DNS_HOOK_SECTIONS)[]).map((h) => [code(DNS_HOOK_SECTIONS[h]), HOOK_JOBS[h]]),
    ),
    '',
    'The checker drives them with three operations besides `socket`, `connect`, `send` and `close`:',
    '`sendto(sock, dest, n)` sends `n` queries naming `dest` and observes where a DNS stand-in received',
    'them (`arrivedAt`) or the error; `recvfrom(sock)` takes the next datagram and observes the source',
    'the application is told, the bytes, or the error (`EAGAIN` when nothing is queued); `deliver(sock,',
    'from)` has the stand-in send a datagram from `from` (port 53; an IPv4 address, or a native IPv6',
    "one for an AF_INET6 socket, such as one whose last 32 bits are the proxy's IPv4 address) to the",
    'socket. The stand-in answers every query that reaches port 53 of an address local to the private',
    'namespace, from that address;',
    "a connected socket's `send` is answered by its peer the same way. The kernel drops a datagram",
    "whose source is not a connected socket's peer, so a send hook that redirected a connected",
    "socket's query would lose its answer: the `dns-*` invariants above check that it never does.",
    '',
    'The runs count the DNS coverage classes a case exercised; each must be seen in enough cases:',
    `${DNS_CLASSES.map(code).join(', ')}.`,
    '',
  ];
}
