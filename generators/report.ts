// fast-check arbitraries for connection-report cases: the two gates, the node and gateway
// globals (sometimes the client's own address, so no authorization request is due), and a few
// connections one after another, AF_INET, AF_INET6 with v4-mapped addresses or native ::1, direct
// or through a service VIP (an IPv4 one of an IPv6 listener too and an IPv6 one of an IPv4
// listener, one routed via a waypoint), to an
// AF_INET listener or an AF_INET6 one bound to ::ffff:127.0.0.1, with traffic both ways, either
// end closing first, user space storing a verdict or not, and ends that are not managed (the client
// bound to, or the server listening on, an address never enrolled; an IPv6 client's ends in the
// last 64 bits of ::ffff:127.0.0.1, which the globals may hold), now and then in a namespace
// withdrawn from km_manage while its local IPs stay enrolled, or with the pod withdrawn once a
// connection is established (the later ones connect straight to their listeners). Waits (time passing before a
// send or the close) where the clock is an input (the VM, which also takes the kernel executor's
// cases that wait): around the 5 s threshold, exactly on it, and in steps that add up past it.

import fc from 'fast-check';
import { v4MappedInner } from '../model/address.js';
import { backend, endpoint, frontend, maps, service } from '../model/builders.js';
import { REPORT_LOADED_GLOBALS, REPORT_NEAR_MAPPED_LOCAL, REPORT_UNMANAGED_LOCAL, enrolledAt, monitoredAt, type ReportCase, type ReportConn, type ReportEnd } from '../model/report/domain.js';
import type { SockAddr } from '../model/domain.js';

/** The waypoint of REPORT_WAYPOINT_VIP's service, a listener of the case. */
export const REPORT_WAYPOINT = { addr: '127.0.0.1', port: 15008 };
/** A service VIP routed via REPORT_WAYPOINT (the pass there misses: the chain ends at the waypoint). */
export const REPORT_WAYPOINT_VIP = { addr: '10.96.0.4', port: 80 };

/**
 * A service VIP 10.96.0.1:80 whose one backend is the listener 127.0.0.1:8080, an IPv6 one,
 * [fd00::96:1]:80, whose backend is the listener [::1]:8080 (an IPv6 original destination), and
 * an IPv4 one, 10.96.0.2:80, whose backend is that IPv6 listener too (an AF_INET6 client that
 * connects to ::ffff:10.96.0.2 ends up native IPv6 with a v4-mapped original destination), and
 * the other way round an IPv6 one, [fd00::96:2]:80, whose backend is the IPv4 listener (an AF_INET6
 * client ends up in IPv4 traffic, its records IPv4, with an original no IPv4 record can hold), the
 * pod REPORT_POD, a frontend of its own, and REPORT_WAYPOINT_VIP, whose clients are waypoint-bound.
 */
export const REPORT_STATE = maps({
  frontends: [frontend('10.96.0.1', 1), frontend('fd00::96:1', 2), frontend('10.96.0.2', 3), frontend('fd00::96:2', 5), frontend('127.0.0.3', 9), frontend(REPORT_WAYPOINT_VIP.addr, 4)],
  services: [
    service(1, { counts: [1], ports: [[80, 8080]] }),
    service(2, { counts: [1], ports: [[80, 8080]] }),
    service(3, { counts: [1], ports: [[80, 8080]] }),
    service(4, { counts: [1], ports: [[80, 8080]], waypoint: REPORT_WAYPOINT }),
    service(5, { counts: [1], ports: [[80, 8080]] }),
  ],
  endpoints: [endpoint(1, 0, 1, 7), endpoint(2, 0, 1, 8), endpoint(3, 0, 1, 8), endpoint(4, 0, 1, 7), endpoint(5, 0, 1, 7)],
  backends: [backend(7, '127.0.0.1', [1, 4, 5]), backend(8, '::1', [2, 3]), backend(9, '127.0.0.3')],
});
/**
 * A pod reached straight by its own address (frontend 127.0.0.3 -> backend 9, no waypoint): the
 * connect is kept and records its destination, so the original equals the server end. Its
 * listener's address is not enrolled (the server end is unmanaged).
 */
