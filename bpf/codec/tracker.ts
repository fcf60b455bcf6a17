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

/**
 * Receives each write (value) or delete (value null) of a step, keys as bytes. The bytes are
 * the tracker's own and valid during the call only: a sink that keeps them copies them.
 */
export type ChangeSink = (map: RoutingMapName, key: Uint8Array, value: Uint8Array | null) => void;

function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new KmeshCheckError('codec', `${what} must be a u32, got ${v}`);
  return v;
}

function u32Hex(v: number): string {
  return (HEX[v & 0xff] as string) + HEX[(v >>> 8) & 0xff] + HEX[(v >>> 16) & 0xff] + HEX[(v >>> 24) & 0xff];
}

/** What identifies an entry of a map: a number where the key fits one exactly, else its bytes as hex. */
type EntryKey = number | string;

/** How one routing map's entities become keys and values. */
interface MapCodec<T> {
  readonly name: RoutingMapName;
  /** The entry's key (checked first, as the key encoder would). */
  keyOf(x: T): EntryKey;
  keyBytes(x: T): Uint8Array;
  /** Writes the value into `out` (value-sized) and returns it. */
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
  keyOf: (sv) => checkU32(sv.id, 'service id'),
  keyBytes: (sv) => encodeServiceKey(sv.id),
  encode: (sv, b) => encodeServiceValue(sv, b),
  size: STRUCTS.service_value.size,
};
const ENDPOINTS: MapCodec<MapState['endpoints'][number]> = {
  name: 'km_endpoint',
  keyOf: (e) => {
    const service = checkU32(e.serviceId, 'endpoint service id');
    const prio = checkU32(e.prio, 'endpoint prio');
    const index = checkU32(e.index, 'endpoint index');
    // 32 + 10 + 11 bits fit a double exactly; larger priorities and indexes are keyed by hex.
    if (prio < 1 << 10 && index < 1 << 11) return service * 2 ** 21 + prio * 2 ** 11 + index;
    return u32Hex(service) + u32Hex(prio) + u32Hex(index);
  },
  keyBytes: (e) => encodeEndpointKey(e),
  encode: (e, b) => encodeEndpointValue(e.backendUid, b),
  size: STRUCTS.endpoint_value.size,
};
const BACKENDS: MapCodec<MapState['backends'][number]> = {
  name: 'km_backend',
  keyOf: (be) => checkU32(be.uid, 'backend uid'),
  keyBytes: (be) => encodeBackendKey(be.uid),
  encode: (be, b) => encodeBackendValue(be, b),
  size: STRUCTS.backend_value.size,
};

/** An entry the maps hold now or held before (kept for its bytes, to be held again without allocating). */
interface Held {
  readonly key: Uint8Array;
  value: Uint8Array;
  /** The last entity seen encoding to `value` (null when not held): that object again needs no encoding. */
  item: object | null;
  /** The step that last saw the key. */
  gen: number;
}

/** Entries kept once deleted, at most (beyond them they are forgotten). */
const MAX_KEPT = 1024;

/** One routing map: its entries by key, those held now, and the entity list they were last made from. */
class HeldMap<T extends object> {
  private readonly entries = new Map<EntryKey, Held>();
  /** The entries held now, in the order they were written. */
  private readonly live: Held[] = [];
  /** A value-sized buffer to encode into; it swaps with the value of an entry that changes. */
  private spare: Uint8Array;
  /** The list the entries hold exactly, or null once anything else changed them. */
  private list: readonly T[] | null = null;

  constructor(readonly codec: MapCodec<T>) {
    this.spare = new Uint8Array(codec.size);
  }

  clear(): void {
    for (const h of this.live) h.item = null;
    this.live.length = 0;
    this.list = null;
  }

  /** What is held: key bytes and value bytes, in the order they were written. */
  held(): (readonly [Uint8Array, Uint8Array])[] {
    return this.live.map((h) => [h.key, h.value] as const);
  }

  /** Calls `sink` for every change from what is held to `items`; afterwards `items` is held. */
  step(items: readonly T[], gen: number, sink: ChangeSink): void {
    if (items === this.list) return;
    this.list = null;
    const { name, size } = this.codec;
    let seen = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const k = this.codec.keyOf(item);
      let h = this.entries.get(k);
      if (h !== undefined && h.item !== null) {
        // Held: written only if its value changes (a key listed twice: the later entry wins).
        if (h.gen !== gen) seen++;
        h.gen = gen;
        if (h.item === item) continue;
        const value = this.codec.encode(item, this.spare);
        h.item = item;
        if (sameBytes(h.value, value, size)) continue;
        this.spare = h.value;
        h.value = value;
        sink(name, h.key, value);
        continue;
      }
      const value = this.codec.encode(item, this.spare);
      if (h === undefined) {
        h = { key: this.codec.keyBytes(item), value, item, gen };
        this.entries.set(k, h);
        this.spare = new Uint8Array(size);
      } else {
        this.spare = h.value;
        h.value = value;
        h.item = item;
        h.gen = gen;
      }
      this.live.push(h);
      seen++;
      sink(name, h.key, value);
    }
    // Keys not seen in this state are deleted; when every held key was seen there is nothing to scan.
    if (this.live.length > seen) {
      const live = this.live;
      let kept = 0;
      for (let i = 0; i < live.length; i++) {
        const h = live[i]!;
        if (h.gen === gen) {
          live[kept++] = h;
        } else {
          h.item = null;
          sink(name, h.key, null);
        }
      }
      live.length = kept;
    }
    if (this.entries.size > this.live.length + MAX_KEPT) this.forgetDeleted();
    this.list = items;
  }

  private forgetDeleted(): void {
    for (const [k, h] of this.entries) if (h.item === null) this.entries.delete(k);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

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
  private gen = 0;

  /** Calls `sink` for every change from what is held to `next`; afterwards `next` is held. */
  apply(next: MapState, sink: ChangeSink): void {
    const gen = ++this.gen;
    this.frontends.step(next.frontends, gen, sink);
    this.services.step(next.services, gen, sink);
    this.endpoints.step(next.endpoints, gen, sink);
    this.backends.step(next.backends, gen, sink);
  }

  /** The same changes as a StateDiff (keys as hex). */
  step(next: MapState): StateDiff {
    const out = new Map<RoutingMapName, { updates: Array<readonly [string, Uint8Array]>; deletes: string[] }>(ROUTING_MAPS.map((m) => [m, { updates: [], deletes: [] }]));
    this.apply(next, (map, key, value) => {
      const d = out.get(map)!;
      if (value) d.updates.push([toHex(key), value.slice()]);
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
    return new Map(this.maps().map((m) => [m.codec.name, new Map(m.held().map(([k, v]) => [toHex(k), v.slice()]))]));
  }

  private maps(): HeldMap<object>[] {
    return [this.frontends, this.services, this.endpoints, this.backends] as HeldMap<object>[];
  }
}
