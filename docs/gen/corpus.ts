// The hand-written cases the generated spec draws its examples from: small, readable states with
// round addresses. Each says which invariants it is meant to show; the example finder still
// checks that the invariant is exercised (not vacuous) on the model's outcomes before using it.

import { EMPTY_STATE, NO_WAYPOINT, type Case, type MapState, type Operation, type Service, type Waypoint } from '../../model/domain.js';

export interface CorpusCase {
  readonly title: string;
  /** Invariants this case is meant to illustrate (a preference, verified by the finder). */
  readonly shows: readonly string[];
  readonly case: Case;
}

import { backend, connect, deliver, recvfrom, send, sendto, socket, service as serviceOf } from '../../model/builders.js';

const service = (id: number, counts: number[], policy: number, ports: [number, number][], waypoint: Waypoint = NO_WAYPOINT): Service => serviceOf(id, { counts, policy, ports, waypoint });

const VIP = '10.0.0.1';

/** Service 1 at 10.0.0.1, port 80 -> 8080, random policy, three prio-0 backends 10.1.0.1..3. */
function threeBackends(): MapState {
  const uids = [101, 102, 103];
  return {
    frontends: [{ addr: VIP, upstreamId: 1 }],
    services: [service(1, [3], 0, [[80, 8080]])],
    endpoints: uids.map((uid, i) => ({ serviceId: 1, prio: 0, index: i + 1, backendUid: uid })),
    backends: uids.map((uid, i) => backend(uid, `10.1.0.${i + 1}`, [1])),
  };
}

/** Service 1 at 10.0.0.1, port 80 -> 8080, strict policy, one backend 10.1.0.1. */
function oneBackend(): MapState {
  return {
    frontends: [{ addr: VIP, upstreamId: 1 }],
    services: [service(1, [1], 1, [[80, 8080]])],
    endpoints: [{ serviceId: 1, prio: 0, index: 1, backendUid: 101 }],
    backends: [backend(101, '10.1.0.1', [1])],
  };
}

/** Service 1 at 10.0.0.1:80 routed via waypoint service 2 (10.0.0.200:15008, one pod 10.2.0.1). */
function viaWaypoint(): MapState {
  return {
    frontends: [
      { addr: VIP, upstreamId: 1 },
      { addr: '10.0.0.200', upstreamId: 2 },
    ],
    services: [service(1, [1], 0, [[80, 8080]], { addr: '10.0.0.200', port: 15008 }), service(2, [1], 0, [[15008, 15008]])],
    endpoints: [
      { serviceId: 1, prio: 0, index: 1, backendUid: 101 },
      { serviceId: 2, prio: 0, index: 1, backendUid: 201 },
    ],
    backends: [backend(101, '10.1.0.1', [1]), backend(201, '10.2.0.1', [2])],
  };
}

function dnsProxy(): MapState {
  return { ...EMPTY_STATE, backends: [backend(0, '10.0.0.53', [])] };
}

const consistent = (state: MapState, ops: Operation[], enrolled = true): Case => ({ state, kind: 'consistent', enrolled, ops });

/** One random draw among three backends: the worked example of the load-balancing section. */
export const RANDOM_LB_CASE: Case = consistent(threeBackends(), [socket(1, 'inet'), connect(1, VIP, 80)]);

/** Service 1 at 10.0.0.1 (80 -> 8080, 443 -> 8443), strict policy, one backend 10.1.0.1. */
function twoPorts(): MapState {
  return {
    ...oneBackend(),
    services: [
      service(1, [1], 1, [
        [80, 8080],
        [443, 8443],
      ]),
    ],
  };
}

/** Service 1 at 10.0.0.1, failover: priority 0 empty, backends 10.1.1.1 and 10.1.1.2 at priority 1. */
function failoverToPrio1(): MapState {
  return {
    frontends: [{ addr: VIP, upstreamId: 1 }],
    services: [service(1, [0, 2], 2, [[80, 8080]])],
    endpoints: [
      { serviceId: 1, prio: 1, index: 1, backendUid: 111 },
      { serviceId: 1, prio: 1, index: 2, backendUid: 112 },
    ],
    backends: [backend(111, '10.1.1.1', [1]), backend(112, '10.1.1.2', [1])],
  };
}

/** Service 1 at 10.0.0.1 with IPv4 backend 10.1.0.1; service 2 at 10.0.0.2 with IPv6 backend fd00::1:2. */
function mixedFamilies(): MapState {
  return {
    frontends: [
      { addr: VIP, upstreamId: 1 },
      { addr: '10.0.0.2', upstreamId: 2 },
    ],
    services: [service(1, [1], 1, [[80, 8080]]), service(2, [1], 1, [[80, 8080]])],
    endpoints: [
      { serviceId: 1, prio: 0, index: 1, backendUid: 101 },
      { serviceId: 2, prio: 0, index: 1, backendUid: 201 },
    ],
    backends: [backend(101, '10.1.0.1', [1]), backend(201, 'fd00::1:2', [2])],
  };
}

