// The value classes of bounded-exhaustive exploration, as data: for every kind of value a map entry
// field, a destination or a socket can take, the classes enumerated and the smallest scope that
// enumerates each. A class stands for every value that the model and the data path treat alike;
// its representative is the value used. docs/gen renders this table into docs/spec.md.

import { DNS_PORT, ControlPort, LbPolicy, type Family } from '../../model/domain.js';
import { spreadDraw } from '../../model/lb-domain.js';

/** Where the addresses of a class come from: a pool (existing or next fresh) or one fixed value. */
export type AddressPool = 'v4' | 'v6' | null;

export interface AddressClass {
  readonly name: string;
  readonly minScope: number;
  /** Addresses of a pooled class are numbered: n = 1, 2, ... (at most `scope` per pool). */
  readonly pool: AddressPool;
  readonly render: (n: number) => string;
  readonly stands: string;
}

/**
 * Address classes. Classes sharing the v4 pool share its numbers, so `10.0.0.1`, its v4-mapped form
 * and `::a00:1` (the same last 32 bits) can meet, as they do when a program confuses the forms.
 */
export const ADDRESS_CLASSES: readonly AddressClass[] = [
  { name: 'ipv4', minScope: 1, pool: 'v4', render: (n) => `10.0.0.${n}`, stands: 'any unicast IPv4 address routed inside the namespace (10.0.0.n)' },
  { name: 'ipv6', minScope: 1, pool: 'v6', render: (n) => `fd00::${n}`, stands: 'any IPv6 address whose first 32 bits are not zero (fd00::n)' },
  {
    name: 'ipv6-low',
    minScope: 2,
    pool: 'v4',
    render: (n) => `::a00:${n}`,
    stands: 'IPv6, first 32 bits zero but not all zero (::a00:n, the bits of 10.0.0.n in the last word; ::1 and ::2 behave alike in the data path)',
  },
  { name: 'v4-mapped', minScope: 2, pool: 'v4', render: (n) => `::ffff:10.0.0.${n}`, stands: 'v4-mapped IPv6 (::ffff:10.0.0.n)' },
  { name: 'any4', minScope: 2, pool: null, render: () => '0.0.0.0', stands: 'the IPv4 any-address' },
  { name: 'any6', minScope: 2, pool: null, render: () => '::', stands: 'the IPv6 any-address (all 16 bytes zero)' },
  { name: 'loopback4', minScope: 3, pool: null, render: () => '127.0.0.1', stands: '127.0.0.0/8 (127.0.0.1)' },
  { name: 'control4', minScope: 1, pool: null, render: () => '0.0.0.2', stands: 'the IPv4 control address' },
  { name: 'control6', minScope: 1, pool: null, render: () => '::2', stands: 'the IPv6 control address' },
];

/** Classes of a connect's destination address, per socket family. */
export const DEST_ADDRESS_CLASSES = {
  inet: ['ipv4', 'any4', 'loopback4', 'control4'],
  inet6: ['ipv6', 'ipv6-low', 'v4-mapped', 'any6', 'control6'],
} as const;

/** Classes of an address stored in a map (backend address, waypoint address, DNS proxy address). */
export const STORED_ADDRESS_CLASSES = ['ipv4', 'ipv6', 'ipv6-low', 'v4-mapped', 'any4', 'any6', 'loopback4'] as const;

/** The DNS proxy (km_backend[0]) is absent or has an address of either family. */
export const DNS_PROXY_ADDRESS_CLASSES = ['ipv4', 'ipv6'] as const;

export interface ValueClass {
  readonly name: string;
  readonly minScope: number;
  readonly value: number;
  readonly stands: string;
}

/** The ordinary destination port: services' ports are this one or another. */
export const ORDINARY_PORT = 80;
/** The port a configured waypoint listens on. */
export const WAYPOINT_PORT = 15001;

/**
 * Destination ports. `minScope` applies to ordinary destinations, `controlMinScope` to the control
 * addresses, whose interesting ports are the control ports: a control address with another port,
 * or another address with a control port, is a class of scope 2.
 */
