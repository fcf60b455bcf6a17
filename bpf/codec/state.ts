// A MapState as the bytes of the four routing maps, and the difference between two such states,
// the reference for what the incremental StateTracker (tracker.ts) writes.

import type { MapState } from '../../model/domain.js';
import { ROUTING_MAPS, type RoutingMapName } from './abi.js';
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

/** Byte -> two lower-case hex digits. */
export const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

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
