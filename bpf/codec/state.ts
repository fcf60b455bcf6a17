// A MapState as the bytes of the four routing maps, and the difference between two such states,
// so that consecutive cases cost only the map writes that change.

import type { MapState } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { ROUTING_MAPS, STRUCTS, type RoutingMapName } from './abi.js';
import { textMemo } from '../../shared/memo.js';
import {
  decodeBackend,
  decodeEndpoint,
  decodeFrontend,
  decodeService,
  encodeBackendKey,
  encodeBackendValue,
  encodeEndpointKey,
  encodeEndpointValue,
  encodeFrontendKey,
  encodeFrontendValue,
  encodeServiceKey,
  encodeServiceValue,
} from './structs.js';

/** map name -> (key as lower-case hex -> value bytes). */
export type EncodedState = ReadonlyMap<RoutingMapName, ReadonlyMap<string, Uint8Array>>;

export interface MapDiff {
  /** Entries to write (new keys and changed values), as [key hex, value]. */
  readonly updates: ReadonlyArray<readonly [string, Uint8Array]>;
  /** Keys (hex) to delete. */
  readonly deletes: readonly string[];
}

export type StateDiff = ReadonlyMap<RoutingMapName, MapDiff>;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i] ?? 0];
  return s;
}

export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Encodes every entry of a state. A state holds one entry per key; should a raw state list a key
 * twice, the later entry wins, as the second of two map updates would.
 */
export function encodeState(state: MapState): EncodedState {
  const frontend = new Map<string, Uint8Array>();
  for (const f of state.frontends) frontend.set(toHex(encodeFrontendKey(f.addr)), encodeFrontendValue(f.upstreamId));
  const service = new Map<string, Uint8Array>();
  for (const s of state.services) service.set(toHex(encodeServiceKey(s.id)), encodeServiceValue(s));
  const endpoint = new Map<string, Uint8Array>();
  for (const e of state.endpoints) endpoint.set(toHex(encodeEndpointKey(e)), encodeEndpointValue(e.backendUid));
  const backend = new Map<string, Uint8Array>();
  for (const b of state.backends) backend.set(toHex(encodeBackendKey(b.uid)), encodeBackendValue(b));
  return new Map<RoutingMapName, Map<string, Uint8Array>>([
    ['km_frontend', frontend],
    ['km_service', service],
    ['km_endpoint', endpoint],
    ['km_backend', backend],
  ]);
}