export const DEST_PORT_CLASSES: readonly (ValueClass & { readonly controlMinScope: number })[] = [
  { name: 'ordinary', minScope: 1, controlMinScope: 2, value: ORDINARY_PORT, stands: 'any port with a listener that is not 53, 929 or 930 (80)' },
  { name: 'dns', minScope: 1, controlMinScope: 2, value: DNS_PORT, stands: 'the DNS port' },
  { name: 'enrol', minScope: 2, controlMinScope: 1, value: ControlPort.enrol, stands: 'the enrol control port (from scope 1 on the control address)' },
  { name: 'withdraw', minScope: 2, controlMinScope: 2, value: ControlPort.withdraw, stands: 'the withdraw control port' },
  { name: 'zero', minScope: 3, controlMinScope: 3, value: 0, stands: 'port 0' },
];

/** service_port[i]: the port the pass looks for, another one, the waypoint's, 0. */
export const SERVICE_PORT_CLASSES: readonly ValueClass[] = [
  { name: 'other', minScope: 1, value: 81, stands: 'a port no destination uses (81): matches nothing' },
  { name: 'ordinary', minScope: 1, value: ORDINARY_PORT, stands: 'equal to the ordinary destination port' },
  { name: 'waypoint', minScope: 1, value: WAYPOINT_PORT, stands: 'equal to the waypoint port (the port a pass after a waypoint looks for)' },
  { name: 'dns', minScope: 3, value: DNS_PORT, stands: 'the DNS port' },
  { name: 'zero', minScope: 3, value: 0, stands: 'port 0 (an unused slot)' },
  { name: 'wide', minScope: 1, value: 0x10000 + ORDINARY_PORT, stands: 'the ordinary port with an upper half (80+0x1<<16): matches nothing, its low half does' },
];

/** Port slots beyond the first `scope` are "other": slot i matters only at scope > i. */
export function portSlotsAt(scope: number): number {
  return Math.max(1, scope);
}

/** target_port[i]: 8000 + i is distinct per slot, so reading the wrong slot shows. */
export const TARGET_PORT_CLASSES: readonly (ValueClass & { readonly perSlot?: boolean })[] = [
  { name: 'ordinary', minScope: 1, value: 8000, perSlot: true, stands: 'an ordinary port with a listener, 8000 + slot index (distinct per slot)' },
  { name: 'zero', minScope: 2, value: 0, stands: 'port 0 (no listener)' },
  { name: 'dns', minScope: 3, value: DNS_PORT, stands: 'the DNS port' },
  { name: 'enrol', minScope: 3, value: ControlPort.enrol, stands: 'the enrol port (no listener)' },
  { name: 'wide', minScope: 3, value: 0x10000 + 8000, perSlot: true, stands: 'an ordinary port with an upper half: the low half is written' },
];

export const WAYPOINT_PORT_CLASSES: readonly ValueClass[] = [
  { name: 'none', minScope: 1, value: 0, stands: 'port 0: no waypoint, whatever the address' },
  { name: 'waypoint', minScope: 1, value: WAYPOINT_PORT, stands: 'a waypoint port (15001)' },
  { name: 'wide', minScope: 2, value: 0x10000, stands: 'an upper half with a low half of 0 (0+0x1<<16): configured, at port 0' },
];

export const LB_POLICY_CLASSES: readonly ValueClass[] = [
  { name: 'random', minScope: 1, value: LbPolicy.random, stands: 'random' },
  { name: 'strict', minScope: 1, value: LbPolicy.strict, stands: 'strict' },
  { name: 'failover', minScope: 1, value: LbPolicy.failover, stands: 'failover' },
  { name: 'unknown', minScope: 2, value: 0x101, stands: "any value other than 0, 1, 2 (0x101: its low byte is strict's, for a program that reads fewer bytes)" },
];

/**
 * A count whose low half is 0 and whose top bit is set: a program that reads the count at 16 or 8
 * bits takes the group for empty, one that reads it as a signed int for negative (a `> 0` test
 * skips it); the u32 holds 2^31 indices, of which only those up to endpointIndexLimit can be
 * present. In group 0 of a failover service (the first group its scan reads; the scan is where an
 * emptiness test decides a group). At no cost: scope 1 grows by a sixth (1,232 -> 1,448 states),
 * scope 2 by a third (38,186 -> 50,242). Offered to every policy, it grew scope 2 by 103%;
 * sampling's wide counts (generators/raw-state.ts) meet the other policies. It was 0x10000 until a
 * blind hunter's failover that read counts signed passed scope 2.
 */
export const WIDE_COUNT = 0x80000000;

