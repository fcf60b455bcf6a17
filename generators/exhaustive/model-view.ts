// The reference model's view of an undecided map state: a MapIndex (model/impl/maps.ts) whose
// lookups and field reads go to the shared Decisions, so every read the model makes of something
// still undecided is a choice point. Only `get` is offered: it is all model/impl uses.

import { PORT_SLOTS, PRIO_GROUPS, type IpAddr, type MapState, type Service } from '../../model/domain.js';
import { configuredWaypoint, ipKey, registerIndex, type IndexedBackend, type IndexedService, type MapIndex } from '../../model/impl/maps.js';
import type { Decisions } from './decisions.js';
import { endpointIndexLimit } from './classes.js';

function getter<K, V>(get: (k: K) => V | undefined): ReadonlyMap<K, V> {
  return { get } as unknown as ReadonlyMap<K, V>;
}

/** An array whose element i is read through `at(i)` when the model reads it. */
function lazyArray(length: number, at: (i: number) => number): readonly number[] {
  return new Proxy([] as number[], {
    get(target, prop) {
      if (prop === 'length') return length;
      if (typeof prop === 'string' && /^\d+$/.test(prop)) {
        const i = Number(prop);
        return i < length ? at(i) : undefined;
      }
      return Reflect.get(target, prop) as unknown;
    },
  });
}

function lazyService(d: Decisions, id: number): IndexedService {
  const field = (name: string) => d.serviceField(id, name);
  const service: Service = {
    id,
    endpointCounts: lazyArray(PRIO_GROUPS, (p) => field(`count${p}`) as number),
    get lbPolicy() {
      return field('policy') as number;
    },
    servicePorts: lazyArray(PORT_SLOTS, (i) => field(`sport${i}`) as number),
    targetPorts: lazyArray(PORT_SLOTS, (i) => field(`tport${i}`) as number),
    get waypoint() {
      return { addr: field('wpAddr') as string, port: field('wpPort') as number };
    },
  };
  return {
    service,
    get waypoint() {
      return configuredWaypoint(field('wpPort') as number, () => field('wpAddr') as string);
    },
  };
}

function lazyBackend(d: Decisions, uid: number): IndexedBackend {
  const field = (name: string) => d.backendField(uid, name);
  return {
    get backend() {
      return { uid, addr: field('addr') as string, services: [], waypoint: { addr: field('wpAddr') as string, port: field('wpPort') as number } };
    },
    get addr() {
      return ipKey(field('addr') as string);
    },
    get waypoint() {
      return configuredWaypoint(field('wpPort') as number, () => field('wpAddr') as string);
    },
  };
}

/** A MapIndex over the decisions; the same objects for the same entry, as the real index gives. */
export function lazyIndex(d: Decisions): MapIndex {
  const services = new Map<number, IndexedService>();
  const backends = new Map<number, IndexedBackend>();
  return {
    frontends: getter<IpAddr, number>((k) => d.frontend(k) ?? undefined),
    services: getter<number, IndexedService>((id) => {
      if (!d.service(id)) return undefined;
      let s = services.get(id);
      if (!s) services.set(id, (s = lazyService(d, id)));
      return s;
    }),
    endpoints: getter<string, number>((k) => {
      const [sid, prio, index] = k.split('/').map(Number) as [number, number, number];
      return d.endpoint(sid, prio, index) ?? undefined;
    }),
    // A draw enumerates the group's indices 1..count: each is read (count was read just before).
    groups: getter<string, readonly number[]>((k) => {
      const [sid, prio] = k.split('/').map(Number) as [number, number];
      const count = d.serviceField(sid, `count${prio}`) as number;
      const present: number[] = [];
      const last = Math.min(count, endpointIndexLimit(d.scope));
      for (let i = 1; i <= last; i++) if (d.endpoint(sid, prio, i) !== null) present.push(i);
      return present;
    }),
    backends: getter<number, IndexedBackend>((uid) => {
      if (!d.backend(uid)) return undefined;
      let b = backends.get(uid);
      if (!b) backends.set(uid, (b = lazyBackend(d, uid)));
      return b;
    }),
  };
}

/** A fresh placeholder state whose index (for model/impl) is the lazy one over `d`. */
export function lazyState(d: Decisions): MapState {
  const state: MapState = { frontends: [], services: [], endpoints: [], backends: [] };
  registerIndex(state, lazyIndex(d));
  return state;
}