export const REPORT_POD = { addr: '127.0.0.3', port: 8080 };
export const REPORT_LISTEN = { addr: '127.0.0.1', port: 8080 };
export const REPORT_VIP = { addr: '10.96.0.1', port: 80 };
export const REPORT_LISTEN6 = { addr: '::1', port: 8080 };
export const REPORT_VIP6 = { addr: 'fd00::96:1', port: 80 };
/** The IPv4 VIP of the IPv6 listener, as an AF_INET6 client writes it. */
export const REPORT_VIP_MAPPED_TO6 = { addr: '::ffff:10.96.0.2', port: 80 };
/** The IPv6 VIP of the IPv4 listener: an AF_INET6 client of it is rewritten to ::ffff:127.0.0.1. */
export const REPORT_VIP6_TO4 = { addr: 'fd00::96:2', port: 80 };
/** The IPv4 listener's address as an AF_INET6 listener binds it: it takes IPv4 clients, its own family AF_INET6. */
export const REPORT_LISTEN_MAPPED = { addr: '::ffff:127.0.0.1', port: 8080 };

const end = fc.constantFrom<ReportEnd>('client', 'server');

/** Where a client of each flavour connects, and where its listener is. */
const TARGETS = {
  inet: { listen: REPORT_LISTEN, to: [REPORT_LISTEN, REPORT_VIP] },
  mapped: {
    listen: REPORT_LISTEN,
    to: [{ addr: '::ffff:127.0.0.1', port: 8080 }, { addr: '::ffff:10.96.0.1', port: 80 }, REPORT_VIP6_TO4],
  },
  inet6: { listen: REPORT_LISTEN6, to: [REPORT_LISTEN6, REPORT_VIP6, REPORT_VIP_MAPPED_TO6] },
} as const;

/** Waits around the 5 s threshold: none, short, just under, exactly on, just over, well over. */
export const REPORT_WAITS_NS: readonly number[] = [0, 0, 0, 3_000_000_000, 4_999_999_999, 5_000_000_000, 5_000_000_001, 7_000_000_000];
const waitArb = (withWaits: boolean) => (withWaits ? fc.constantFrom(...REPORT_WAITS_NS) : fc.constant(0));
/** Handshakes that take time now and then: a start stamped at establishment instead of at the connect shows. */
const handshakeArb = (withWaits: boolean) => (withWaits ? fc.constantFrom(0, 0, 0, 0, 0, 1_000_000_000, 3_000_000_000) : fc.constant(0));
const UNMANAGED_LISTEN = { addr: REPORT_UNMANAGED_LOCAL, port: 8080 };
/** A send larger than a u16 counts: a program that keeps the byte counts at 16 bits reports less. */
export const REPORT_LARGE_SEND = 70_000;
const sendSize = fc.oneof({ weight: 15, arbitrary: fc.integer({ min: 1, max: 2048 }) }, { weight: 1, arbitrary: fc.constant(REPORT_LARGE_SEND) });

