// The vocabulary of one pass of connect4/connect6 (docs/interpretation.md, item 3): which path of
// section 3 it took and what class of result that is. The spec defines it and the reference model
// produces it; the statistics count cases by it. A kernel run has no pass records.

import type { Family, IpAddr, SockAddr } from '../domain.js';

/** How a pass ends (interpretation.md, item 3). */
export type PassResult = 'untouched' | 'failed' | 'kept' | 'rewritten' | 'waypoint';

/** The path a pass took through section 3, named by where it ended. */
export type PassPath =
  | 'control' // 3.1: control connect, km_manage netns entry updated
  | 'not-enrolled' // 3.2
  | 'dns' // 3.3: rewritten to the DNS proxy
  | 'dns-no-proxy' // 3.3: UDP to port 53 on connect4 without km_backend[0] (TCP goes on routing)
  | 'udp-skip' // 3.4: not TCP
  | 'frontend-miss' // 3.5
  | 'direct-backend-missing' // 3.6
  | 'direct-backend' // 3.6: kept
  | 'direct-backend-waypoint' // 3.6 -> 3.9
  | 'service-waypoint' // 3.7 -> 3.9
  | 'random-empty' // 3.7: kept
  | 'strict-empty' // 3.7
  | 'failover-empty' // 3.7
  | 'unknown-policy' // 3.7
  | 'endpoint-missing' // 3.7
  | 'backend-missing' // 3.7
  | 'backend-waypoint' // 3.7 -> 3.9, port mapping skipped
  | 'no-port-match' // 3.7
  | 'family-mismatch' // 3.10: the target cannot be written in the socket's family
  | 'random' // 3.7: rewritten to a prio-0 backend
  | 'strict' // 3.7: rewritten to a prio-0 backend
  | 'failover'; // 3.7: rewritten to a backend of the first non-empty group

export const RESULT_OF_PATH: Readonly<Record<PassPath, PassResult>> = {
  control: 'untouched',
  'not-enrolled': 'untouched',
  dns: 'rewritten',
  'dns-no-proxy': 'untouched',
  'udp-skip': 'untouched',
  'frontend-miss': 'untouched',
  'direct-backend-missing': 'failed',
  'direct-backend': 'kept',
  'direct-backend-waypoint': 'waypoint',
  'service-waypoint': 'waypoint',
  'random-empty': 'kept',
  'strict-empty': 'failed',
  'failover-empty': 'failed',
  'unknown-policy': 'failed',
  'endpoint-missing': 'failed',
  'backend-missing': 'failed',
  'backend-waypoint': 'waypoint',
  'no-port-match': 'failed',
  'family-mismatch': 'failed',
  random: 'rewritten',
  strict: 'rewritten',
  failover: 'rewritten',
};

export const PASS_PATHS = Object.keys(RESULT_OF_PATH) as readonly PassPath[];

/** Where a rewriting pass wanted to send the socket, as stored in the maps. */
export type TargetKind = 'dns-proxy' | 'service-waypoint' | 'backend-waypoint' | 'backend';

export interface PassTarget {
  readonly kind: TargetKind;
  /** The address as stored (ip_addr canonical text), before it is written in the socket's family. */
  readonly addr: IpAddr;
  /** Host-order port. */
  readonly port: number;
}

/** One pass of a connect: what it saw, what it chose and what it did. Absent facts are null. */
export interface PassRecord {
  /** 1-based position in the connect's chain (at most 1 + TAIL_CALL_LIMIT). */
  readonly pass: number;
  readonly family: Family;
  readonly destIn: SockAddr;
  readonly path: PassPath;
  readonly result: PassResult;
  /** For a control pass: what it did to the namespace's km_manage entry. */
  readonly control: 'enrol' | 'withdraw' | null;
  /** The km_frontend key looked up (interpretation.md, item 2), when the pass got that far. */
  readonly frontendKey: IpAddr | null;
  readonly upstreamId: number | null;
  readonly serviceId: number | null;
  readonly lbPolicy: number | null;
  readonly prio: number | null;
  /** count[prio] of the service when the pass drew an index. */
  readonly count: number | null;
  /** The drawn 1-based endpoint index. */
  readonly index: number | null;
  readonly backendUid: number | null;
  /** The port slot whose service_port matched (0-based). */
  readonly portSlot: number | null;
  readonly target: PassTarget | null;
  readonly destOut: SockAddr;
  /** This pass created the socket storage. */
  readonly storageCreated: boolean;
  /** This pass wrote the original destination (the first recording of the socket). */
  readonly recordedOriginal: boolean;
}
