// Socket storage over a socket's life (sections 3.8, 3.9): the original destination is written
// once, by the connect that first records it, and via_waypoint is never cleared.

import { canonicalSockText } from '../../address.js';
import type { Family, SockAddr } from '../../domain.js';
import { RESULT_OF_PATH, type PassResult } from '../passes.js';
import { sameSockAddr, show, stepViews } from '../facts.js';
import { Checker, type Invariant } from '../types.js';

/** The destination a sendto names, as socket text of the family. */
function sendtoAsked(family: Family | null, dest: SockAddr): SockAddr | null {
  if (family === null) return null;
  try {
    return { addr: canonicalSockText(family, dest.addr), port: dest.port };
  } catch {
    return null;
  }
}

/** The pass results that may record the original destination. */
const RECORDING_RESULTS: readonly PassResult[] = ['kept', 'rewritten', 'waypoint'];

export const originalWrittenOnce: Invariant = {
  name: 'original-written-once',
  statement:
    "A socket's original destination is written at most once, by the connect that first records it, and equals the destination the application asked for in that connect; once written it never changes.",
  check(ctx) {
    const chk = new Checker();
    // By socket life (1, 2, ...: small integers, so arrays rather than maps).
    const recorded: ({ at: number; original: { addr: string; port: number } } | undefined)[] = [];
    const recordingPass: (number | undefined)[] = [];
    for (const v of stepViews(ctx)) {
      if (v.life === null) continue;
      const st = v.obs.storage;
      const before = recorded[v.life];
      if (v.passes) {
        for (const p of v.passes) {
          if (!p.recordedOriginal) continue;
          chk.exercise();
          const prev = recordingPass[v.life];
          chk.expect(prev === undefined, () => `operation ${v.i + 1}: pass ${p.pass} records the original again (first recorded at operation ${(prev ?? 0) + 1})`);
          chk.expect(
            RECORDING_RESULTS.includes(RESULT_OF_PATH[p.path]),
            () => `operation ${v.i + 1}: pass ${p.pass} (${p.path}) records the original but only kept, rewritten and waypoint passes may`,
          );
          recordingPass[v.life] = v.i;
        }
      }
      if (st === undefined) continue;
      if (st === null) {
        if (before) chk.expect(false, () => `operation ${v.i + 1}: the socket's storage vanished after it recorded ${show(before.original)}`);
        continue;
      }
      chk.expect(st.hasSetIp === (st.original !== null), () => `operation ${v.i + 1}: has_set_ip is ${st.hasSetIp} but the original is ${show(st.original)}`);
      if (!st.original) {
        if (before) chk.expect(false, () => `operation ${v.i + 1}: the original ${show(before.original)} was cleared`);
        continue;
      }
      chk.exercise();
      if (before) {
        chk.expect(sameSockAddr(st.original, before.original), () => `operation ${v.i + 1}: the original changed from ${show(before.original)} to ${show(st.original)}`);
        continue;
      }
      // A connect program, or the send hook of a sendto (section 6; on a connected socket the hook
      // leaves it alone, and its send is a 'send' here), records it.
      const asked = v.op.op === 'sendto' ? sendtoAsked(v.family, v.op.dest) : v.asked;
      chk.expect(
        (v.op.op === 'connect' && v.runsProgram) || v.op.op === 'sendto',
        () => `operation ${v.i + 1} (${v.op.op}) records an original destination; only a connect program, or the send hook of a sendto on an unconnected socket, may`,
      );
      chk.expect(sameSockAddr(st.original, asked), () => `operation ${v.i + 1}: recorded original ${show(st.original)} but the application asked for ${show(asked)}`);
      if (v.passes && v.op.op === 'connect') {
        chk.expect(
          v.passes.some((p) => p.recordedOriginal),
          () => `operation ${v.i + 1}: the original appears but no pass records it`,
        );
      }
      recorded[v.life] = { at: v.i, original: st.original };
    }
    return chk.verdict();
  },
};

export const viaWaypointSticky: Invariant = {
  name: 'via-waypoint-sticky',
  statement:
    "Once a socket's storage says via_waypoint it says so for the rest of the socket's life, it goes with a recorded original destination, and a connect with a waypoint pass always leaves it set.",
  check(ctx) {
    const chk = new Checker();
    // By socket life: whether its storage said via_waypoint.
    const via: boolean[] = [];
    for (const v of stepViews(ctx)) {
      if (v.life === null) continue;
      const st = v.obs.storage;
      const waypointPass = v.passes?.some((p) => p.result === 'waypoint') ?? false;
      if (waypointPass || st?.viaWaypoint) chk.exercise();
      if (waypointPass) chk.expect(!!st?.viaWaypoint, () => `operation ${v.i + 1}: a pass went via a waypoint but the storage does not say via_waypoint`);
      if (v.passes && v.op.op === 'connect' && !waypointPass && !via[v.life] && st) {
        chk.expect(!st.viaWaypoint, () => `operation ${v.i + 1}: via_waypoint set although no pass went via a waypoint`);
      }
      if (st === undefined) continue;
      if (via[v.life]) chk.expect(!!st?.viaWaypoint, () => `operation ${v.i + 1}: via_waypoint was cleared`);
      if (st?.viaWaypoint) {
        chk.expect(st.hasSetIp && st.original !== null, () => `operation ${v.i + 1}: via_waypoint without a recorded original destination`);
        via[v.life] = true;
      }
    }
    return chk.verdict();
  },
};
