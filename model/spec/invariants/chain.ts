// The passes of one connect (section 3.9; interpretation.md, items 3 and 6): a chain that starts at
// the application's destination, continues only through waypoints, stops after at most 1 + 33
// passes, and leaves the socket where its last pass ended.

import { TAIL_CALL_LIMIT } from '../../domain.js';
import { RESULT_OF_PATH } from '../passes.js';
import { programConnects, sameSockAddr, show, socketView } from '../facts.js';
import { Checker, type Invariant } from '../types.js';
import { expectEndsAt } from './untouched.js';

const MAX_PASSES = 1 + TAIL_CALL_LIMIT;

export const passChain: Invariant = {
  name: 'pass-chain',
  statement:
    "A connect's passes form one chain: the first starts at the destination the application asked for, each next one starts where the previous ended, only a waypoint pass is followed by another, there are at most 34, untouched, failed and kept passes leave the destination as it was, and the connect goes where the last pass ended.",
  needs: 'passes',
  check(ctx) {
    const chk = new Checker();
    for (const v of programConnects(ctx)) {
      const passes = v.passes;
      if (!passes) continue;
      chk.exercise();
      const where = `operation ${v.i + 1}`;
      if (!chk.expect(passes.length >= 1 && passes.length <= MAX_PASSES, () => `${where}: ${passes.length} passes, expected 1..${MAX_PASSES}`)) continue;
      passes.forEach((p, k) => {
        const at = `${where}, pass ${k + 1}`;
        chk.expect(p.pass === k + 1, () => `${at}: numbered ${p.pass}`);
        chk.expect(p.result === RESULT_OF_PATH[p.path], () => `${at}: ${p.path} is ${RESULT_OF_PATH[p.path]}, recorded ${p.result}`);
        const from = k === 0 ? v.asked : passes[k - 1]!.destOut;
        chk.expect(sameSockAddr(p.destIn, from), () => `${at}: starts at ${show(p.destIn)}, expected ${show(from)}`);
        const last = k === passes.length - 1;
        if (!last) chk.expect(p.result === 'waypoint', () => `${at}: a ${p.result} pass is followed by another pass`);
        else if (p.result === 'waypoint') chk.expect(passes.length === MAX_PASSES, () => `${at}: the chain stops after a waypoint pass before the tail-call limit`);
        if (p.result === 'untouched' || p.result === 'failed' || p.result === 'kept') {
          chk.expect(sameSockAddr(p.destOut, p.destIn), () => `${at}: a ${p.result} pass moved the destination to ${show(p.destOut)}`);
        }
        if (p.result === 'untouched' || p.result === 'failed') chk.expect(!p.recordedOriginal, () => `${at}: a ${p.result} pass recorded the original`);
      });
      expectEndsAt(chk, v, ctx.env, passes[passes.length - 1]!.destOut, 'end of the chain');
    }
    return chk.verdict();
  },
};

export const waypointChain: Invariant = {
  name: 'waypoint-chain',
  statement:
    "A waypoint pass sends the socket to the waypoint written in the socket's family and, below the tail-call limit, the next pass resolves that address again from the frontends; along the chain the original destination stays the one first recorded and via_waypoint stays set.",
  needs: 'passes',
  check(ctx) {
    const chk = new Checker();
    for (const v of programConnects(ctx)) {
      const passes = v.passes ?? [];
      if (!passes.some((p) => p.result === 'waypoint')) continue;
      chk.exercise();
      const where = `operation ${v.i + 1}`;
      let recorders = 0;
      passes.forEach((p, k) => {
        if (p.recordedOriginal) recorders++;
        if (p.result !== 'waypoint') return;
        const at = `${where}, pass ${k + 1}`;
        const t = p.target;
        if (!chk.expect(t !== null && (t.kind === 'service-waypoint' || t.kind === 'backend-waypoint'), () => `${at}: a waypoint pass without a waypoint target`) || !t) return;
        const view = socketView(v.family, t.addr);
        chk.expect(view !== null && sameSockAddr(p.destOut, { addr: view, port: t.port }), () => `${at}: went to ${show(p.destOut)} instead of the waypoint ${show(t)}`);
        const next = passes[k + 1];
        if (k + 1 < MAX_PASSES) {
          chk.expect(next !== undefined, () => `${at}: no pass re-resolves the waypoint below the tail-call limit`);
          if (next && next.frontendKey !== null) {
            const d = next.destIn;
            chk.expect(sameSockAddr(d, p.destOut), () => `${at}: the next pass resolves ${show(d)}, not the waypoint`);
          }
        }
      });
      chk.expect(recorders <= 1, () => `${where}: ${recorders} passes recorded the original destination`);
      const st = v.obs.storage;
      if (st !== undefined) {
        chk.expect(!!st?.viaWaypoint, () => `${where}: via_waypoint not set after a waypoint chain`);
        const original = v.storageBefore?.original ?? v.asked;
        if (v.storageBefore !== undefined) chk.expect(sameSockAddr(st?.original, original), () => `${where}: original ${show(st?.original)} after the chain, expected ${show(original)}`);
      }
    }
    return chk.verdict();
  },
};
