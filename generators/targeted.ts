// Targeted generation: cases biased toward one coverage class (a socket family, an LB policy, a
// path of section 3, a DNS class) that the random phases left under-covered. Each targeted case is the first of
// a bounded batch of ordinary cases that has the class (by the caller's predicate, which asks the
// reference model), so a class the generators reach at all is reached in a few cases, generation
// never loops forever on an unreachable class, and a finding replays from fast-check's seed and
// path like any other.

import fc from 'fast-check';
import type { Case } from '../model/domain.js';
import { caseGen, type KindChoice, type Shape } from './cases.js';
import { firstWith } from './choices.js';

/** How many ordinary cases one targeted case may look at. */
export const TARGET_DRAWS = 128;

/** A phase id for a class ("target/path:random-empty/both/single"): all a replay needs. */
export function targetPhaseId(cls: string, kind: KindChoice, shape: Shape): string {
  return `target/${cls}/${kind}/${shape}`;
}

export function parseTargetPhaseId(id: string): { cls: string; kind: KindChoice; shape: Shape } | null {
  const m = /^target\/([a-z0-9-]+:[a-z0-9()-]+)\/(consistent|raw|both)\/(single|sequence|dns)$/.exec(id);
  return m ? { cls: m[1]!, kind: m[2] as KindChoice, shape: m[3] as Shape } : null;
}

/**
 * Cases that have the class when the generators can produce it: of up to `draws` ordinary cases,
 * the first that `has` the class (the first drawn when none does). It shrinks like an ordinary case.
 */
export function targetedCaseArb(opts: { kind: KindChoice; shape: Shape; has: (c: Case) => boolean; draws?: number }): fc.Arbitrary<Case> {
  return firstWith(caseGen({ kind: opts.kind, shape: opts.shape }), opts.draws ?? TARGET_DRAWS, opts.has);
}
