// Coverage classes that only a history within a case reaches: a later connect of a socket whose
// original destination an earlier connect already recorded (the storage's once-only rules, section
// 3.8), and a waypoint-bound socket established in an enrolled namespace from a local IP that is
// not enrolled (section 4: only an enrolled local IP puts it into km_socket). One connect per
// socket in a freshly enrolled namespace tests none of them: a program that ties via_waypoint to
// the write of the original, writes the original again, or puts every waypoint-bound socket into
// km_socket passes every such case.

import type { Case, StorageView } from '../model/domain.js';
import type { Trace } from '../model/impl/index.js';

/**
 * The classes a run must see (properties/statistics.ts REQUIRED_CLASSES.history), in
 * HISTORY_CLASS_FACTOR times the share of the other classes. The first needs a socket that
 * connects twice, the second one whose earlier connect recorded and then failed (on TCP; else
 * the socket is connected), which this environment's listeners make rare (about one sequence in
 * 2,500; connect.ts waypointedFrontendGen makes the second half likelier). The third needs an
 * enrolment change from one local IP before a waypoint-bound connect from another (about one
 * sequence in 1,000, with cases.ts's enrolment commands).
 */
export const HISTORY_CLASSES = [
  // A connect whose pipeline succeeded, to another destination than the recorded original.
  'original-kept',
  // A connect routed via a waypoint on a socket whose original an earlier connect recorded without one.
  'waypoint-after-original',
  // An established waypoint-bound socket whose local IP is not enrolled, in an enrolled namespace.
  'waypoint-local-unenrolled',
] as const;

/** History classes are required in this many times the share of the others. */
export const HISTORY_CLASS_FACTOR = 1 / 20;

/** Ordinary cases one targeted case toward a history class may look at (generators/targeted.ts TARGET_DRAWS for the others). */
export const HISTORY_TARGET_DRAWS = 1024;

export function historyTraits(c: Case, allowed: readonly Trace[]): Set<string> {
  const out = new Set<string>();
  const t = allowed[0];
  if (!t) return out;
  /** The storage each socket's last connect left. */
  const last = new Map<number, StorageView>();
  c.ops.forEach((op, i) => {
    if (op.op === 'socket' || op.op === 'close') last.delete(op.sock);
    if (op.op !== 'connect') return;
    const seen = t.observations[i];
    const storage = seen?.storage;
    const before = last.get(op.sock);
    if (before?.hasSetIp && storage) {
      if (!before.viaWaypoint && storage.viaWaypoint) out.add('waypoint-after-original');
      const first = t.passes[i]?.[0];
      const recorded = before.original;
      const other = recorded !== null && (recorded.addr !== op.dest.addr || recorded.port !== op.dest.port);
      if (other && first && (first.result === 'kept' || first.result === 'rewritten' || first.result === 'waypoint')) out.add('original-kept');
    }
    // This connect's programs ran (the namespace is enrolled) and routed it via a waypoint; it is
    // established and, by the model, not in km_socket: its local IP is not enrolled.
    if (seen?.peer && storage?.viaWaypoint && t.passes[i]?.length && seen.inSockhash === false) out.add('waypoint-local-unenrolled');
    if (storage) last.set(op.sock, storage);
  });
  return out;
}
