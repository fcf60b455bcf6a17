// judgeRuns on a case the executor ran several times (random load balancing): a run deeply equal
// to an earlier one, or to a trace of the model's (held to the same invariants already), is not
// checked again, while a run that differs in anything, even only in an errno name that trace
// matching ignores, is checked.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { judgeModel, judgeRuns } from '../../properties/judge.js';
import { caseArb } from '../../generators/index.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import type { Executor } from '../../model/executor.js';
import type { Observation } from '../../model/domain.js';
import type { Invariant } from '../../model/spec/index.js';
import { be, connectCase, ep, fe, state, svc } from '../helpers/kernel.js';

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
  const { inv, checks } = counting();
  const opts = { env: DEFAULT_ENVIRONMENT, executor, invariants: [inv] };
  const parts = cases.map((c) => judgeModel(c, opts)).filter((p) => p.judgement === null);
  const failing = parts.find((p) => p.allowedObservations[0]!.some((o) => o.op === 'connect' && o.error));
  /** The failing part's first model trace with every connect errno renamed. */
  const renamed = (errno: string): Observation[] => failing!.allowedObservations[0]!.map((o) => (o.op === 'connect' && o.error ? { ...o, error: errno } : o));

  it('does not check runs identical to a trace of the model again', () => {
    const p = parts[0]!;
    const t = p.allowedObservations[0]!;
    const before = checks();
    const j = judgeRuns(p, [t, structuredClone(t), structuredClone(t)], opts);
    expect(j.failure).toBeNull();
    expect(checks()).toBe(before);
  });

  it('checks a run deeply equal to an earlier one only once', () => {
    expect(failing).toBeDefined();
    const other = renamed('EHOSTUNREACH');
    const before = checks();
    const j = judgeRuns(failing!, [other, structuredClone(other), structuredClone(other)], opts);
    expect(j.failure).toBeNull();
    expect(checks()).toBe(before + 1);
  });

  it('checks a run that differs only in an errno name, and finds its failure', () => {
    const t = failing!.allowedObservations[0]!;
    const before = checks();
    const j = judgeRuns(failing!, [t, renamed('EXDEV')], opts);
    expect(checks()).toBe(before + 1);
    expect(j.failure?.invariant).toBe('no-exdev');
  });
});

describe('runs per case on an executor', () => {
  const opts = { env: DEFAULT_ENVIRONMENT, executor };
  const vip = { addr: '10.0.1.1', port: 80 };
  const withPolicy = (policy: number, counts: number[]) =>
    connectCase(
      state({ frontends: [fe('10.0.1.1', 1)], services: [svc(1, { policy, counts })], endpoints: [ep(1, 0, 1, 21), ep(1, 0, 2, 22)], backends: [be(21, '10.0.2.1', [1]), be(22, '10.0.2.2', [1])] }),
      'inet',
      vip,
    );

  it('are repeatsWhenRandom where the model draws or meets an unknown LB policy (a program misreading it draws), else one', () => {
    // Random over two endpoints: the model draws.
    expect(judgeModel(withPolicy(0, [2]), opts).repeats).toBe(3);
    // One endpoint: nothing to draw.
    expect(judgeModel(withPolicy(0, [1]), opts).repeats).toBe(1);
    // Policy 257 (low byte 1, strict): the model fails the pass without a draw; a program reading the low byte draws.
    const unknown = judgeModel(withPolicy(257, [2]), opts);
    expect(unknown.traits.randomDraws).toBe(0);
    expect(unknown.traits.paths.has('unknown-policy')).toBe(true);
    expect(unknown.repeats).toBe(3);
    expect(judgeModel(withPolicy(257, [2]), { ...opts, repeatsWhenRandom: 5 }).repeats).toBe(5);
  });

  it('are one on an executor whose runs of a case draw alike (the VM)', () => {
    const alike = { ...opts, executor: { ...executor, sameDrawsEachRun: true } as Executor };
    expect(judgeModel(withPolicy(0, [2]), alike).traits.randomDraws).toBeGreaterThan(0);
    expect(judgeModel(withPolicy(0, [2]), alike).repeats).toBe(1);
    expect(judgeModel(withPolicy(257, [2]), alike).repeats).toBe(1);
  });
});
