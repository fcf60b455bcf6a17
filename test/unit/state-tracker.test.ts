// The incremental StateTracker (bpf/codec/tracker.ts) against the reference diff of state.ts:
// maps that take its changes hold exactly encodeState(next) after every step, with no more
// writes than diffStates counts, also when it skips what it holds already (an entity object, a
// whole entity list), and a change of one entry among many is still reported.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffSize, diffStates, encodeState, EMPTY_ENCODED, toHex, StateTracker, type EncodedState } from '../../bpf/codec/index.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { RoutingMapName } from '../../bpf/codec/abi.js';
import { caseArb } from '../../generators/index.js';
import { NO_WAYPOINT, type MapState, type Service } from '../../model/domain.js';

/** Maps as a sink fed by the tracker sees them, and how many changes it got. */
class Maps {
  readonly held = new Map<RoutingMapName, Map<string, Uint8Array>>();
  changes = 0;
  readonly sink = (map: RoutingMapName, key: Uint8Array, value: Uint8Array | null) => {
    this.changes++;
    const m = this.held.get(map) ?? new Map<string, Uint8Array>();
    this.held.set(map, m);
    if (value) m.set(toHex(key), value.slice());
    else if (!m.delete(toHex(key))) throw new Error(`delete of ${toHex(key)}, which ${map} does not hold`);
  };
  equals(enc: EncodedState): void {
    for (const [name, want] of enc)
      expect(new Map([...(this.held.get(name) ?? new Map<string, Uint8Array>())].map(([k, v]) => [k, toHex(v)]))).toEqual(new Map([...want].map(([k, v]) => [k, toHex(v)])));
  }
}

const service = (id: number, port: number): Service => ({
  id,
  endpointCounts: [1, 0, 0, 0, 0, 0, 0],
  lbPolicy: 0,
  servicePorts: [port, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  targetPorts: [port, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  waypoint: NO_WAYPOINT,
});

const many: MapState = {
  frontends: Array.from({ length: 40 }, (_, i) => ({ addr: `10.1.0.${i + 1}`, upstreamId: i + 1 })),
  services: Array.from({ length: 40 }, (_, i) => service(i + 1, 80 + i)),
  endpoints: Array.from({ length: 40 }, (_, i) => ({ serviceId: i + 1, prio: 0, index: 1, backendUid: 100 + i })),
  backends: Array.from({ length: 40 }, (_, i) => ({ uid: 100 + i, addr: `10.2.0.${i + 1}`, services: [i + 1], waypoint: NO_WAYPOINT })),
};

describe('StateTracker', () => {
  it('gives, step by step, the contents and the number of writes of the reference diff over generated states', () => {
    const cases = fc.sample(caseArb({ kind: 'both', shape: 'sequence' }), { seed: 11, numRuns: 400 });
    const states = cases.flatMap((c) => [c.state, ...c.ops.flatMap((o) => (o.op === 'apply' ? [o.state] : []))]);
    // Each state again at once (its lists and entities held already), and copies that share nothing.
    const steps = states.flatMap((s) => [s, s, structuredClone(s)]);
    const t = new StateTracker();
    const maps = new Maps();
    let prev = EMPTY_ENCODED;
    for (const s of steps) {
      const before = maps.changes;
      t.apply(s, maps.sink);
      const next = encodeState(s);
      maps.equals(next);
      expect(maps.changes - before).toBe(diffSize(diffStates(prev, next)));
      prev = next;
    }
  });

  it('reports a change of one entry among many, in a list that shares every other entity', () => {
    const t = new StateTracker();
    t.apply(many, () => undefined);
    const services = [...many.services];
    services[17] = service(18, 9999);
    const d = t.step({ ...many, services });
    expect(d.get('km_service')!.updates.map(([k]) => k)).toEqual(['12000000']);
    expect(diffSize(d)).toBe(1);
    const backends = many.backends.filter((_, i) => i !== 30);
    const d2 = t.step({ ...many, services, backends });
    expect(d2.get('km_backend')!.deletes).toEqual([toHex(new Uint8Array([130, 0, 0, 0]))]);
    expect(diffSize(d2)).toBe(1);
  });

  it('does not skip a list it held before another one replaced it', () => {
    const t = new StateTracker();
    const maps = new Maps();
    const other = { ...many, frontends: many.frontends.slice(0, 3) };
    for (const s of [many, other, many, other]) {
      t.apply(s, maps.sink);
      maps.equals(encodeState(s));
    }
  });

  it('writes everything again after reset, and after a bad entry', () => {
    const t = new StateTracker();
    t.apply(many, () => undefined);
    t.reset();
    expect(diffSize(t.step(many))).toBe(160);
    const bad = { ...many, services: [...many.services, { ...service(1, 80), id: -1 }] };
    expect(() => t.step(bad)).toThrow(KmeshCheckError);
    expect(() => t.step(bad)).toThrow('service id must be a u32, got -1');
    t.reset();
    expect(diffSize(t.step(many))).toBe(160);
    expect(t.current()).toEqual(encodeState(many));
  });
});