/** The map contents back as a MapState (entries in key order, so equal maps decode equally). */
export function decodeState(enc: EncodedState): MapState {
  const sorted = (name: RoutingMapName) => [...(enc.get(name) ?? new Map<string, Uint8Array>()).entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    frontends: sorted('km_frontend').map(([k, v]) => decodeFrontend(fromHex(k), v)),
    services: sorted('km_service').map(([k, v]) => decodeService(fromHex(k), v)),
    endpoints: sorted('km_endpoint').map(([k, v]) => decodeEndpoint(fromHex(k), v)),
    backends: sorted('km_backend').map(([k, v]) => decodeBackend(fromHex(k), v)),
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const EMPTY_ENCODED: EncodedState = new Map(ROUTING_MAPS.map((m) => [m, new Map<string, Uint8Array>()]));

/** What to write and delete so that maps holding `old` hold `next`. */
export function diffStates(old: EncodedState, next: EncodedState): StateDiff {
  const out = new Map<RoutingMapName, MapDiff>();
  for (const name of ROUTING_MAPS) {
    const before = old.get(name) ?? new Map<string, Uint8Array>();
    const after = next.get(name) ?? new Map<string, Uint8Array>();
    const updates: Array<readonly [string, Uint8Array]> = [];
    const deletes: string[] = [];
    for (const [k, v] of after) {
      const prev = before.get(k);
      if (!prev || !sameBytes(prev, v)) updates.push([k, v]);
    }
    for (const k of before.keys()) if (!after.has(k)) deletes.push(k);
    out.set(name, { updates, deletes });
  }
  return out;
}

/** Number of map writes and deletes a diff costs. */
export function diffSize(d: StateDiff): number {
  let n = 0;
  for (const m of d.values()) n += m.updates.length + m.deletes.length;
  return n;
}

// ---- incremental form for the executor's hot loop ---------------------------------------------

function u32Hex(v: number, what: string): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new KmeshCheckError('codec', `${what} must be a u32, got ${v}`);
  return (HEX[v & 0xff] as string) + HEX[(v >>> 8) & 0xff] + HEX[(v >>> 16) & 0xff] + HEX[(v >>> 24) & 0xff];
}

interface Held {
  value: Uint8Array;
  key: Uint8Array;
  gen: number;
}

/** Receives each write (value) or delete (value null) of a step, keys as bytes. */
export type ChangeSink = (map: RoutingMapName, key: Uint8Array, value: Uint8Array | null) => void;

/**
 * Tracks what the routing maps hold and turns each next state into the writes and deletes that
 * make them hold it, like diffStates(encodeState(prev), encodeState(next)) but encoding into
 * scratch buffers and allocating only for entries that change.
 */
export class StateTracker {
  private readonly held = new Map<RoutingMapName, Map<string, Held>>(ROUTING_MAPS.map((m) => [m, new Map<string, Held>()]));
  private readonly scratch = new Uint8Array(STRUCTS.service_value.size);
  /** Frontend keys as hex, by address text. */
  private readonly frontendKey = textMemo((addr: string) => toHex(encodeFrontendKey(addr)));
  /** Encodings by entity object; entities are treated as immutable. */
  private readonly encoded = new WeakMap<object, Encoded>();
  private gen = 0;

  /** Calls `sink` for every change from what is held to `next`; afterwards `next` is held. */
  apply(next: MapState, sink: ChangeSink): void {
    const gen = ++this.gen;
    this.mapStep(
      'km_frontend',
      gen,
      next.frontends,
      (f) => this.frontendKey(f.addr),
      (f) => encodeFrontendKey(f.addr),
      (f, b) => encodeFrontendValue(f.upstreamId, b),
      STRUCTS.frontend_value.size,
      sink,
    );
    this.mapStep(
      'km_service',
      gen,
      next.services,
      (sv) => u32Hex(sv.id, 'service id'),
      (sv) => encodeServiceKey(sv.id),
      (sv, b) => encodeServiceValue(sv, b),
      STRUCTS.service_value.size,
      sink,
    );
    this.mapStep(
      'km_endpoint',
      gen,
      next.endpoints,
      (e) => u32Hex(e.serviceId, 'endpoint service id') + u32Hex(e.prio, 'endpoint prio') + u32Hex(e.index, 'endpoint index'),
      (e) => encodeEndpointKey(e),
      (e, b) => encodeEndpointValue(e.backendUid, b),
      STRUCTS.endpoint_value.size,
      sink,
    );
    this.mapStep(
      'km_backend',
      gen,
      next.backends,
      (be) => u32Hex(be.uid, 'backend uid'),
      (be) => encodeBackendKey(be.uid),
      (be, b) => encodeBackendValue(be, b),
      STRUCTS.backend_value.size,
      sink,
    );
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
    for (const m of this.held.values()) m.clear();
  }

  /** What the maps hold, in the form of encodeState. */
  current(): EncodedState {
    return new Map(ROUTING_MAPS.map((m) => [m, new Map([...this.held.get(m)!].map(([k, h]) => [k, h.value]))]));
  }

  private mapStep<T extends object>(
    name: RoutingMapName,
    gen: number,
    items: readonly T[],
    keyOf: (x: T) => string,
    keyBytes: (x: T) => Uint8Array,
    encode: (x: T, b: Uint8Array) => Uint8Array,
    size: number,
    sink: ChangeSink,
  ): void {
    const held = this.held.get(name)!;
    let seen = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      // Entities shared between cases (the worker's batches share them) are encoded once.
      let enc = this.encoded.get(item) as Encoded | undefined;
      if (enc === undefined) {
        const k = keyOf(item);
        enc = { k, key: null, value: encode(item, this.scratch).slice(0, size) };
        this.encoded.set(item, enc);
      }
      const h = held.get(enc.k);
      if (h !== undefined && h.gen !== gen) seen++;
      if (h !== undefined && (h.value === enc.value || sameBytesN(h.value, enc.value, size))) {
        h.gen = gen;
        continue;
      }
      if (h === undefined) {
        const entry = { value: enc.value, key: (enc.key ??= keyBytes(item)), gen };
        held.set(enc.k, entry);
        seen++;
        sink(name, entry.key, enc.value);
      } else {
        h.value = enc.value;
        h.gen = gen;
        sink(name, h.key, enc.value);
      }
    }
    // Keys not seen in this state are deleted; when every held key was seen there is nothing to scan.
    if (held.size > seen) {
      held.forEach((h, k) => {
        if (h.gen !== gen) {
          held.delete(k);
          sink(name, h.key, null);
        }
      });
    }
  }
}

interface Encoded {
  /** Key as hex. */
  readonly k: string;
  key: Uint8Array | null;
  /** Value bytes; never written to after creation, so it can be shared. */
  readonly value: Uint8Array;
}

function sameBytesN(a: Uint8Array, b: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