/** Endpoint counts per priority group: 0..scope, and WIDE_COUNT in group 0 of a failover service. */
export function countValues(scope: number, prio: number, policy: number | undefined): number[] {
  const small = Array.from({ length: scope + 1 }, (_, i) => i);
  return prio === 0 && policy === LbPolicy.failover ? [...small, WIDE_COUNT] : small;
}

/**
 * The largest endpoint index an entry may have at scope N: one past the largest small count (an
 * off-by-one pick reads it). A read of a larger index, which only a wide count or a program
 * that takes another modulus makes, finds no entry and decides nothing, so that a draw over a
 * wide count does not branch over 2^31 entries.
 */
export function endpointIndexLimit(scope: number): number {
  return scope + 1;
}

/**
 * The prandom values the VM branches over at scope N: 0..N and the largest u32. Every 1-based
 * index of a group of count <= N comes from 0..N-1; N and 2^32-1 land elsewhere for a program
 * that takes another modulus (e.g. the number of groups) or mishandles large values. From count
 * 3 on, also the draws that give each index under a multiply-shift pick (lb-domain.ts
 * spreadDraw; for counts 1 and 2, 0 and 2^32-1 already do), so that a program that picks
 * uniformly but not by `%` is not blamed for an endpoint no draw gives.
 */
export function prandomValues(scope: number): number[] {
  const values = new Set([...Array.from({ length: scope + 1 }, (_, i) => i), 0xffffffff]);
  for (let count = 3; count <= scope; count++) for (let i = 0; i < count; i++) values.add(spreadDraw(i, count));
  return [...values].sort((a, b) => a - b);
}

export interface SkeletonClass {
  readonly name: string;
  readonly minScope: number;
  readonly stands: string;
  /** Datagram operations (sendto, recvfrom, deliver; section 6): UDP sockets only. */
  readonly datagram?: boolean;
  /** The socket families it runs on (default: both). */
  readonly families?: readonly Family[];
  /** Destination classes it takes from scope 1 at no cost, as the ones it exists for (elsewhere the class's own scope). */
  readonly ownDestClasses?: readonly string[];
  /** A datagram sequence that connects the socket to the destination (DATAGRAM_EXCLUDED_DEST_CLASSES). */
  readonly connects?: boolean;
}

/** The scope from which `seq` takes destination class `destClass` (SkeletonClass.ownDestClasses). */
export function destClassScope(seq: SkeletonClass, destClass: string): number {
  return seq.ownDestClasses?.includes(destClass) ? 1 : addressClass(destClass).minScope;
}

/**
 * Operation sequences on one socket. The datagram ones come last, so that adding them kept the
 * indices (and saved paths) of the others. In the datagram ones, B is the destination class's second
 * address (the same address for a fixed class) and X the next IPv4 address no destination uses
 * (10.0.0.2 after a 10.0.0.n destination, else 10.0.0.1). An IPv4 DNS proxy gets any address of
 * the pool (decisions.ts), X's among them: a datagram from X may be the proxy's.
 */
export const SEQUENCE_CLASSES: readonly SkeletonClass[] = [
  { name: 'connect-send', minScope: 1, stands: 'socket, connect, send two messages in one call' },
  { name: 'connect-again-send-twice', minScope: 2, stands: 'socket, connect, connect again to the same destination, send two messages' },
  { name: 'connect-close-connect', minScope: 3, stands: 'socket, connect, close; a second socket of the same kind connects to the same destination and sends one message' },
  { name: 'sendto-recv-twice', minScope: 1, datagram: true, stands: 'UDP: sendto the destination, recvfrom, sendto B (same port), recvfrom' },
  { name: 'sendto-deliver-recv', minScope: 1, datagram: true, stands: 'UDP: sendto the destination, a datagram from X port 53 and one from X port 5353, recvfrom three times' },
  { name: 'connect-send-recv', minScope: 1, datagram: true, connects: true, stands: 'UDP: connect, send one message, recvfrom' },
  { name: 'connect-sendto-recv', minScope: 1, datagram: true, connects: true, stands: 'UDP: connect, sendto the same destination, recvfrom' },
  {
    name: 'bound-sendto-recv',
    minScope: 1,
    datagram: true,
    families: ['inet'],
    stands: "UDP, AF_INET: a socket bound to the pod's address (a local IP that an enrolled start writes to km_manage), sendto the destination, recvfrom",
  },
  {
    name: 'control-sendto-recv',
    minScope: 1,
    datagram: true,
    stands:
      'UDP: sendto the control address (port 929 where the namespace starts outside, 930 where it starts enrolled: an AF_INET send enrols or withdraws it; an AF_INET6 socket writes it v4-mapped, which changes nothing), sendto the destination, recvfrom',
  },
  {
    name: 'sendto-deliver6-recv',
    minScope: 1,
    datagram: true,
    families: ['inet6'],
    // A v4-mapped server is the one AF_INET6 query the send hook redirects: the restore this sequence is for.
    ownDestClasses: ['v4-mapped'],
    stands:
      'UDP, AF_INET6: sendto B, a datagram from fd00::ffff:a00:1 port 53 (native IPv6; its last 64 bits are those of ::ffff:10.0.0.1, and 10.0.0.1 is an address an IPv4 DNS proxy may get), recvfrom twice; from scope 1 to v4-mapped servers too (the queries the send hook redirects)',
  },
];

