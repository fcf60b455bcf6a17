// The bench's end-to-end figure on the model: a cold run, then WARM_RUNS warm ones of the same
// cases, of which the median counts (the first warm run may still be optimising code).

import { describe, expect, it } from 'vitest';
import { WARM_RUNS, endToEnd } from '../../cli/bench-e2e.js';

describe('bench: end to end', () => {
  it('reports the median of the warm runs, each of the same cases', async () => {
    const e = await endToEnd('model', 300);
    expect(e.cases).toBeGreaterThanOrEqual(300);
    expect(e.warmCasesPerSecond).toHaveLength(WARM_RUNS);
    for (const x of e.warmCasesPerSecond) expect(x).toBeGreaterThan(0);
    const sorted = [...e.warmCasesPerSecond].sort((a, b) => a - b);
    expect(e.casesPerSecond).toBe(sorted[(WARM_RUNS - 1) / 2]);
    expect(e.bareCasesPerSecond).toBeUndefined();
  }, 60_000);
});