const connArb = (withWaits: boolean): fc.Arbitrary<ReportConn> =>
  fc
    .record({
      flavour: fc.constantFrom<keyof typeof TARGETS>('inet', 'inet', 'inet', 'mapped', 'inet6'),
      // Modulo each flavour's targets (2 or 3).
      target: fc.nat({ max: 5 }),
      /** An IPv4 listener bound by an AF_INET6 socket (::ffff:127.0.0.1) now and then. */
      listenMapped: fc.constantFrom(false, false, false, true),
      sends: fc.array(fc.record({ from: end, size: sendSize, waitNs: waitArb(withWaits) }), { maxLength: 3 }),
      closeWaitNs: waitArb(withWaits),
      handshakeNs: handshakeArb(withWaits),
      firstClose: end,
      storeVerdict: fc.boolean(),
      /**
       * 0 both ends managed, 1 the client not (an IPv6 one bound to REPORT_NEAR_MAPPED_LOCAL), 2
       * the server not (IPv4 and v4-mapped clients only).
       */
      unmanaged: fc.constantFrom(0, 0, 0, 1, 2),
      /** User space turns monitoring off, or on, once the connection is established, now and then. */
      monitoringToggle: fc.constantFrom<'off' | 'on' | null>(null, null, null, null, 'off', 'on'),
      /** User space withdraws the pod from km_manage once the connection is established, now and then. */
      withdraw: fc.constantFrom(false, false, false, false, false, false, false, true),
      /** An IPv4 or v4-mapped client of the pod at REPORT_POD (its own frontend: kept, original recorded) now and then. */
      pod: fc.constantFrom(false, false, false, false, false, true),
      /** An IPv4 or v4-mapped client of REPORT_WAYPOINT_VIP (waypoint-bound) now and then. */
      waypointed: fc.constantFrom(false, false, false, false, false, true),
      /** Open until the later connections are closed (in a case whose connections overlap: reportCases). */
      closeLast: fc.boolean(),
      /** The first closer aborts (a reset) now and then. */
      abort: fc.constantFrom(false, false, false, true),
    })
    .map(({ flavour, target, listenMapped, unmanaged, pod, waypointed, monitoringToggle, withdraw, closeLast, abort, sends, closeWaitNs, handshakeNs, ...rest }) => {
      const t = TARGETS[flavour];
      const v4 = flavour !== 'inet6';
      const atPod = v4 && pod;
      const lonely = v4 && unmanaged === 2 && !atPod;
      const viaWaypoint = v4 && waypointed && !atPod && !lonely;
      const listen = atPod ? REPORT_POD : lonely ? UNMANAGED_LISTEN : viaWaypoint ? REPORT_WAYPOINT : v4 && listenMapped ? REPORT_LISTEN_MAPPED : t.listen;
      const nearMapped = !v4 && unmanaged === 1;
      const to = t.to[target % t.to.length]!;
      const inFamily = (a: SockAddr) => (flavour === 'inet' ? a : { addr: `::ffff:${a.addr}`, port: a.port });
      // A client bound to a native IPv6 address cannot reach a v4-mapped VIP: it takes the IPv6 ones.
      const connectTo = atPod
        ? inFamily(REPORT_POD)
        : lonely
          ? inFamily(UNMANAGED_LISTEN)
          : viaWaypoint
            ? inFamily(REPORT_WAYPOINT_VIP)
            : nearMapped && to === REPORT_VIP_MAPPED_TO6
              ? REPORT_VIP6
              : to;
      const clientAddr = unmanaged !== 1 ? undefined : flavour === 'inet' ? REPORT_UNMANAGED_LOCAL : flavour === 'mapped' ? `::ffff:${REPORT_UNMANAGED_LOCAL}` : REPORT_NEAR_MAPPED_LOCAL;
      return {
        ...rest,
        clientFamily: flavour === 'inet' ? ('inet' as const) : ('inet6' as const),
        ...(clientAddr ? { clientAddr } : {}),
        listen,
        connectTo,
        // A waypoint-bound client's first send would carry the TLV (section 4, checked by the
        // routing phases), which the report harnesses do not read: its peer sends instead.
        sends: sends.map(({ waitNs, from, ...x }) => ({ from: viaWaypoint ? ('server' as const) : from, ...x, ...(waitNs ? { waitNs } : {}) })),
        ...(closeWaitNs ? { closeWaitNs } : {}),
        ...(handshakeNs ? { handshakeNs } : {}),
        ...(monitoringToggle === 'off' ? { monitoringOff: true } : monitoringToggle === 'on' ? { monitoringOn: true } : {}),
        ...(withdraw ? { withdraw: true } : {}),
        ...(closeLast ? { closeLast: true } : {}),
        ...(abort ? { abort: true } : {}),
      };
    });

/**
 * A case's connections as drawn, or, where they overlap, without waits (what each end is due
 * stays its own) and with the first one and those drawn so closed last; never the last one (it
 * closes last anyway).
 */