/** In order of preference when a case shows nothing in particular for an invariant. */
export const CORPUS: readonly CorpusCase[] = [
  {
    title: 'A TCP connect to a service VIP: random policy, three backends',
    shows: ['original-written-once'],
    case: RANDOM_LB_CASE,
  },
  {
    title: 'Through a waypoint: the service routes via a waypoint service, then two messages',
    shows: ['via-waypoint-sticky', 'tlv-prefix', 'sockhash-membership', 'pass-chain', 'waypoint-chain'],
    case: consistent(viaWaypoint(), [socket(1, 'inet'), connect(1, VIP, 80), send(1, 2)]),
  },
  {
    title: 'A namespace that is not enrolled',
    shows: ['not-enrolled-untouched'],
    case: consistent(oneBackend(), [socket(1, 'inet'), connect(1, VIP, 80)], false),
  },
  {
    title: 'Enrolment by a control connect, then a connect to the VIP',
    shows: ['control-connect-untouched'],
    case: consistent(oneBackend(), [socket(1, 'inet'), connect(1, '0.0.0.2', 929), socket(2, 'inet'), connect(2, VIP, 80)], false),
  },
  {
    title: 'A UDP connect to a service VIP',
    shows: ['udp-outside-dns-untouched'],
    case: consistent(oneBackend(), [socket(1, 'inet', 'udp'), connect(1, VIP, 80)]),
  },
  {
    title: 'A UDP DNS query with a DNS proxy configured',
    shows: ['dns-proxy'],
    case: consistent(dnsProxy(), [socket(1, 'inet', 'udp'), connect(1, '10.0.0.9', 53)]),
  },
  {
    title: 'A query by sendto to 10.0.0.9:53 goes to the DNS proxy',
    shows: ['dns-query-destination'],
    case: consistent(dnsProxy(), [socket(1, 'inet', 'udp'), sendto(1, '10.0.0.9', 53)]),
  },
  {
    title: 'Queries by sendto to server A, then to server B, then a datagram from elsewhere',
    shows: ['dns-reply-source'],
    case: consistent(dnsProxy(), [socket(1, 'inet', 'udp'), sendto(1, '10.0.0.9', 53), recvfrom(1), sendto(1, '10.0.0.10', 53), recvfrom(1), deliver(1, '10.0.0.7'), recvfrom(1)]),
  },
  {
    title: 'An AF_INET6 socket queries a v4-mapped server by sendto, another connects to one and sends',
    shows: ['dns-exchange'],
    case: consistent(dnsProxy(), [socket(1, 'inet6', 'udp'), sendto(1, '::ffff:10.0.0.9', 53), recvfrom(1), socket(2, 'inet6', 'udp'), connect(2, '::ffff:10.0.0.10', 53), send(2, 1), recvfrom(2)]),
  },
  {
    title: 'A TCP connect to an address no frontend knows',
    shows: ['enrolled-tcp-storage'],
    case: consistent(oneBackend(), [socket(1, 'inet'), connect(1, '10.0.0.7', 80)]),
  },
  {
    title: 'Connecting a connected TCP socket again',
    shows: ['connect-on-connected-socket'],
    case: consistent(oneBackend(), [socket(1, 'inet'), connect(1, VIP, 80), connect(1, VIP, 80)]),
  },
  {
    title: 'A TCP connect to a port the service does not map',
    shows: ['path-justified'],
    case: consistent(oneBackend(), [socket(1, 'inet'), connect(1, VIP, 8000)]),
  },
  {
    title: 'Failover: priority 0 is empty, two backends at priority 1',
    shows: ['lb-choice'],
    case: consistent(failoverToPrio1(), [socket(1, 'inet'), connect(1, VIP, 80)]),
  },
  {
    title: 'Two port slots: a connect to the second',
    shows: ['port-mapping'],
    case: consistent(twoPorts(), [socket(1, 'inet'), connect(1, VIP, 443)]),
  },
  {
    title: 'An IPv4 backend for an AF_INET6 socket, an IPv6 backend for an AF_INET socket',
    shows: ['no-fabricated-peer', 'address-family'],
    case: consistent(mixedFamilies(), [socket(1, 'inet6'), connect(1, `::ffff:${VIP}`, 80), socket(2, 'inet'), connect(2, '10.0.0.2', 80)]),
  },
];
