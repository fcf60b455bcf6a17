// A finding whose case passes when judged again alone (an executor whose outcome depended on the
// cases before it) is reported, unshrunk, with why: it was dropped, and the run said it found
// nothing while its invariant table counted a failure.

import { describe, expect, it } from 'vitest';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import type { Executor } from '../../model/executor.js';
import type { Case, Observation } from '../../model/domain.js';
import { outcomes } from '../../model/impl/index.js';
import { runChecks } from '../../properties/run.js';
import { counterexampleJson, formatCounterexample } from '../../cli/report.js';

/** The model's first outcome of every case, but one connect result wrong once, in the 40th case that has one. */
function historyDependent(): Executor {
  let withConnect = 0;
  let corrupted = false;
  const run = (c: Case): Observation[] => {
    const obs = outcomes(c, DEFAULT_ENVIRONMENT)[0]!.observations;
    const at = obs.findIndex((o) => o.op === 'connect' && o.error === null);
    if (at < 0 || corrupted || ++withConnect < 40) return [...obs];
    corrupted = true;
    return obs.map((o, i) => (i === at ? { ...o, error: 'EXDEV', peer: null } : o)) as Observation[];
  };
  return { name: 'stub', environment: DEFAULT_ENVIRONMENT, sameDrawsEachRun: true, run: (cs: readonly Case[]) => Promise.resolve(cs.map(run)), close: () => Promise.resolve() } as unknown as Executor;
}

describe('a finding that does not fail alone', () => {
  it('is reported with its case as generated and why, not dropped', async () => {
    const r = await runChecks({ seed: 3, runs: 300, states: 'consistent', env: DEFAULT_ENVIRONMENT, executor: historyDependent() });
    expect(r.invariants.reduce((n, i) => n + i.failed, 0)).toBe(1);
    expect(r.counterexamples).toHaveLength(1);
    const cx = r.counterexamples[0]!;
    expect(cx.unreproduced).toBe(true);
    expect(cx.hits).toBe(1);
    expect(cx.size).toBe(cx.shrunkFrom);
    expect(cx.failure.detail).toMatch(/^failed in the run but not when run again alone: the cases before it left state behind in the stub executor/);
    const text = formatCounterexample(cx, 'stub');
    expect(text).toContain('as generated: it did not fail alone, so it was not shrunk');
    expect(counterexampleJson(cx, 'stub').unreproduced).toBe(true);
  });
});