/**
 * Destination classes a datagram sequence that connects (SkeletonClass.connects) leaves out: a
 * connect to the any-address makes the socket's peer its own address, which the DNS exchange rule
 * does not follow. The sendto sequences take them: the kernel sends a datagram there to loopback,
 * or to the socket's IPv4 source when it has one, which the model and the stand-ins follow.
 */
export const DATAGRAM_EXCLUDED_DEST_CLASSES: readonly string[] = ['any4', 'any6'];

/** Ids (service ids and backend uids share one space) are 1..scope; uid 0 is the DNS proxy. */
export const ID_STANDS = 'service ids and backend uids: an existing one or the next fresh one (1..scope; a second id is a deviation); uid 0 only as the DNS proxy';

/**
 * Deviations: scope N enumerates the classes of scope <= N, at most N entries per map and N ids and
 * addresses per pool, and along one choice sequence at most N - 1 deviations, answers that scope 1
 * does not offer: a class from scope 2 on (destination, port, operation sequence or field value),
 * an endpoint count above 1, a matching port in a slot after the first, a second id, a second
 * frontend entry, a second endpoint entry. Scope-1 answers are unlimited, so scope 1 is every
 * state of one entry per map and scope N contains scope N - 1. Addresses of a pool cost nothing
 * (a fresh one matters only when looked up, which a frontend entry pays for), nor do service and
 * backend entries (their ids pay), nor a frontend entry under a decided waypoint address: that key
 * is forced by the program (the chain's next pass looks it up), the entry is the waypoint's VIP,
 * and the id it names pays as any other. Without this bound scope 2 holds millions of states: every
 * combination of two services' worth of fields.
 */
export function deviationsAt(scope: number): number {
  return Math.max(0, scope - 1);
}

/** What "complete for scope N" covers, in one line (the summary and the JSON report say it). */
export function scopeMeaning(scope: number): string {
  const d = deviationsAt(scope);
  return `every state with value classes of scope <= ${scope}, at most ${scope} entries per map and ${scope} ids, and at most ${d} deviation${d === 1 ? '' : 's'} from scope 1`;
}

/** What an answer from a class of `minScope` costs in deviations. */
export function deviationCost(minScope: number): number {
  return minScope > 1 ? 1 : 0;
}

/** An endpoint count above 1 is a deviation, but WIDE_COUNT. */
export function countCost(count: number): number {
  return count > 1 && count !== WIDE_COUNT ? 1 : 0;
}

export function allowed<T extends { readonly minScope: number }>(list: readonly T[], scope: number): T[] {
  return list.filter((c) => c.minScope <= scope);
}

export function addressClass(name: string): AddressClass {
  const c = ADDRESS_CLASSES.find((x) => x.name === name);
  if (!c) throw new Error(`no address class ${name}`);
  return c;
}

/** One row per enumerated kind of value, for docs/spec.md. */
export interface ClassRow {
  readonly what: string;
  readonly classes: readonly { readonly name: string; readonly minScope: number; readonly stands: string }[];
}

/** From this scope on, an enrolled namespace also starts otherwise than by control connects with reports on (skeletons.ts START_VARIANTS). */
export const OTHER_START_MIN_SCOPE = 2;

