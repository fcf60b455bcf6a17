// Lazily decided routing-map entries for the VM (bounded-exhaustive exploration). A program-side
// miss in km_frontend, km_service, km_endpoint or km_backend asks the decision source whether the
// entry exists (a choice point when nobody has read it yet); a present service or backend value is
// a region whose fields are decided when the program first loads them. The region is a RULES
// region, so every load takes the engines' slow path, which consults `rules.read[offset]`: that
// lookup decides the field at the offset and allows the sizes that stay within decided fields. A
// wider load fails there and the JIT's slow path asks again (lazyRegion): then the fields it covers
// are decided. (The reference interpreter asks once, so a wider load faults there: exploration
// runs on the JIT, the VM's default engine.) Once every field is decided the region becomes plain
// memory again.

import type { Service, Backend } from '../../model/domain.js';
import type { LazyMapSource, LazyMaps } from '../../model/executor.js';
import { PORT_SLOTS, PRIO_GROUPS } from '../../model/domain.js';
import { decodeFrontendKey, encodeBackendValue, encodeFrontendValue, encodeEndpointValue, encodeServiceValue, readU32 } from '../codec/structs.js';
import { offsetOf } from '../codec/abi.js';
import { Access, Region, type AccessRules } from './memory.js';
import type { HashMap } from './maps.js';

interface FieldSpan {
  readonly name: string;
  readonly off: number;
  readonly size: number;
}

function spans(struct: 'service_value' | 'backend_value'): FieldSpan[] {
  const o = (f: string) => offsetOf(struct, f);
  if (struct === 'service_value') {
    return [
      ...Array.from({ length: PRIO_GROUPS }, (_, p) => ({ name: `count${p}`, off: o('prio_endpoint_count') + 4 * p, size: 4 })),
      { name: 'policy', off: o('lb_policy'), size: 4 },
      ...Array.from({ length: PORT_SLOTS }, (_, i) => ({ name: `sport${i}`, off: o('service_port') + 4 * i, size: 4 })),
      ...Array.from({ length: PORT_SLOTS }, (_, i) => ({ name: `tport${i}`, off: o('target_port') + 4 * i, size: 4 })),
      { name: 'wpAddr', off: o('wp_addr'), size: 16 },
      { name: 'wpPort', off: o('waypoint_port'), size: 4 },
    ];
  }
  return [
    { name: 'addr', off: o('addr'), size: 16 },
    { name: 'serviceCount', off: o('service_count'), size: 4 },
    ...Array.from({ length: 10 }, (_, i) => ({ name: `service${i}`, off: o('service') + 4 * i, size: 4 })),
    { name: 'wpAddr', off: o('wp_addr'), size: 16 },
    { name: 'wpPort', off: o('waypoint_port'), size: 4 },
  ];
}

const SERVICE_SPANS = spans('service_value');
const BACKEND_SPANS = spans('backend_value');

function serviceOf(id: number, f: (name: string) => number | string | undefined): Service {
  const n = (k: string) => (f(k) as number | undefined) ?? 0;
  return {
    id,
    endpointCounts: Array.from({ length: PRIO_GROUPS }, (_, p) => n(`count${p}`)),
    lbPolicy: n('policy'),
    servicePorts: Array.from({ length: PORT_SLOTS }, (_, i) => n(`sport${i}`)),
    targetPorts: Array.from({ length: PORT_SLOTS }, (_, i) => n(`tport${i}`)),
    waypoint: { addr: (f('wpAddr') as string | undefined) ?? '0.0.0.0', port: n('wpPort') },
  };
}

function backendOf(uid: number, f: (name: string) => number | string | undefined): Backend {
  return {
    uid,
    addr: (f('addr') as string | undefined) ?? '0.0.0.0',
    services: [],
    waypoint: { addr: (f('wpAddr') as string | undefined) ?? '0.0.0.0', port: (f('wpPort') as number | undefined) ?? 0 },
  };
}

/**
 * A field's bytes for a value, by field and value: a struct's fields encode apart from one another,
 * so one encoding of the value alone serves every region (encoding the whole value again at each
 * decided field was a tenth of an exploration's time).
 */
const FIELD_BYTES = new WeakMap<FieldSpan, Map<number | string, Uint8Array>>();
function fieldBytes(f: FieldSpan, value: number | string, encode: (known: Map<string, number | string>) => Uint8Array): Uint8Array {
  let byValue = FIELD_BYTES.get(f);
  if (byValue === undefined) FIELD_BYTES.set(f, (byValue = new Map()));
  let bytes = byValue.get(value);
  if (bytes === undefined) {
    bytes = encode(new Map([[f.name, value]])).slice(f.off, f.off + f.size);
    byValue.set(value, bytes);
  }
  return bytes;
}

/**
 * A value region whose fields are decided on first access. An access at an offset decides the
 * field there and is allowed for the sizes that stay within decided fields; a wider load fails
 * that first check, and the engine's slow path asks again at the same offset before the region's
 * memory was used (`view` untouched): then every field the widest load could cover is decided.
 */
