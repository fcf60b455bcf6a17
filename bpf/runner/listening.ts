// Which ports have a listener while a case runs: one policy for every executor.
//
// A port listens when the case names it and the environment does not close it (closedPorts).
// A case names the destination port of each of its connects and, in every state it holds or
// applies, each service's service and target ports and each waypoint port. These are all the
// ports a data path that follows the semantics can send a connect to, so for such a data path
// this is the environment model's "every other port listens". A wrong program that rewrites a
// connect to a port the case never names is refused (ECONNREFUSED) on every executor alike.

import type { Backend, Case, MapState, Operation, Service } from '../../model/domain.js';

// Indexed loops: this runs for every case, and array iterators cost allocations there.

export function servicePorts(s: Service, into: Set<number>): void {
  for (let i = 0; i < s.servicePorts.length; i++) into.add(s.servicePorts[i]!);
  for (let i = 0; i < s.targetPorts.length; i++) into.add(s.targetPorts[i]!);
  into.add(s.waypoint.port);
}

export function backendPorts(b: Backend, into: Set<number>): void {
  into.add(b.waypoint.port);
}

export function statePorts(state: MapState, into: Set<number>): void {
  for (let i = 0; i < state.services.length; i++) servicePorts(state.services[i]!, into);
  for (let i = 0; i < state.backends.length; i++) backendPorts(state.backends[i]!, into);
}

export function operationPorts(ops: readonly Operation[], into: Set<number>): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.op === 'connect') into.add(op.dest.port);
    else if (op.op === 'apply') statePorts(op.state, into);
  }
}

/** Every port the case names (closed ones included: the environment decides about those), added to `into`. */
export function namedPorts(c: Case, into = new Set<number>()): Set<number> {
  statePorts(c.state, into);
  operationPorts(c.ops, into);
  return into;
}
