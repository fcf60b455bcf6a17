// Copies of the map records with some fields changed, written as explicit literals. Control ops and
// raw mutations rebuild a state op after op; V8 copies a spread of an object that was itself made
// by a spread with an overridden field on a slow path (about a microsecond each), while a literal
// of the same fields costs tens of nanoseconds. Field order is the interfaces' (JSON stays the same).
// The lists are copied the same way, so that each kind of list has one array layout: V8 gives an
// array a hidden class per elements kind (packed or holey), and code compiled for the kinds seen
// so far is thrown away when another one arrives.

import type { Backend, Endpoint, MapState, Service } from './domain.js';

export function withMaps(s: MapState, c: Partial<MapState>): MapState {
  return { frontends: c.frontends ?? s.frontends, services: c.services ?? s.services, endpoints: c.endpoints ?? s.endpoints, backends: c.backends ?? s.backends };
}

export function withService(v: Service, c: Partial<Service>): Service {
  return {
    id: c.id ?? v.id,
    endpointCounts: c.endpointCounts ?? v.endpointCounts,
    lbPolicy: c.lbPolicy ?? v.lbPolicy,
    servicePorts: c.servicePorts ?? v.servicePorts,
    targetPorts: c.targetPorts ?? v.targetPorts,
    waypoint: c.waypoint ?? v.waypoint,
  };
}

export function withBackend(b: Backend, c: Partial<Backend>): Backend {
  return { uid: c.uid ?? b.uid, addr: c.addr ?? b.addr, services: c.services ?? b.services, waypoint: c.waypoint ?? b.waypoint };
}

export function withEndpoint(e: Endpoint, c: Partial<Endpoint>): Endpoint {
  return { serviceId: c.serviceId ?? e.serviceId, prio: c.prio ?? e.prio, index: c.index ?? e.index, backendUid: c.backendUid ?? e.backendUid };
}

/**
 * A copy of the record list `xs` with entry `i` replaced (a copy of `xs` when `i` is out of range).
 * Slicing keeps the array packed and at its size; `map` would do too, but TurboFan compiles it
 * into filling a preallocated, hence holey, array: the same call would make packed arrays until
 * its caller is optimised and holey ones after, a new layout for every function that reads them.
 */
export function replaceAt<T extends object>(xs: readonly T[], i: number, x: T): T[] {
  const out = xs.slice();
  if (i >= 0 && i < out.length) out[i] = x;
  return out;
}

/** `xs.map(f)` for a record list and a function that keeps the records' type, packed (see replaceAt). */
export function mapEntries<T extends object>(xs: readonly T[], f: (x: T) => T): T[] {
  const out = xs.slice();
  for (let i = 0; i < out.length; i++) out[i] = f(out[i]!);
  return out;
}

/**
 * replaceAt for a list of numbers (counts, ports). Apart from replaceAt on purpose: V8 learns at
 * each store which array layouts it meets, and a store that has turned an empty list into a list
 * of records would turn a list of numbers into one too.
 */
export function numbersWith(xs: readonly number[], i: number, v: number): number[] {
  const out = xs.slice();
  if (i >= 0 && i < out.length) out[i] = v;
  return out;
}

const zeroTemplates: number[][] = [];

/** A packed array of n zeros at its exact size (`new Array(n).fill(0)` would be holey). */
export function zeros(n: number): number[] {
  let t = zeroTemplates[n];
  if (!t) {
    t = [];
    for (let i = 0; i < n; i++) t.push(0);
    zeroTemplates[n] = t = t.slice();
  }
  return t.slice();
}

/** A packed copy of a list of numbers at its exact size (a generated list is allocated holey). */
export function numberList(xs: readonly number[]): number[] {
  const out = zeros(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = xs[i]!;
  return out;
}
