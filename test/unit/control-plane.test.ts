// The control-plane rules (model/control-plane): control operations and the consistency checker,
// on states the generators build.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LbPolicy, NO_WAYPOINT, type MapState, type Service, type Waypoint } from '../../model/domain.js';
import { applyControlOp, applyControlOps, consistentState, ControlOpError, isConsistent, rawState, type ControlOp } from '../../generators/index.js';
import { SEED, build, uniqueKeys, serviceOf } from '../support/generated-states.js';

describe('control-plane ops', () => {
  const base: ControlOp[] = [
    { op: 'addBackend', uid: 1, addr: '10.0.0.11', waypoint: NO_WAYPOINT },
    { op: 'addBackend', uid: 2, addr: '10.0.0.12', waypoint: NO_WAYPOINT },
    { op: 'addBackend', uid: 3, addr: '10.0.0.13', waypoint: NO_WAYPOINT },
    {
      op: 'addService',
      id: 10,
      lbPolicy: LbPolicy.failover,
      ports: [
        { service: 80, target: 0 },
        { service: 443, target: 8443 },
      ],
    },
    { op: 'addEndpoint', serviceId: 10, prio: 0, backendUid: 1 },
    { op: 'addEndpoint', serviceId: 10, prio: 0, backendUid: 2 },
    { op: 'addEndpoint', serviceId: 10, prio: 0, backendUid: 3 },
  ];

  it('writes a target port 0 as the service port and appends endpoints densely', () => {
    const s = build(base);
    const v = serviceOf(s, 10);
    expect(v.servicePorts.slice(0, 3)).toEqual([80, 443, 0]);
    expect(v.targetPorts.slice(0, 3)).toEqual([80, 8443, 0]);
    expect(v.endpointCounts[0]).toBe(3);
    expect(s.endpoints.map((e) => [e.index, e.backendUid])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(s.backends.map((b) => b.services)).toEqual([[10], [10], [10]]);
    expect(isConsistent(s)).toEqual([]);
  });

  it('deletes an endpoint by moving the last index into the hole', () => {
    const s = build([...base, { op: 'deleteEndpoint', serviceId: 10, prio: 0, index: 1 }]);
    expect(serviceOf(s, 10).endpointCounts[0]).toBe(2);
    expect(s.endpoints.map((e) => [e.index, e.backendUid]).sort()).toEqual([
      [1, 3],
      [2, 2],
    ]);
    expect(s.backends.find((b) => b.uid === 1)?.services).toEqual([]);
    expect(isConsistent(s)).toEqual([]);
  });

  it('switching to random moves worse groups into prio 0', () => {
    const s = build([
      ...base,
      { op: 'deleteEndpoint', serviceId: 10, prio: 0, index: 3 },
      { op: 'addEndpoint', serviceId: 10, prio: 2, backendUid: 3 },
      { op: 'setLbPolicy', id: 10, lbPolicy: LbPolicy.random },
    ]);
    expect(serviceOf(s, 10).endpointCounts).toEqual([3, 0, 0, 0, 0, 0, 0]);
    expect(s.endpoints.find((e) => e.backendUid === 3)).toMatchObject({ prio: 0, index: 3 });
    expect(isConsistent(s)).toEqual([]);
  });

  it('removing a backend keeps every group dense and drops its frontends', () => {
    const s = build([...base, { op: 'addFrontend', addr: '10.0.0.11', upstreamId: 1 }, { op: 'removeBackend', uid: 1 }]);
    expect(s.frontends).toEqual([]);
    expect(serviceOf(s, 10).endpointCounts[0]).toBe(2);
    expect(isConsistent(s)).toEqual([]);
  });

  it('removing a service drops its endpoints, frontends and backend memberships', () => {
    const s = build([...base, { op: 'addFrontend', addr: '10.0.0.1', upstreamId: 10 }, { op: 'removeService', id: 10 }]);
    expect([s.services, s.endpoints, s.frontends]).toEqual([[], [], []]);
    expect(s.backends.every((b) => b.services.length === 0)).toBe(true);
  });

  it('sets and clears waypoints with address and port together, and toggles the DNS proxy', () => {
    const w: Waypoint = { addr: '10.0.0.7', port: 15008 };
    let s = build([...base, { op: 'setWaypoint', target: 'service', id: 10, waypoint: w }, { op: 'dnsProxy', addr: '10.0.0.53' }]);
    expect(serviceOf(s, 10).waypoint).toEqual(w);
    expect(s.backends.find((b) => b.uid === 0)?.addr).toBe('10.0.0.53');
    s = applyControlOps(s, [
      { op: 'setWaypoint', target: 'service', id: 10, waypoint: NO_WAYPOINT },
      { op: 'dnsProxy', addr: null },
    ]);
    expect(serviceOf(s, 10).waypoint).toEqual(NO_WAYPOINT);
    expect(s.backends.some((b) => b.uid === 0)).toBe(false);
  });

  it('refuses ops that do not fit, with a one-line reason', () => {
    const s = build(base);
    const bad: ControlOp[] = [
      { op: 'addService', id: 1, lbPolicy: 0, ports: [] },
      { op: 'addEndpoint', serviceId: 99, prio: 0, backendUid: 1 },
      { op: 'addEndpoint', serviceId: 10, prio: 0, backendUid: 1 },
      { op: 'setWaypoint', target: 'backend', id: 2, waypoint: { addr: '10.0.0.7', port: 0 } },
      { op: 'addFrontend', addr: '10.0.0.1', upstreamId: 77 },
      { op: 'deleteEndpoint', serviceId: 10, prio: 0, index: 4 },
    ];
    for (const op of bad) {
      expect(() => applyControlOp(s, op)).toThrow(ControlOpError);
      expect(() => applyControlOp(s, op)).toThrow(/^control op .*; emit ops that fit/);
    }
    const random = build([...base, { op: 'addService', id: 11, lbPolicy: LbPolicy.random, ports: [] }]);
    expect(() => applyControlOp(random, { op: 'addEndpoint', serviceId: 11, prio: 1, backendUid: 1 })).toThrow(/prio 0/);
  });
});

describe('isConsistent', () => {
  const ok = build([
    { op: 'addBackend', uid: 1, addr: '10.0.0.11', waypoint: NO_WAYPOINT },
    { op: 'addService', id: 2, lbPolicy: LbPolicy.strict, ports: [{ service: 80, target: 8080 }] },
    { op: 'addEndpoint', serviceId: 2, prio: 1, backendUid: 1 },
    { op: 'addFrontend', addr: '10.0.0.1', upstreamId: 2 },
  ]);
  const svc = serviceOf(ok, 2);
  const withService = (patch: Partial<Service>): MapState => ({ ...ok, services: [{ ...svc, ...patch }] });

  it('accepts a state the control plane wrote', () => {
    expect(isConsistent(ok)).toEqual([]);
  });

  it.each<[string, MapState, RegExp]>([
    ['a count beyond the endpoints', withService({ endpointCounts: [0, 2, 0, 0, 0, 0, 0] }), /index 2 is missing/],
    ['an endpoint beyond the count', withService({ endpointCounts: [0, 0, 0, 0, 0, 0, 0] }), /outside 1\.\.count/],
    ['random with a prio-1 endpoint', withService({ lbPolicy: LbPolicy.random }), /random policy with 1 endpoints at prio 1/],
    ['an unknown policy', withService({ lbPolicy: 7 }), /unknown lb policy 7/],
    ['a waypoint address without a port', withService({ waypoint: { addr: '10.0.0.9', port: 0 } }), /without a port/],
    ['a waypoint port without an address', withService({ waypoint: { addr: '0.0.0.0', port: 15008 } }), /without an address/],
    ['target port 0 on a written slot', withService({ targetPorts: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }), /to target port 0/],
    ['a duplicate service port', withService({ servicePorts: [80, 80, 0, 0, 0, 0, 0, 0, 0, 0], targetPorts: [8080, 9080, 0, 0, 0, 0, 0, 0, 0, 0] }), /service port 80 in two slots/],
    ['an endpoint to a missing backend', { ...ok, backends: [] }, /backend 1 does not exist/],
    ['a frontend pointing nowhere', { ...ok, frontends: [{ addr: '10.0.0.1', upstreamId: 9 }] }, /neither a service nor a backend/],
    ['a service id that is also a backend uid', { ...ok, backends: [...ok.backends, { uid: 2, addr: '10.0.0.2', services: [], waypoint: NO_WAYPOINT }] }, /also a backend uid/],
    ['two entries at one key', { ...ok, frontends: [...ok.frontends, { addr: '10.0.0.1', upstreamId: 1 }] }, /two frontends at 10\.0\.0\.1/],
  ])('flags %s', (_name, state, pattern) => {
    const v = isConsistent(state);
    expect(v.length).toBeGreaterThan(0);
    expect(v.join('\n')).toMatch(pattern);
  });

  it('holds for 2,000 generated consistent states, which their ops rebuild exactly', () => {
    const xs = fc.sample(consistentState(), { numRuns: 2000, seed: SEED });
    for (const { state, ops } of xs) {
      expect(isConsistent(state)).toEqual([]);
      expect(build(ops)).toEqual(state);
    }
    // Not trivially empty: most states route somewhere.
    expect(xs.filter((x) => x.state.frontends.length > 0 && x.state.endpoints.length > 0).length).toBeGreaterThan(1200);
  });

  it('is violated by most raw states, which still keep one entry per key', () => {
    const xs = fc.sample(rawState(), { numRuns: 2000, seed: SEED });
    for (const s of xs) expect(uniqueKeys(s)).toBe(true);
    const violating = xs.filter((s) => isConsistent(s).length > 0).length;
    expect(violating / xs.length).toBeGreaterThan(0.6);
  });
});
