// The judge passes an executor run identical to a trace of the model's without checking it again
// (properties/judge.ts): the model's trace was held to the same invariants with its pass records,
// and an invariant that does not need them may only use them to check more (model/spec/types.ts).
// This holds every invariant of the spec to that rule on generated cases of every phase, and shows
// that the check catches an invariant that uses the pass records to check less.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Case } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { invariants, SpecRun, type Invariant } from '../../model/spec/index.js';
import { caseArb } from '../../generators/index.js';

const env = DEFAULT_ENVIRONMENT;
const kinds = ['consistent', 'raw'] as const;
const shapes = ['single', 'sequence', 'dns'] as const;
const cases: Case[] = kinds.flatMap((kind) => shapes.flatMap((shape, i) => fc.sample(caseArb({ kind, shape }), { seed: 11 + i, numRuns: 150 })));

/** Where `inv` gives a stronger verdict without a model trace's pass records than with them. */
function checksMoreWithoutPasses(inv: Invariant, list: readonly Case[]): string[] {
  const found: string[] = [];
  for (const c of list) {
    for (const t of outcomes(c, env)) {
      const withPasses = inv.check(
        new SpecRun(
          c,
          env,
          c.ops.map((op, i) => ({ op, observation: t.observations[i]!, passes: t.passes[i] ?? [] })),
        ),
      );
      const without = inv.check(
        new SpecRun(
          c,
          env,
          c.ops.map((op, i) => ({ op, observation: t.observations[i]! })),
        ),
      );
      const rank = { vacuous: 0, holds: 1, violated: 2 } as const;
      if (withPasses.status !== 'violated' && rank[without.status] > rank[withPasses.status]) found.push(`${inv.name}: ${withPasses.status} with passes, ${without.status} without`);
    }
  }
  return found;
}

describe('invariants without needs: passes', () => {
  it('never check more without the pass records than with them', () => {
    const list = invariants.filter((inv) => inv.needs !== 'passes');
    expect(list.length).toBeGreaterThan(5);
    expect(list.flatMap((inv) => checksMoreWithoutPasses(inv, cases))).toEqual([]);
  });

  it('the check flags an invariant that relaxes itself when pass records are present', () => {
    const lax: Invariant = {
      name: 'lax',
      statement: 'Every connect succeeds, unless pass records are at hand.',
      check: (ctx) =>
        ctx.steps.some((s) => s.passes !== undefined)
          ? { status: 'holds' }
          : ctx.steps.some((s) => s.op.op === 'connect' && s.observation.error)
            ? { status: 'violated', detail: 'a connect failed' }
            : { status: 'holds' },
    };
    expect(checksMoreWithoutPasses(lax, cases).length).toBeGreaterThan(0);
  });
});
