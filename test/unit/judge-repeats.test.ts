// judgeRuns on a case the executor ran several times (random load balancing): a run deeply equal
// to an earlier one is not checked again (it passes as the earlier one did), while a run that
// differs in anything, even only in an errno name that trace matching ignores, is checked.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { judgeModel, judgeRuns } from '../../properties/judge.js';
import { caseArb } from '../../generators/index.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import type { Executor } from '../../model/executor.js';
import type { Observation } from '../../model/domain.js';
import type { Invariant } from '../../model/spec/index.js';

/** Counts its checks; violated when an observation carries the errno name EXDEV. */
function counting(): { inv: Invariant; checks: () => number } {
  let n = 0;
  const inv: Invariant = {
    name: 'no-exdev',
    statement: 'No connect fails with EXDEV.',
    check(ctx) {
      n++;
      return ctx.steps.some((s) => s.observation.error === 'EXDEV') ? { status: 'violated', detail: 'EXDEV' } : { status: 'holds' };
    },
  };
  return { inv, checks: () => n };
}

const executor = { name: 'stub', environment: DEFAULT_ENVIRONMENT, run: () => Promise.resolve([]), close: () => Promise.resolve() } as unknown as Executor;

describe('judgeRuns over repeated runs', () => {
  const cases = fc.sample(caseArb({ kind: 'consistent', shape: 'single' }), { seed: 4, numRuns: 300 });
  const parts = cases.map((c) => judgeModel(c, { env: DEFAULT_ENVIRONMENT, executor })).filter((p) => p.judgement === null);
  const failing = parts.find((p) => p.allowed[0]!.observations.some((o) => o.op === 'connect' && o.error));

  it('checks a run deeply equal to an earlier one only once', () => {
    const p = parts[0]!;
    const { inv, checks } = counting();
    const t = p.allowed[0]!.observations;
    const j = judgeRuns(p, [t, structuredClone(t), structuredClone(t)], { env: DEFAULT_ENVIRONMENT, executor, invariants: [inv] });
    expect(j.failure).toBeNull();
    expect(checks()).toBe(1);
  });

  it('checks a run that differs only in an errno name, and finds its failure', () => {
    expect(failing).toBeDefined();
    const { inv, checks } = counting();
    const t = failing!.allowed[0]!.observations;
    const other: Observation[] = t.map((o) => (o.op === 'connect' && o.error ? { ...o, error: 'EXDEV' } : o));
    const j = judgeRuns(failing!, [t, other], { env: DEFAULT_ENVIRONMENT, executor, invariants: [inv] });
    expect(checks()).toBe(2);
    expect(j.failure?.invariant).toBe('no-exdev');
  });
});
