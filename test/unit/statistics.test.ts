// Statistics merged from the parts of a run (jobs, shards): counts add up class by class, and a
// shard report written before the history classes had their name keeps its counts.

import { describe, expect, it } from 'vitest';
import { Statistics, type StatisticsJson } from '../../properties/statistics.js';

const part = (history: Record<string, number>, key: 'history' | 'storage'): StatisticsJson => ({
  cases: 10,
  dnsCases: 2,
  stateKind: { raw: 4, consistent: 6 },
  family: { inet: 7 },
  policy: {},
  path: {},
  chainLength: {},
  operations: {},
  dns: {},
  [key]: history,
});

describe('Statistics.merge', () => {
  it('sums every class of every part', () => {
    const s = new Statistics();
    s.merge(part({ 'original-kept': 2 }, 'history'));
    s.merge(part({ 'original-kept': 1, 'waypoint-after-original': 3 }, 'history'));
    expect(s.toJSON()).toMatchObject({ cases: 20, dnsCases: 4, stateKind: { consistent: 12, raw: 8 }, family: { inet: 14 }, history: { 'original-kept': 3, 'waypoint-after-original': 3 } });
  });

  it('reads the history counts of an older report under their old key, storage', () => {
    const s = new Statistics();
    s.merge(part({ 'original-kept': 2 }, 'history'));
    s.merge(part({ 'original-kept': 5 }, 'storage'));
    expect(s.toJSON().history).toEqual({ 'original-kept': 7 });
    expect(s.toJSON()).not.toHaveProperty('storage');
  });
});
