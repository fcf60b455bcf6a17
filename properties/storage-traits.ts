// Coverage classes of the socket storage's once-only rules (section 3.8): a later connect of a
// socket whose original destination an earlier connect already recorded. One connect per socket
// never tests them, and a program that ties via_waypoint to the write of the original, or writes
// the original again, passes every such case.

import type { Case, StorageView } from '../model/domain.js';
import type { Trace } from '../model/impl/index.js';

/**
 * The classes a run must see (properties/statistics.ts REQUIRED_CLASSES.storage), in
 * STORAGE_CLASS_FACTOR times the share of the other classes: the first needs a socket that
 * connects twice, the second one whose earlier connect recorded and then failed (on TCP; else
 * the socket is connected), which this environment's listeners make rare (about one sequence in
 * 2,500; connect.ts waypointedFrontendGen makes the second half likelier).
 */
export const STORAGE_CLASSES = [
  // A connect whose pipeline succeeded, to another destination than the recorded original.
  'original-kept',
  // A connect routed via a waypoint on a socket whose original an earlier connect recorded without one.
  'waypoint-after-original',
] as const;

/** Storage classes are required in this many times the share of the others. */
export const STORAGE_CLASS_FACTOR = 1 / 20;

/** Ordinary cases one targeted case toward a storage class may look at (generators/targeted.ts TARGET_DRAWS for the others). */
export const STORAGE_TARGET_DRAWS = 1024;

export function storageTraits(c: Case, allowed: readonly Trace[]): Set<string> {
  const out = new Set<string>();
  const t = allowed[0];
  if (!t) return out;
  /** The storage each socket's last connect left. */
  const last = new Map<number, StorageView>();
  c.ops.forEach((op, i) => {
    if (op.op === 'socket' || op.op === 'close') last.delete(op.sock);
    if (op.op !== 'connect') return;
    const storage = t.observations[i]?.storage;
    const before = last.get(op.sock);
    if (before?.hasSetIp && storage) {
      if (!before.viaWaypoint && storage.viaWaypoint) out.add('waypoint-after-original');
      const first = t.passes[i]?.[0];
      const recorded = before.original;
      const other = recorded !== null && (recorded.addr !== op.dest.addr || recorded.port !== op.dest.port);
      if (other && first && (first.result === 'kept' || first.result === 'rewritten' || first.result === 'waypoint')) out.add('original-kept');
    }
    if (storage) last.set(op.sock, storage);
  });
  return out;
}
