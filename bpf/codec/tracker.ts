// What the routing maps hold, kept as bytes, so that each next state costs only the map writes and
// deletes that change something (the case runner's hot loop, for both executors). It gives the
// same changes as diffStates(encodeState(prev), encodeState(next)) of state.ts, but encodes into
// a scratch buffer and allocates only for entries that change, and skips what it can prove
// unchanged: an entry whose entity object it already holds, a map whose entity list it already
// holds. States, their lists and their entities are treated as immutable once applied.

import type { MapState } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { textMemo } from '../../shared/memo.js';
import { ROUTING_MAPS, STRUCTS, type RoutingMapName } from './abi.js';
import { HEX, toHex, type StateDiff } from './state.js';
import { encodeBackendKey, encodeBackendValue, encodeEndpointKey, encodeEndpointValue, encodeFrontendKey, encodeFrontendValue, encodeServiceKey, encodeServiceValue } from './structs.js';

/** Receives each write (value) or delete (value null) of a step, keys as bytes. */
export type ChangeSink = (map: RoutingMapName, key: Uint8Array, value: Uint8Array | null) => void;

function u32Hex(v: number, what: string): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new KmeshCheckError('codec', `${what} must be a u32, got ${v}`);
  return (HEX[v & 0xff] as string) + HEX[(v >>> 8) & 0xff] + HEX[(v >>> 16) & 0xff] + HEX[(v >>> 24) & 0xff];
}

/** How one routing map's entities become keys and values. */
interface MapCodec<T> {
  readonly name: RoutingMapName;
  /** The key as hex: what identifies an entry (checked first, as the key encoder would). */
  keyOf(x: T): string;
  keyBytes(x: T): Uint8Array;
  encode(x: T, out: Uint8Array): Uint8Array;
  readonly size: number;
}

/** Frontend keys as hex, by address text (different texts may name one address). */
const frontendKey = textMemo((addr: string) => toHex(encodeFrontendKey(addr)));

const FRONTENDS: MapCodec<MapState['frontends'][number]> = {
  name: 'km_frontend',
  keyOf: (f) => frontendKey(f.addr),
  keyBytes: (f) => encodeFrontendKey(f.addr),
  encode: (f, b) => encodeFrontendValue(f.upstreamId, b),
  size: STRUCTS.frontend_value.size,
};
const SERVICES: MapCodec<MapState['services'][number]> = {
  name: 'km_service',
  keyOf: (sv) => u32Hex(sv.id, 'service id'),
  keyBytes: (sv) => encodeServiceKey(sv.id),
  encode: (sv, b) => encodeServiceValue(sv, b),
  size: STRUCTS.service_value.size,
};
const ENDPOINTS: MapCodec<MapState['endpoints'][number]> = {
  name: 'km_endpoint',
  keyOf: (e) => u32Hex(e.serviceId, 'endpoint service id') + u32Hex(e.prio, 'endpoint prio') + u32Hex(e.index, 'endpoint index'),
  keyBytes: (e) => encodeEndpointKey(e),
  encode: (e, b) => encodeEndpointValue(e.backendUid, b),
  size: STRUCTS.endpoint_value.size,
};
const BACKENDS: MapCodec<MapState['backends'][number]> = {
  name: 'km_backend',
  keyOf: (be) => u32Hex(be.uid, 'backend uid'),
  keyBytes: (be) => encodeBackendKey(be.uid),
  encode: (be, b) => encodeBackendValue(be, b),
  size: STRUCTS.backend_value.size,
};

/** An entry the maps hold. */
interface Held {
  key: Uint8Array;
  /** Value bytes; never written to once held, so they can be handed to the sink. */
  value: Uint8Array;
  /** The last entity seen encoding to `value`: that object again needs no encoding. */
  item: object;
  /** The step that last saw the key. */
  gen: number;
}

/** One routing map: its entries by key hex, and the entity list they were last made from. */
class HeldMap<T extends object> {
  readonly entries = new Map<string, Held>();
  /** The list the entries hold exactly, or null once anything else changed them. */
  list: readonly T[] | null = null;

