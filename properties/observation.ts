// Comparing observations. Executors and the model report the same Observation shape; an error is
// compared by its presence only (the model predicts that a connect fails, not the exact errno a
// given kernel picks), everything else exactly.

import type { Observation } from '../model/domain.js';

/** A canonical text of an observation: equal keys mean the observations match. */
export function observationKey(o: Observation): string {
  const key = [o.op, o.sock, o.peer ?? null, o.error === undefined || o.error === null ? null : 'error', o.storage ?? null, o.inSockhash ?? null, o.stream ?? null];
  // Datagram operations (section 6): where a query arrived, and what recvfrom reported and got.
  if (o.op === 'sendto') key.push(o.arrivedAt ?? null);
  if (o.op === 'recvfrom') key.push(o.from ?? null, o.data ?? null);
  return JSON.stringify(key);
}

export function traceKey(trace: readonly Observation[]): string {
  return trace.map(observationKey).join('\n');
}

/** Whether two observations match: observationKey(a) === observationKey(b), without building the keys. */
export function sameObservation(a: Observation, b: Observation): boolean {
  if (!sameJsonItem(a.op, b.op) || !sameJsonItem(a.sock, b.sock) || !sameJsonItem(a.peer ?? null, b.peer ?? null)) return false;
  if ((a.error === undefined || a.error === null) !== (b.error === undefined || b.error === null)) return false;
  if (!sameJsonItem(a.storage ?? null, b.storage ?? null) || !sameJsonItem(a.inSockhash ?? null, b.inSockhash ?? null) || !sameJsonItem(a.stream ?? null, b.stream ?? null)) return false;
  // The ops are equal here, so both keys have the same datagram fields.
  if (a.op === 'sendto') return sameJsonItem(a.arrivedAt ?? null, b.arrivedAt ?? null);
  if (a.op === 'recvfrom') return sameJsonItem(a.from ?? null, b.from ?? null) && sameJsonItem(a.data ?? null, b.data ?? null);
  return true;
}

/** Whether two traces match: traceKey(a) === traceKey(b) (a key holds no newline, so the lengths must agree). */
export function sameTrace(a: readonly Observation[], b: readonly Observation[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameObservation(a[i]!, b[i]!)) return false;
  return true;
}

/**
 * Whether two values of plain data (objects, arrays, primitives, as observations are) are the
 * same: objects with the same own keys (undefined-valued ones included), arrays of the same
 * length, each value the same again, leaves compared with === (so NaN is never taken for itself:
 * such values are only ever checked once more). What any reader of the fields sees is then the
 * same, unlike sameTrace, which ignores errno names and null against absent.
 */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const array = Array.isArray(a);
  if (array !== Array.isArray(b)) return false;
  // Arrays by index (a reader sees a hole as undefined, as an undefined item): a key walk would name every index as text.
  if (array) return sameItems(a as readonly unknown[], b as readonly unknown[]);
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) {
    if (!Object.hasOwn(x, k)) continue;
    if (!Object.hasOwn(y, k) || !sameData(x[k], y[k])) return false;
    n++;
  }
  for (const k in y) if (Object.hasOwn(y, k)) n--;
  return n === 0;
}

function sameItems(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false;
  return true;
}

/** What JSON.stringify writes for a leaf value inside an array (undefined, functions and symbols: null). */
function leaf(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v + 0 : null;
  return v === undefined || typeof v === 'function' || typeof v === 'symbol' ? null : v;
}

/** A value JSON.stringify writes member by member: a plain object or an array without toJSON. */
function plain(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return (proto === Object.prototype || proto === Array.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function';
}

/** Whether JSON.stringify writes the same text for `a` and `b` as array items; anything but plain data is compared by its text. */
function sameJsonItem(a: unknown, b: unknown): boolean {
  const objA = typeof a === 'object' && a !== null;
  const objB = typeof b === 'object' && b !== null;
  if (typeof a === 'bigint' || typeof b === 'bigint' || (objA && !plain(a)) || (objB && !plain(b))) return JSON.stringify([a]) === JSON.stringify([b]);
  if (!objA || !objB) return !objA && !objB && leaf(a) === leaf(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJsonItem(a[i], b[i])) return false;
    return true;
  }
  // Both objects' member keys, in order, on one stack shared by the recursion (no arrays per call).
  const start = KEYS.length;
  pushMembers(a as Record<string, unknown>);
  const mid = KEYS.length;
  pushMembers(b as Record<string, unknown>);
  const n = mid - start;
  let same = KEYS.length - mid === n;
  for (let i = 0; same && i < n; i++) {
    const k = KEYS[start + i]!;
    same = k === KEYS[mid + i] && sameJsonItem((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
  }
  KEYS.length = start;
  return same;
}

const KEYS: string[] = [];

/** Pushes the keys JSON.stringify writes for a plain object, in its order (members that are undefined, functions or symbols are left out). */
function pushMembers(o: Record<string, unknown>): void {
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue;
    const v = o[k];
    if (v !== undefined && typeof v !== 'function' && typeof v !== 'symbol') KEYS.push(k);
  }
}

/** Index of the first observation where two traces differ, or -1. */
export function firstDifference(a: readonly Observation[], b: readonly Observation[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y || observationKey(x) !== observationKey(y)) return i;
  }
  return -1;
}

/** Whether `trace` observes what `observed` does before operation `step`. */
export function followsUpTo(observed: readonly Observation[], trace: readonly Observation[], step: number): boolean {
  const d = firstDifference(observed, trace);
  return d < 0 || d >= step;
}

/**
 * Where `observed` leaves every trace of `allowed` (the furthest step any of them follows it to),
 * and the distinct observations those that follow it that far have at that step.
 */
export function divergence(observed: readonly Observation[], allowed: readonly (readonly Observation[])[]): { step: number; allowed: Observation[] } {
  let step = 0;
  for (const t of allowed) {
    const d = firstDifference(observed, t);
    step = Math.max(step, d < 0 ? observed.length : d);
  }
  const seen = new Map<string, Observation>();
  for (const t of allowed) {
    if (!followsUpTo(observed, t, step)) continue;
    const o = t[step];
    if (o) seen.set(traceKey([o]), o);
  }
  return { step, allowed: [...seen.values()] };
}
