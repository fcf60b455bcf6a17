// The waypoint chain of one connect (section 3.9; interpretation.md, item 6): passes run until one
// does not route via a waypoint or the tail-call limit ends the chain. Alternatives that reach the
// same state at the same depth are merged (their futures are identical), which keeps a chain of
// random draws linear instead of exponential; the first (smallest-index) run is kept.

import { TAIL_CALL_LIMIT, type Family, type Protocol } from '../domain.js';
import type { PassRecord } from '../spec/passes.js';
import type { MapIndex } from './maps.js';
import { runPass, type Draw, type PassState } from './pass.js';

export const MAX_PASSES = 1 + TAIL_CALL_LIMIT;

export interface ChainEnd {
  readonly state: PassState;
  readonly records: readonly PassRecord[];
  readonly draws: readonly (Draw & { readonly pass: number })[];
}

function stateKey(s: PassState): string {
  const st = s.storage;
  const storage = st ? `${+st.viaWaypoint}${+st.hasSetIp}${+st.hasEncoded}${st.original ? `${st.original.addr}|${st.original.port}` : '-'}` : 'none';
  return `${s.dest.addr}|${s.dest.port}|${+s.netnsEnrolled}|${storage}`;
}

function withPass(d: Draw, pass: number): Draw & { readonly pass: number } {
  return { serviceId: d.serviceId, prio: d.prio, count: d.count, index: d.index, alike: d.alike, pass };
}

export function runChain(maps: MapIndex, family: Family, protocol: Protocol, start: PassState): ChainEnd[] {
  let frontier: ChainEnd[] = [{ state: start, records: [], draws: [] }];
  // Keyed only once runs split: most chains are one run, which needs neither map.
  let ends: Map<string, ChainEnd> | null = null;
  for (let pass = 1; pass <= MAX_PASSES && frontier.length > 0; pass++) {
    let next: Map<string, ChainEnd> | null = null;
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
        const target = goesOn ? (next ??= new Map()) : (ends ??= new Map());
        const key = stateKey(item.state);
        if (!target.has(key)) target.set(key, item);
      }
    }
    frontier = single ? [single] : next ? [...next.values()] : [];
  }
  return ends ? [...ends.values()] : [];
}