function overlapping(conns: ReportConn[], overlap: boolean): ReportConn[] {
  const on = overlap && conns.length > 1;
  return conns.map(({ closeLast, closeWaitNs, handshakeNs, sends, ...k }, i) => {
    if (!on) return { ...k, sends, ...(closeWaitNs ? { closeWaitNs } : {}), ...(handshakeNs ? { handshakeNs } : {}) };
    return { ...k, sends: sends.map((x) => ({ from: x.from, size: x.size })), ...((closeLast || i === 0) && i < conns.length - 1 ? { closeLast: true } : {}) };
  });
}

/** The connection with its client connecting straight to the listener, in the client's family. */
function direct(conn: ReportConn): ReportConn {
  const inner = v4MappedInner(conn.listen.addr) ?? conn.listen.addr;
  const v4 = !inner.includes(':');
  const addr = conn.clientFamily === 'inet6' && v4 ? `::ffff:${inner}` : inner;
  return { ...conn, connectTo: { addr, port: conn.listen.port } };
}

/** A global that is unset, some other address, or the client's own (127.0.0.1). */
const globalIp = fc.constantFrom<string | undefined>(undefined, undefined, '10.0.0.1', '127.0.0.1');

const onMostly = fc.constantFrom(false, true, true, true);

/**
 * Each drawn toggle of enable_monitoring (monitoringOff or monitoringOn) as the one that changes
 * it where it stands then: writing the value it already has checks nothing, and a connection
 * established unmonitored that turns monitoring on is what a period timed from the connect shows.
 */
function flipsThatChange(conns: readonly ReportConn[], monitoring: boolean): ReportConn[] {
  const out: ReportConn[] = [];
  for (const { monitoringOff, monitoringOn, ...k } of conns) {
    if (!monitoringOff && !monitoringOn) out.push(k);
    // Where monitoring stands as this connection is established: the model's own fold of the toggles before it.
    else out.push(monitoredAt({ monitoring, conns: out }, out.length) ? { ...k, monitoringOff: true } : { ...k, monitoringOn: true });
  }
  return out;
}

/** Report cases; `waits` where the executor's clock is an input (the VM), never on the kernel. */
export function reportCases(o: { waits: boolean }): fc.Arbitrary<ReportCase> {
  return fc
    .record({
      // Where time passes, mostly with both gates on: the periodic reports are what waits exercise.
      monitoring: o.waits ? onMostly : fc.boolean(),
      periodic: o.waits ? onMostly : fc.boolean(),
      nodeIp: globalIp,
      podGateway: globalIp,
      conns: fc.array(connArb(o.waits), { minLength: 1, maxLength: 3 }),
      outside: fc.constantFrom(false, false, false, true),
      /** Now and then the globals as the objects load them (their defaults are then what is checked). */
      asLoaded: fc.constantFrom(false, false, false, false, false, true),
      /** Connections that overlap (ReportConn.closeLast), now and then; then no time passes. */
      overlap: fc.constantFrom(false, false, false, true),
    })
    .map(({ nodeIp, podGateway, outside, asLoaded, overlap, conns: drawn, ...rest }) => {
      const monitoring = asLoaded ? REPORT_LOADED_GLOBALS.monitoring : rest.monitoring;
      const conns = overlapping(flipsThatChange(drawn, monitoring), overlap);
      return {
        ...rest,
        ...(asLoaded ? { ...REPORT_LOADED_GLOBALS, globalsAsLoaded: true as const } : {}),
        ...(nodeIp ? { nodeIp } : {}),
        ...(podGateway ? { podGateway } : {}),
        state: REPORT_STATE,
        // Outside, nothing rewrites a VIP: each client connects to its listener, in its own family;
        // nor after a withdrawal, for the connections that follow it.
        ...(outside ? { namespaceOutside: true, conns: conns.map(direct) } : { conns: conns.map((k, i) => (enrolledAt({ conns }, i) ? k : direct(k))) }),
      };
    });
}

/** The kernel's generated cases: no waits. */
export const reportCaseArb: fc.Arbitrary<ReportCase> = reportCases({ waits: false });
