// Which ports have a listener while a case runs: one policy for every executor.
//
// A port listens when the case names it and the environment does not close it (closedPorts).
// A case names the destination port of each of its connects and, in every state it holds or
// applies, each service's service and target ports and each waypoint port. These are all the
// ports a data path that follows the semantics can send a connect to, so for such a data path
// this is the environment model's "every other port listens". A wrong program that rewrites a
// connect to a port the case never names is refused (ECONNREFUSED) on every executor alike.

import { writtenPort, type Backend, type Case, type MapState, type Operation, type Service } from '../../model/domain.js';

// Every port is visited through one walk (somePort): the sets below collect them, and namesPort
// asks for one without building a set (the VM asks per connect). Indexed loops: this runs for
// every case, and array iterators cost allocations there.

/** Calls `visit` with each port `s` names until it returns true; whether one did. A map port names its low half (domain.ts writtenPort). */
function someServicePort(s: Service, visit: (port: number) => boolean): boolean {
  for (let i = 0; i < s.servicePorts.length; i++) if (visit(writtenPort(s.servicePorts[i]!))) return true;
  for (let i = 0; i < s.targetPorts.length; i++) if (visit(writtenPort(s.targetPorts[i]!))) return true;
  return visit(writtenPort(s.waypoint.port));
}

function someStatePort(state: MapState, visit: (port: number) => boolean): boolean {
  for (let i = 0; i < state.services.length; i++) if (someServicePort(state.services[i]!, visit)) return true;
  for (let i = 0; i < state.backends.length; i++) if (visit(writtenPort(state.backends[i]!.waypoint.port))) return true;
  return false;
}

function someOperationPort(ops: readonly Operation[], visit: (port: number) => boolean): boolean {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.op === 'connect' ? visit(op.dest.port) : op.op === 'apply' && someStatePort(op.state, visit)) return true;
  }
  return false;
}

const adder = (into: Set<number>) => (port: number) => (into.add(port), false);

export function servicePorts(s: Service, into: Set<number>): void {
  someServicePort(s, adder(into));
}

export function backendPorts(b: Backend, into: Set<number>): void {
  into.add(writtenPort(b.waypoint.port));
}

export function statePorts(state: MapState, into: Set<number>): void {
  someStatePort(state, adder(into));
}

export function operationPorts(ops: readonly Operation[], into: Set<number>): void {
  someOperationPort(ops, adder(into));
}

/** Every port the case names (closed ones included: the environment decides about those). */
export function namedPorts(c: Case): Set<number> {
  const ports = new Set<number>();
  statePorts(c.state, ports);
  operationPorts(c.ops, ports);
  return ports;
}

/** Whether the case names `port` (namedPorts(c).has(port), without the set). */
export function namesPort(c: Case, port: number): boolean {
  const is = (p: number) => p === port;
  return someStatePort(c.state, is) || someOperationPort(c.ops, is);
}
