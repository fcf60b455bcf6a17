// The V8 tuning of the entry points yields to a value the user gives on node's command line
// (spelt with dashes or underscores) for each of its flags, and to nothing else.

import { describe, expect, it } from 'vitest';
import { DEFAULT_INLINE_BUDGET, flagGiven, INLINE_BUDGET_FLAG, LONG_RUN_CASES, runTuning, TUNING } from '../../shared/v8-tuning.js';

describe('v8 tuning', () => {
  it('tunes the inlining budget', () => {
    expect(TUNING.map(([f]) => f)).toEqual(['--max-inlined-bytecode-size-cumulative']);
  });

  it('applies a flag when the user gave none', () => {
    expect(flagGiven([], INLINE_BUDGET_FLAG)).toBe(false);
    expect(flagGiven(['--max-old-space-size=512', '--enable-source-maps', '--max-inlined-bytecode-size=100'], INLINE_BUDGET_FLAG)).toBe(false);
    // A flag whose name only starts with a tuned one's is another flag.
    expect(flagGiven(['--interrupt-budget-for-feedback-allocation=100'], '--interrupt-budget')).toBe(false);
  });

  it('yields to a value on the command line', () => {
    expect(flagGiven(['--max-inlined-bytecode-size-cumulative=300'], INLINE_BUDGET_FLAG)).toBe(true);
    expect(flagGiven(['--trace-gc', '--max_inlined_bytecode_size_cumulative=50'], INLINE_BUDGET_FLAG)).toBe(true);
    expect(flagGiven(['--interrupt-budget=1000'], '--interrupt-budget')).toBe(true);
    expect(flagGiven(['--interrupt_budget=1000'], '--interrupt-budget')).toBe(true);
  });

  it("gives a long run V8's own inline budget back, unless the user set one", () => {
    expect(runTuning(LONG_RUN_CASES - 1, [])).toBeNull();
    expect(runTuning(LONG_RUN_CASES, [])).toEqual([INLINE_BUDGET_FLAG, DEFAULT_INLINE_BUDGET]);
    expect(runTuning(10 * LONG_RUN_CASES, ['--max_inlined_bytecode_size_cumulative=50'])).toBeNull();
  });
});
