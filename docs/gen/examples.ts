// Finding, for each invariant, a small case that exercises it on the reference model's outcomes,
// deterministically: the hand-written corpus first (cases meant to show the invariant, then the
// rest in order), then, for an invariant none of them exercises, the smallest of a fixed-seed
// sample of generated cases. A case whose outcomes violate the invariant is never used.

import fc from 'fast-check';
import { caseArb } from '../../generators/index.js';
import type { Case } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT, type Environment } from '../../model/environment.js';
import { outcomes, type Trace } from '../../model/impl/index.js';
import type { Invariant, SpecContext, Verdict } from '../../model/spec/index.js';
import { CORPUS } from './corpus.js';

export const EXAMPLE_SEED = 20240601;
export const EXAMPLE_SAMPLES = 300;

export interface Example {
  readonly invariant: string;
  readonly title: string;
  /** Where the case comes from: the hand-written corpus or the generated sample. */
  readonly source: 'corpus' | 'generated';
  readonly case: Case;
  readonly traces: readonly Trace[];
  /** The invariant's verdict on each trace, in order. */
  readonly verdicts: readonly Verdict[];
}

export function contextOf(c: Case, env: Environment, t: Trace): SpecContext {
  return {
    case: c,
    env,
    steps: c.ops.map((op, i) => {
      const observation = t.observations[i];
      if (!observation) throw new Error(`model trace has no observation for operation ${i + 1}`);
      return { op, observation, passes: t.passes[i] ?? [] };
    }),
  };
}

interface Candidate {
  readonly title: string;
  readonly source: Example['source'];
  readonly case: Case;
}

/** Outcomes are computed once per case and shared by every invariant's search. */
class OutcomeCache {
  private readonly byCase = new Map<Case, readonly Trace[] | null>();
  constructor(private readonly env: Environment) {}
  get(c: Case): readonly Trace[] | null {
    if (!this.byCase.has(c)) {
      let traces: readonly Trace[] | null;
      try {
        traces = outcomes(c, this.env);
      } catch {
        // A generated case the model cannot run (too many branches) is no example.
        traces = null;
      }
      this.byCase.set(c, traces);
    }
    return this.byCase.get(c) ?? null;
  }
}

function caseSize(c: Case): number {
  const s = c.state;
  const applied = c.ops.reduce((n, op) => n + (op.op === 'apply' ? 4 : 0), 0);
  return c.ops.length * 2 + s.frontends.length + s.services.length + s.endpoints.length + s.backends.length + applied;
}

let sampled: readonly Candidate[] | null = null;

/** The generated fallback candidates, smallest first (stable sort keeps sample order on ties). */
function generatedCandidates(): readonly Candidate[] {
  if (sampled) return sampled;
  const single = fc.sample(caseArb({ kind: 'consistent', shape: 'single' }), { seed: EXAMPLE_SEED, numRuns: EXAMPLE_SAMPLES });
  const sequence = fc.sample(caseArb({ kind: 'consistent', shape: 'sequence' }), { seed: EXAMPLE_SEED, numRuns: EXAMPLE_SAMPLES / 3 });
  sampled = [...single, ...sequence]
    .map((c, i) => ({ c, i }))
    .sort((a, b) => caseSize(a.c) - caseSize(b.c) || a.i - b.i)
    .map(({ c }) => ({ title: 'A generated case', source: 'generated' as const, case: c }));
  return sampled;
}

function tryCandidate(inv: Invariant, cand: Candidate, cache: OutcomeCache, env: Environment): Example | null {
  const traces = cache.get(cand.case);
  if (!traces || traces.length === 0) return null;
  const verdicts = traces.map((t) => inv.check(contextOf(cand.case, env, t)));
  if (verdicts.some((v) => v.status === 'violated')) return null;
  if (!verdicts.some((v) => v.status === 'holds')) return null;
  return { invariant: inv.name, title: cand.title, source: cand.source, case: cand.case, traces, verdicts };
}

/** One example per invariant, in the invariants' order; null where nothing exercises one. */
export function findExamples(list: readonly Invariant[], env: Environment = DEFAULT_ENVIRONMENT): (Example | null)[] {
  const cache = new OutcomeCache(env);
  return list.map((inv) => {
    const preferred = CORPUS.filter((k) => k.shows.includes(inv.name));
    const rest = CORPUS.filter((k) => !k.shows.includes(inv.name));
    for (const k of [...preferred, ...rest]) {
      const ex = tryCandidate(inv, { title: k.title, source: 'corpus', case: k.case }, cache, env);
      if (ex) return ex;
    }
    for (const cand of generatedCandidates()) {
      const ex = tryCandidate(inv, cand, cache, env);
      if (ex) return ex;
    }
    return null;
  });
}
