// The bench's end-to-end figure on the model: a cold run, untimed runs until the warm-up's cases
// are checked, then WARM_RUNS warm ones of the same cases, of which the median counts.

import { describe, expect, it } from 'vitest';
import { WARM_RUNS, endToEnd } from '../../cli/bench-e2e.js';

describe('bench: end to end', () => {
  it('reports the median of the warm runs, each of the same cases', async () => {
    const e = await endToEnd('model', 300, { warmUp: 1000 });
    expect(e.cases).toBeGreaterThanOrEqual(300);
    // Whole runs after the cold one, until the cold run and they have checked 1,000 cases.
    expect(e.warmUpCases % e.cases).toBe(0);
    expect(e.warmUpCases + e.cases).toBeGreaterThanOrEqual(1000);
    expect(e.warmUpCases).toBeLessThan(1000);
    expect(e.warmCasesPerSecond).toHaveLength(WARM_RUNS);
    for (const x of e.warmCasesPerSecond) expect(x).toBeGreaterThan(0);
    const sorted = [...e.warmCasesPerSecond].sort((a, b) => a - b);
    expect(e.casesPerSecond).toBe(sorted[(WARM_RUNS - 1) / 2]);
    expect(e.bareCasesPerSecond).toBeUndefined();
  }, 60_000);
});
