// The full set of observation traces of a case over every choice. Runs that reach the same world
// with the same observations so far are merged after each operation (their futures coincide), so
// the work grows with the number of distinct outcomes, not with the number of choice sequences.

import type { Case, Observation } from '../domain.js';
import type { Environment } from '../environment.js';
import type { PassRecord } from '../spec/passes.js';
import { initialWorld, step } from './step.js';
import type { Branch, Choice, Trace, World } from './types.js';

export const MAX_BRANCHES = 100_000;

export class OutcomeLimitError extends Error {}

interface Run {
  world: World;
  readonly observations: Observation[];
  readonly passes: (readonly PassRecord[])[];
  choices: Choice[];
  /** Observations so far as text (the merge key), kept only while runs are split. */
  text: string | null;
}

function observationText(o: Observation): string {
  return JSON.stringify(o);
}

function textOf(r: Run): string {
  return r.text ?? r.observations.map(observationText).join('\n');
}

function worldText(w: World): string {
  // All runs at one step share the same maps (apply is deterministic): leave them out.
  return JSON.stringify([w.netnsEnrolled, w.enrolledIps, w.sockets]);
}

/**
 * The runs minus those with the observations and world of an earlier one. A world's text (its
 * sockets as JSON, the costly part) is built only for runs whose observations match an earlier
 * run's: runs mostly split on what they observe, and those never merge.
 */
function merge(runs: Run[]): Run[] {
  const byText = new Map<string, { readonly run: Run; world: string | null }[]>();
  const kept: Run[] = [];
  for (const r of runs) {
    const text = textOf(r);
    const same = byText.get(text);
    if (same === undefined) {
      byText.set(text, [{ run: r, world: null }]);
      kept.push(r);
      continue;
    }
    const world = worldText(r.world);
    if (same.some((s) => (s.world ??= worldText(s.run.world)) === world)) continue;
    same.push({ run: r, world });
    kept.push(r);
  }
  return kept;
}

/** The de-duplicated observation traces of `c` over all choices, each with one run producing it. */
export function outcomes(c: Case, env: Environment, limit: number = MAX_BRANCHES): Trace[] {
  let runs: Run[] = [{ world: initialWorld(c, env), observations: [], passes: [], choices: [], text: null }];
  let branches = 0;
  c.ops.forEach((op, i) => {
    const next: Run[] = [];
    for (const run of runs) {
      const out = step(run.world, op, env, i);
      branches += out.length;
      if (branches > limit) {
        throw new OutcomeLimitError(
          `model: more than ${limit} outcome branches by operation ${i + 1}; the case's random draws multiply too much: use fewer random services or smaller endpoint counts`,
        );
      }
      if (runs.length === 1 && out.length === 1) {
        // The only run goes on with one branch (most operations of most cases): in place.
        const b = out[0] as Branch;
        run.world = b.world;
        run.observations.push(b.observation);
        run.passes.push(b.passes);
        if (b.choices.length > 0) run.choices = [...run.choices, ...b.choices];
        run.text = null;
        return;
      }
      const split = out.length > 1;
      const base = runs.length > 1 || split ? textOf(run) : null;
      for (const b of out) {
        // A run with one branch continues in place; a split run copies its history.
        const observations = split ? [...run.observations, b.observation] : (run.observations.push(b.observation), run.observations);
        const passes = split ? [...run.passes, b.passes] : (run.passes.push(b.passes), run.passes);
        const choices = b.choices.length === 0 ? run.choices : [...run.choices, ...b.choices];
        const text = base === null ? null : `${base}\n${observationText(b.observation)}`;
        next.push({ world: b.world, observations, passes, choices, text });
      }
    }
    runs = next.length > 1 ? merge(next) : next;
  });
  // Most cases never split: their one run is their one trace.
  if (runs.length === 1) {
    const r = runs[0] as Run;
    return [{ observations: r.observations, passes: r.passes, choices: r.choices }];
  }
  const seen = new Map<string, Trace>();
  for (const r of runs) {
    const key = textOf(r);
    if (!seen.has(key)) seen.set(key, { observations: r.observations, passes: r.passes, choices: r.choices });
  }
  return [...seen.values()];
}