export function classTable(): ClassRow[] {
  const addr = (names: readonly string[]) => names.map((n) => addressClass(n));
  return [
    { what: 'socket', classes: [{ name: 'AF_INET / AF_INET6 x TCP / UDP', minScope: 1, stands: 'every family and protocol' }] },
    {
      what: 'namespace enrolled',
      classes: [
        { name: 'yes / no', minScope: 1, stands: 'km_manage has the netns cookie and the local addresses (control connects), or nothing; connection reports on' },
        {
          name: 'another start of an enrolled namespace',
          minScope: OTHER_START_MIN_SCOPE,
          stands: 'a deviation: km_manage written with the netns cookie alone, with the local addresses alone, or with both at the value 0xffffffff; or connection reports off (enable_monitoring 0)',
        },
      ],
    },
    { what: 'operations', classes: SEQUENCE_CLASSES },
    { what: 'destination address (AF_INET)', classes: addr(DEST_ADDRESS_CLASSES.inet) },
    { what: 'destination address (AF_INET6)', classes: addr(DEST_ADDRESS_CLASSES.inet6) },
    { what: 'destination port', classes: DEST_PORT_CLASSES },
    {
      what: 'entries per routing map',
      classes: [
        { name: 'at most scope present', minScope: 1, stands: 'a read of a new key once a map holds `scope` entries finds it absent (the small-scope bound)' },
        {
          name: 'second frontend or endpoint entry',
          minScope: 2,
          stands: "a deviation (service and backend entries pay by their ids; a frontend entry under a decided waypoint address is the waypoint's, and free)",
        },
      ],
    },
    { what: 'km_frontend entry (read by key)', classes: [{ name: 'absent / upstream id', minScope: 1, stands: ID_STANDS }] },
    { what: 'km_service / km_backend entry', classes: [{ name: 'absent / present', minScope: 1, stands: 'present entries have their fields decided one by one when read' }] },
    {
      what: 'km_endpoint entry',
      classes: [
        { name: 'absent / backend uid', minScope: 1, stands: ID_STANDS },
        { name: 'index > scope + 1', minScope: 1, stands: 'absent, decided by no choice (an index past one beyond every small count; only a wide count or another modulus reads one)' },
      ],
    },
    {
      what: 'prio_endpoint_count[p]',
      classes: [
        { name: '0, 1', minScope: 1, stands: 'each group separately' },
        {
          name: '0x80000000 in group 0 of a failover service',
          minScope: 1,
          stands: 'a count whose low half (and byte) is 0 and top bit set, which a program that reads the count narrower than its u32 takes for empty, and one that reads it signed for negative',
        },
        { name: '2..scope', minScope: 2, stands: 'a deviation' },
      ],
    },
    { what: 'lb_policy', classes: LB_POLICY_CLASSES },
    {
      what: 'service_port[i]',
      classes: [...SERVICE_PORT_CLASSES, { name: 'slots >= scope', minScope: 1, stands: 'fixed to "other": slot i varies from scope i + 1; a matching port in a slot after the first is a deviation' }],
    },
    { what: 'target_port[i]', classes: TARGET_PORT_CLASSES },
    { what: 'waypoint_port', classes: WAYPOINT_PORT_CLASSES },
    { what: 'wp_addr', classes: [{ name: 'zero', minScope: 1, stands: 'all 16 bytes zero' }, ...addr(STORED_ADDRESS_CLASSES)] },
    {
      what: 'backend addr',
      classes: [{ name: 'zero', minScope: 1, stands: 'all 16 bytes zero: the IPv4 any-address, written ::ffff:0.0.0.0 on AF_INET6 (not the DNS proxy)' }, ...addr(STORED_ADDRESS_CLASSES)],
    },
    { what: 'DNS proxy (km_backend[0])', classes: [{ name: 'absent', minScope: 1, stands: 'no proxy' }, ...addr(DNS_PROXY_ADDRESS_CLASSES)] },
    { what: 'backend service_count, service[]', classes: [{ name: '0', minScope: 1, stands: 'the data path does not read them; 0 and empty stand for every value' }] },
    {
      what: 'prandom',
      classes: [
        {
          name: '0..scope, 2^32-1',
          minScope: 1,
          stands: 'every index of a group of count <= scope, one value past it and the largest value; from scope 3, also each index of a multiply-shift pick',
        },
      ],
    },
  ];
}
