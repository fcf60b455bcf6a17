// The waypoint chain of one connect (section 3.9; interpretation.md, item 6): passes run until one
// does not route via a waypoint or the tail-call limit ends the chain. Alternatives that reach the
// same state at the same depth are merged (their futures are identical), which keeps a chain of
// random draws linear instead of exponential; the first (smallest-index) run is kept.

import { TAIL_CALL_LIMIT, type Family, type Protocol, type SockAddr, type StorageView } from '../domain.js';
import type { PassRecord } from '../spec/passes.js';
import type { MapIndex } from './maps.js';
import { runPass, type Draw, type PassState } from './pass.js';

export const MAX_PASSES = 1 + TAIL_CALL_LIMIT;

export interface ChainEnd {
  readonly state: PassState;
  readonly records: readonly PassRecord[];
  readonly draws: readonly (Draw & { readonly pass: number })[];
}

/** Whether a list of runs has one in state `s` (same destination, enrolment and storage: the same future). */
function reaches(runs: readonly ChainEnd[], s: PassState): boolean {
  for (const r of runs) if (sameState(r.state, s)) return true;
  return false;
}

function sameState(a: PassState, b: PassState): boolean {
  return sameAddr(a.dest, b.dest) && a.netnsEnrolled === b.netnsEnrolled && sameStorage(a.storage, b.storage);
}

function sameStorage(a: StorageView | null, b: StorageView | null): boolean {
  if (!a || !b) return !a && !b;
  if (a.viaWaypoint !== b.viaWaypoint || a.hasSetIp !== b.hasSetIp || a.hasEncoded !== b.hasEncoded) return false;
  return a.original && b.original ? sameAddr(a.original, b.original) : !a.original && !b.original;
}

function sameAddr(a: SockAddr, b: SockAddr): boolean {
  return a.addr === b.addr && a.port === b.port;
}

function withPass(d: Draw, pass: number): Draw & { readonly pass: number } {
  return { serviceId: d.serviceId, prio: d.prio, count: d.count, index: d.index, alike: d.alike, pass };
}

export function runChain(maps: MapIndex, family: Family, protocol: Protocol, start: PassState): ChainEnd[] {
  let frontier: ChainEnd[] = [{ state: start, records: [], draws: [] }];
  // Compared only once runs split: most chains are one run. Runs are few (one per LB alternative
  // at most), so a scan of the kept ones costs less than a text key per run and a Map.
  let ends: ChainEnd[] | null = null;
  for (let pass = 1; pass <= MAX_PASSES && frontier.length > 0; pass++) {
    let next: ChainEnd[] | null = null;
    let single: ChainEnd | null = null;
    for (const run of frontier) {
      const alts = runPass({ maps, family, protocol, pass, state: run.state });
      for (const alt of alts) {
        const item: ChainEnd = {
          state: alt.next,
          records: [...run.records, alt.record],
          draws: alt.draw ? [...run.draws, withPass(alt.draw, pass)] : run.draws,
        };
        const goesOn = alt.record.result === 'waypoint' && pass < MAX_PASSES;
        // Without draws there is one run and nothing to merge: skip the keys.
        if (frontier.length === 1 && alts.length === 1 && ends === null) {
          if (!goesOn) return [item];
          single = item;
          continue;
        }
        const target = goesOn ? (next ??= []) : (ends ??= []);
        if (!reaches(target, item.state)) target.push(item);
      }
    }
    frontier = single ? [single] : (next ?? []);
  }
  return ends ?? [];
}