  constructor(readonly codec: MapCodec<T>) {}

  clear(): void {
    this.entries.clear();
    this.list = null;
  }

  /** Calls `sink` for every change from what is held to `items`; afterwards `items` is held. */
  step(items: readonly T[], gen: number, scratch: Uint8Array, sink: ChangeSink): void {
    if (items === this.list) return;
    this.list = null;
    const { name, size } = this.codec;
    const held = this.entries;
    let seen = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const k = this.codec.keyOf(item);
      const h = held.get(k);
      if (h !== undefined && h.gen !== gen) seen++;
      if (h !== undefined && h.item === item) {
        h.gen = gen;
        continue;
      }
      const fresh = this.codec.encode(item, scratch);
      if (h !== undefined && sameBytes(h.value, fresh, size)) {
        h.item = item;
        h.gen = gen;
        continue;
      }
      const value = fresh.slice(0, size);
      if (h === undefined) {
        const entry: Held = { key: this.codec.keyBytes(item), value, item, gen };
        held.set(k, entry);
        seen++;
        sink(name, entry.key, value);
      } else {
        h.value = value;
        h.item = item;
        h.gen = gen;
        sink(name, h.key, value);
      }
    }
    // Keys not seen in this state are deleted; when every held key was seen there is nothing to scan.
    if (held.size > seen) {
      for (const [k, h] of held) {
        if (h.gen !== gen) {
          held.delete(k);
          sink(name, h.key, null);
        }
      }
    }
    this.list = items;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Each routing map's value struct (the scratch buffer fits the largest). */
const VALUE_STRUCT = { km_frontend: 'frontend_value', km_service: 'service_value', km_endpoint: 'endpoint_value', km_backend: 'backend_value' } as const;

/**
 * Tracks what the routing maps hold and turns each next state into the writes and deletes that
 * make them hold it. If encoding an entry fails, the changes before it have gone to the sink
 * and are held; the caller empties the maps and reset()s.
 */
export class StateTracker {
  private readonly frontends = new HeldMap(FRONTENDS);
  private readonly services = new HeldMap(SERVICES);
  private readonly endpoints = new HeldMap(ENDPOINTS);
  private readonly backends = new HeldMap(BACKENDS);
  private readonly scratch = new Uint8Array(Math.max(...ROUTING_MAPS.map((m) => STRUCTS[VALUE_STRUCT[m]].size)));
  private gen = 0;

  /** Calls `sink` for every change from what is held to `next`; afterwards `next` is held. */
  apply(next: MapState, sink: ChangeSink): void {
    const gen = ++this.gen;
    this.frontends.step(next.frontends, gen, this.scratch, sink);
    this.services.step(next.services, gen, this.scratch, sink);
    this.endpoints.step(next.endpoints, gen, this.scratch, sink);
    this.backends.step(next.backends, gen, this.scratch, sink);
  }

  /** The same changes as a StateDiff (keys as hex). */
  step(next: MapState): StateDiff {
    const out = new Map<RoutingMapName, { updates: Array<readonly [string, Uint8Array]>; deletes: string[] }>(ROUTING_MAPS.map((m) => [m, { updates: [], deletes: [] }]));
    this.apply(next, (map, key, value) => {
      const d = out.get(map)!;
      if (value) d.updates.push([toHex(key), value]);
      else d.deletes.push(toHex(key));
    });
    return out;
  }

  /** Forget everything (the maps were emptied by someone else). */
  reset(): void {
    for (const m of this.maps()) m.clear();
  }

  /** What the maps hold, in the form of encodeState. */
  current(): ReadonlyMap<RoutingMapName, ReadonlyMap<string, Uint8Array>> {
    return new Map(this.maps().map((m) => [m.codec.name, new Map([...m.entries].map(([k, h]) => [k, h.value]))]));
  }

  private maps(): HeldMap<object>[] {
    return [this.frontends, this.services, this.endpoints, this.backends] as HeldMap<object>[];
  }
}
