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
