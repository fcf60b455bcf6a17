// The acceleration checks (section 8): generated cases (fast-check, seeded) through the reference
// model or the kernel, judged by model/accel's invariants; a failing case is shrunk by fast-check
// and returned with the invariant that broke, its detail and the printed case.

import fc from 'fast-check';
import { accelCaseArb } from '../generators/accel.js';
import type { AccelExecutor } from '../model/accel/executor.js';
import type { AccelCase, AccelObservation } from '../model/accel/domain.js';
import { formatAccelCase, formatAccelObservation } from '../model/accel/format.js';
import { accelInvariants, judgeAccel } from '../model/accel/invariants.js';
import { expectedAccel } from '../model/accel/model.js';

export interface AccelFailure {
  readonly invariant: string;
  readonly detail: string;
  readonly case: AccelCase;
  readonly observation: AccelObservation;
  /** Replay: fast-check's seed and path. */
  readonly seed: number;
  readonly path: string;
}

export interface AccelResult {
  readonly runs: number;
  /** Cases that exercised each invariant (verdict holds). */
  readonly exercised: Readonly<Record<string, number>>;
  readonly failure: AccelFailure | null;
}

export interface AccelRunOptions {
  readonly seed: number;
  readonly runs: number;
  /** The kernel or VM executor; without it the model's own observations are judged (model against spec). */
  readonly executor?: AccelExecutor;
}

export async function runAccelChecks(o: AccelRunOptions): Promise<AccelResult> {
  const exercised: Record<string, number> = Object.fromEntries(accelInvariants.map((i) => [i.name, 0]));
  let last: { invariant: string; detail: string; observation: AccelObservation } | null = null;
  let shrinking = false;
  const observe = async (c: AccelCase): Promise<AccelObservation> => (o.executor ? (await o.executor.run([c]))[0]! : expectedAccel(c));
  const details = await fc.check(
    fc.asyncProperty(accelCaseArb(), async (c) => {
      const obs = await observe(c);
      const verdicts = judgeAccel(c, obs);
      if (!shrinking) for (const v of verdicts) if (v.verdict.status === 'holds') exercised[v.name]!++;
      const bad = verdicts.find((v) => v.verdict.status === 'violated');
      if (!bad || bad.verdict.status !== 'violated') return true;
      shrinking = true;
      last = { invariant: bad.name, detail: bad.verdict.detail, observation: obs };
      return false;
    }),
    { seed: o.seed, numRuns: o.runs, endOnFailure: false },
  );
  const failed = last as { invariant: string; detail: string; observation: AccelObservation } | null;
  // An executor that threw (environment, a program the VM cannot run) is an error, not a pass.
  if (details.failed && !failed) throw details.errorInstance instanceof Error ? details.errorInstance : new Error(String(details.errorInstance));
  if (!details.failed || !details.counterexample || !failed) return { runs: details.numRuns, exercised, failure: null };
  // fast-check's last failing run is the shrunk counterexample; judge it once more for its detail.
  const [c] = details.counterexample;
  const obs = await observe(c);
  const bad = judgeAccel(c, obs).find((v) => v.verdict.status === 'violated');
  return {
    runs: details.numRuns,
    exercised,
    failure: {
      invariant: bad?.name ?? failed.invariant,
      detail: bad?.verdict.status === 'violated' ? bad.verdict.detail : failed.detail,
      case: c,
      observation: obs,
      seed: o.seed,
      path: details.counterexamplePath ?? '',
    },
  };
}

/** How to find the case again: fast-check's seed and path, or its place in the enumeration. */
function replayLine(f: AccelFailure): string {
  const e = /^exhaustive:(\d+):(\d+)$/.exec(f.path);
  return e ? `  replay: case ${e[2]} of the acceleration enumeration at scope ${e[1]} (check --exhaustive --scope ${e[1]})` : `  replay: fast-check seed ${f.seed}, path ${JSON.stringify(f.path)}`;
}

export function formatAccelFailure(f: AccelFailure, executor: string): string {
  return [
    `COUNTEREXAMPLE (acceleration, ${executor}): ${f.invariant}`,
    `  ${f.detail}`,
    ...formatAccelCase(f.case).map((l) => `  ${l}`),
    '  observed:',
    ...formatAccelObservation(f.case, f.observation).map((l) => `    ${l}`),
    replayLine(f),
  ].join('\n');
}
