// The run's tally (properties/tally.ts): a finding's representative is its first hit on a
// consistent case when one hit it, in one tally and across the parts of a run (jobs) merged.

import { describe, expect, it } from 'vitest';
import { representative, Tally } from '../../properties/tally.js';
import type { Judgement } from '../../properties/judge.js';
import type { Case } from '../../model/domain.js';

function failing(kind: Case['kind'], id = 'abc', invariant = 'no-fabricated-peer'): Judgement {
  const none = new Set<string>();
  const traits = { kind, families: none, policies: none, paths: none, maxPasses: 1, randomDraws: 0, operations: 2, dns: none, history: none };
  const failure = { invariant, statement: '', detail: '', source: 'executor' as const };
  return { failure, exercised: new Set(['no-fabricated-peer']), traits, signature: { id, text: 'connect | result', path: 'random' } } as unknown as Judgement;
}

const rows = () => [{ name: 'no-fabricated-peer', statement: '', checked: 0, failed: 0 }];

describe('a finding hit first on a raw case, then on a consistent one', () => {
  it('is shrunk from the consistent hit; one hit first on a consistent case from that one', () => {
    const t = new Tally(rows());
    t.record(failing('raw'), 'raw/single', 1, 7, 3);
    t.record(failing('consistent'), 'consistent/sequence', 2, 8, 5);
    t.record(failing('consistent'), 'consistent/sequence', 2, 8, 9);
    const [cl] = t.kept(10).clusters;
    expect(cl!.phase).toBe('raw/single');
    expect(cl!.hits).toBe(3);
    expect(representative(cl!)).toMatchObject({ phase: 'consistent/sequence', seed: 8, path: '5' });
    const only = new Tally(rows());
    only.record(failing('raw', 'def'), 'raw/single', 1, 7, 3);
    expect(representative(only.kept(10).clusters[0]!)).toMatchObject({ phase: 'raw/single', path: '3' });
  });

  it('keeps the earliest consistent hit of the parts it merges, whichever part had it', () => {
    const a = new Tally(rows());
    a.record(failing('raw'), 'raw/single', 1, 7, 3);
    a.record(failing('consistent'), 'consistent/sequence', 2, 8, 40);
    const b = new Tally(rows());
    b.record(failing('consistent'), 'consistent/sequence', 2, 8, 12);
    const merged = new Tally(rows());
    merged.merge(b.toJSON());
    merged.merge(a.toJSON());
    const [cl] = merged.kept(10).clusters;
    expect(cl!.phase).toBe('raw/single');
    expect(representative(cl!)).toMatchObject({ phase: 'consistent/sequence', path: '12' });
    expect(cl!.hits).toBe(3);
  });
});

describe("the invariants a signature's cases broke", () => {
  it('are counted per cluster and summed when parts merge', () => {
    const a = new Tally(rows());
    a.record(failing('raw'), 'raw/single', 1, 7, 3);
    a.record(failing('raw', 'abc', 'via-waypoint-sticky'), 'raw/single', 1, 7, 4);
    expect(a.kept(10).clusters[0]!.invariants).toEqual({ 'no-fabricated-peer': 1, 'via-waypoint-sticky': 1 });
    const b = new Tally(rows());
    b.record(failing('consistent', 'abc', 'via-waypoint-sticky'), 'consistent/sequence', 2, 8, 1);
    const merged = new Tally(rows());
    merged.merge(a.toJSON());
    merged.merge(b.toJSON());
    expect(merged.kept(10).clusters[0]!.invariants).toEqual({ 'no-fabricated-peer': 1, 'via-waypoint-sticky': 2 });
  });
});
