// Which ports have a listener while a case runs: one policy for every executor.
//
// A port listens when the case names it and the environment does not close it (closedPorts).
// A case names the destination port of each of its connects and, in every state it holds or
// applies, each service's service and target ports and each waypoint port. These are all the
// ports a data path that follows the semantics can send a connect to, so for such a data path
// this is the environment model's "every other port listens". A wrong program that rewrites a
// connect to a port the case never names is refused (ECONNREFUSED) on every executor alike.

import type { Backend, Case, MapState, Operation, Service } from '../../model/domain.js';

export function servicePorts(s: Service, into: Set<number>): void {
  for (const p of s.servicePorts) into.add(p);
  for (const p of s.targetPorts) into.add(p);
  into.add(s.waypoint.port);
}

export function backendPorts(b: Backend, into: Set<number>): void {
  into.add(b.waypoint.port);
}

export function statePorts(state: MapState, into: Set<number>): void {
  for (const s of state.services) servicePorts(s, into);
  for (const b of state.backends) backendPorts(b, into);
}

export function operationPorts(ops: readonly Operation[], into: Set<number>): void {
  for (const op of ops) {
    if (op.op === 'connect') into.add(op.dest.port);
    else if (op.op === 'apply') statePorts(op.state, into);
  }
}

/** Every port the case names (closed ones included: the environment decides about those). */
export function namedPorts(c: Case): Set<number> {
  const ports = new Set<number>();
  statePorts(c.state, ports);
  operationPorts(c.ops, ports);
  return ports;
}
