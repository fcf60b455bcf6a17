// The normative semantics (DESIGN.md, model/spec): named invariants with one-sentence statements,
// relations over the case, the environment, the observations and (for the model) pass records.
// Independent of model/impl: nothing here calls the reference model.

import { passChain, waypointChain } from './invariants/chain.js';
import { dnsExchange, dnsQueryDestination, dnsReplySource } from './invariants/dns.js';
import { allowedPeers, noFabricatedPeer } from './invariants/provenance.js';
import { addressFamily, lbChoice, lbGroup, pathJustified, portMapping, prescribedPath } from './invariants/routing.js';
import { originalWrittenOnce, viaWaypointSticky } from './invariants/storage.js';
import { connectOnConnectedSocket, controlConnectUntouched, dnsRedirect, enrolledTcpStorage, notEnrolledUntouched, udpOutsideDnsUntouched } from './invariants/untouched.js';
import { sockhashMembership, tlvPrefix } from './invariants/wire.js';
import type { Invariant } from './types.js';

export type { Invariant, SpecContext, SpecStep, Verdict } from './types.js';
export { SpecRun } from './types.js';
export type { PassPath, PassRecord, PassResult, PassTarget, TargetKind } from './passes.js';
export { PASS_PATHS, RESULT_OF_PATH } from './passes.js';
export { allowedPeers, lbGroup, prescribedPath };
export { tlvHex, stepViews } from './facts.js';

/** Every invariant, observation-level first (they also run on executor traces). */
export const invariants: readonly Invariant[] = [
  originalWrittenOnce,
  viaWaypointSticky,
  tlvPrefix,
  sockhashMembership,
  noFabricatedPeer,
  notEnrolledUntouched,
  controlConnectUntouched,
  udpOutsideDnsUntouched,
  dnsRedirect,
  enrolledTcpStorage,
  connectOnConnectedSocket,
  dnsQueryDestination,
  dnsReplySource,
  dnsExchange,
  passChain,
  waypointChain,
  pathJustified,
  lbChoice,
  portMapping,
  addressFamily,
];

export function invariantNamed(name: string): Invariant {
  const inv = invariants.find((i) => i.name === name);
  if (!inv) throw new Error(`no invariant named ${JSON.stringify(name)}; known: ${invariants.map((i) => i.name).join(', ')}`);
  return inv;
}
