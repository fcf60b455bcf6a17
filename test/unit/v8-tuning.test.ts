// The V8 tuning of the entry points yields to a budget the user gives on node's command line
// (spelt with dashes or underscores) and to nothing else.

import { describe, expect, it } from 'vitest';
import { budgetGiven, INLINE_BUDGET_FLAG } from '../../shared/v8-tuning.js';

describe('v8 tuning', () => {
  it('applies its budget when the user gave none', () => {
    expect(budgetGiven([])).toBe(false);
    expect(budgetGiven(['--max-old-space-size=512', '--enable-source-maps', '--max-inlined-bytecode-size=100'])).toBe(false);
  });

  it('yields to a budget on the command line', () => {
    expect(INLINE_BUDGET_FLAG).toBe('--max-inlined-bytecode-size-cumulative');
    expect(budgetGiven(['--max-inlined-bytecode-size-cumulative=300'])).toBe(true);
    expect(budgetGiven(['--trace-gc', '--max_inlined_bytecode_size_cumulative=50'])).toBe(true);
  });
});
