// A finding's explanation writes a block of lines repeated three times or more in a row once, then
// how often it repeats: a waypoint chain that comes back to itself runs the same pass up to the
// tail-call limit, which made a 300-line explanation of a few distinct lines.

import { describe, expect, it } from 'vitest';
import { collapseRepeats } from '../../cli/explain.js';

const again = (block: number, more: number) => `(${block} x ${more})`;
const same = (l: string) => l;

describe('explanation: repeated blocks', () => {
  it('writes a repeated block once, after the lines before it and before those after it', () => {
    const pass = ['lookup frontend', 'lookup service', 'tail call'];
    const lines = ['start', 'create storage', ...Array.from({ length: 32 }, () => pass).flat(), 'returns 1'];
    expect(collapseRepeats(lines, same, again)).toEqual(['start', 'create storage', ...pass, '(3 x 31)', 'returns 1']);
  });

  it('leaves a block repeated only twice, and lines that differ, as they are', () => {
    const lines = ['a', 'b', 'a', 'b', 'c', 'd', 'c', 'e'];
    expect(collapseRepeats(lines, same, again)).toEqual(lines);
    expect(collapseRepeats(['x', 'x', 'x'], same, again)).toEqual(['x', '(1 x 2)']);
  });

  it('compares lines by their key: passes that differ only by their number are the same pass', () => {
    const lines = ['pass 1 to A: recorded', ...[2, 3, 4, 5].map((n) => `pass ${n} to B: nothing`)];
    expect(collapseRepeats(lines, (l) => l.replace(/^pass \d+ /, 'pass '), again)).toEqual(['pass 1 to A: recorded', 'pass 2 to B: nothing', '(1 x 3)']);
  });
});