function lazyRegion(map: HashMap, size: number, fields: readonly FieldSpan[], decide: (name: string) => number | string, encode: (known: Map<string, number | string>) => Uint8Array): Region {
  const known = new Map<string, number | string>();
  const bytes = new Uint8Array(size);
  const byteField: (FieldSpan | undefined)[] = new Array<FieldSpan | undefined>(size);
  for (const f of fields) for (let i = f.off; i < f.off + f.size; i++) byteField[i] = f;
  let region: Region | null = null;
  /** The offset of the last narrowed answer, until the region's memory is used. */
  let narrowedAt = -1;
  const decideRange = (from: number, to: number) => {
    const fresh: FieldSpan[] = [];
    for (let i = from; i < Math.min(size, to); i++) {
      const f = byteField[i];
      if (f && !known.has(f.name) && !fresh.includes(f)) fresh.push(f);
    }
    if (fresh.length === 0) return;
    for (const f of fresh) known.set(f.name, decide(f.name));
    for (const f of fresh) bytes.set(fieldBytes(f, known.get(f.name) as number | string, encode), f.off);
    if (known.size === fields.length && region) region.access = Access.RW;
  };
  const decidedAt = (i: number) => {
    const f = byteField[i];
    return !f || known.has(f.name);
  };
  /** Per offset, the answer once it can no longer change (every byte it covers decided); 0 until then. */
  const settled = new Uint8Array(size);
  const touch = (at: number): number => {
    if (at === narrowedAt) {
      // The same offset again before any use: a load wider than allowed; decide what it covers.
      narrowedAt = -1;
      decideRange(at, at + 8);
      return 15;
    }
    const done = settled[at] as number;
    if (done !== 0) {
      if (done !== 15) narrowedAt = at;
      return done;
    }
    decideRange(at, at + 1);
    let mask = 0;
    let final = true;
    for (const s of [1, 2, 4, 8]) {
      let ok = at % s === 0 || s === 1;
      if (!ok) break;
      for (let i = at; ok && i < at + s; i++) {
        ok = i < size && decidedAt(i);
        if (i < size && !decidedAt(i)) final = false;
      }
      if (ok) mask |= s;
      else break;
    }
    if (mask !== 15) narrowedAt = at;
    const answer = mask === 0 ? 1 : mask | 1;
    if (final && mask !== 0) settled[at] = answer;
    return answer;
  };
  // Typed-array indices reach the proxy as digit strings: a first-character test is enough.
  const isIndex = (prop: string | symbol): prop is string => typeof prop === 'string' && prop.length > 0 && prop.charCodeAt(0) >= 48 && prop.charCodeAt(0) <= 57;
  const table = (): Uint8Array =>
    new Proxy(new Uint8Array(size), {
      get(target, prop) {
        if (isIndex(prop)) {
          const at = Number(prop);
          return at < size ? touch(at) : 0;
        }
        return Reflect.get(target, prop) as unknown;
      },
    });
  const rules: AccessRules = { read: table(), write: table(), storeWidth: new Uint8Array(size), fieldAt: (off) => byteField[off]?.name ?? `offset ${off}` };
  region = new Region(`map ${map.name} value`, bytes, Access.RULES, rules, map);
  // The engines read `view` once an access is allowed: from then on an answer is no longer pending.
  const view = region.view;
  Object.defineProperty(region, 'view', {
    get() {
      narrowedAt = -1;
      return view;
    },
  });
  return region;
}

/** Hooks the routing maps so that misses are decided by `source`. */
export function attachLazyMaps(maps: ReadonlyMap<string, HashMap>, source: () => LazyMapSource): LazyMaps {
  const hooked: HashMap[] = [];
  const hook = (name: string, onMiss: (key: Uint8Array, map: HashMap) => Region | null) => {
    const m = maps.get(name);
    if (!m) throw new Error(`no routing map ${name} to hook`);
    m.onMiss = (key) => onMiss(key, m);
    hooked.push(m);
  };
  const plain = (map: HashMap, value: Uint8Array) => new Region(`map ${map.name} value`, value, Access.RW, null, map);
  hook('km_frontend', (key, map) => {
    const id = source().frontend(decodeFrontendKey(key));
    return id === null ? null : plain(map, encodeFrontendValue(id));
  });
  hook('km_endpoint', (key, map) => {
    const uid = source().endpoint(readU32(key, 0), readU32(key, 4), readU32(key, 8));
    return uid === null ? null : plain(map, encodeEndpointValue(uid));
  });
  hook('km_service', (key, map) => {
    const s = source();
    const id = readU32(key, 0);
    if (s.service(id) === null) return null;
    return lazyRegion(
      map,
      map.def.valueSize,
      SERVICE_SPANS,
      (name) => s.serviceField(id, name),
      (k) => encodeServiceValue(serviceOf(id, (n) => k.get(n))),
    );
  });
  hook('km_backend', (key, map) => {
    const s = source();
    const uid = readU32(key, 0);
    if (s.backend(uid) === null) return null;
    return lazyRegion(
      map,
      map.def.valueSize,
      BACKEND_SPANS,
      (name) => s.backendField(uid, name),
      (k) => encodeBackendValue(backendOf(uid, (n) => k.get(n))),
    );
  });
  return {
    clear: () => {
      for (const m of hooked) m.clear();
    },
    detach: () => {
      for (const m of hooked) {
        m.onMiss = null;
        m.clear();
      }
    },
  };
}
