// The list copies of model/records.ts that control ops and raw mutations build states with: each
// returns a new array of the input's length with only the named change, and leaves the input alone.

import { describe, expect, it } from 'vitest';
import { mapEntries, numberList, numbersWith, replaceAt, zeros } from '../../model/records.js';

describe('record list copies', () => {
  it('replaceAt replaces one entry in a copy, and copies unchanged when the index is out of range', () => {
    const a = { n: 1 };
    const b = { n: 2 };
    const c = { n: 3 };
    const xs = [a, b];
    const out = replaceAt(xs, 1, c);
    expect(out).toEqual([a, c]);
    expect(out[0]).toBe(a);
    expect(xs).toEqual([a, b]);
    for (const i of [-1, 2, 7]) {
      const same = replaceAt(xs, i, c);
      expect(same).not.toBe(xs);
      expect(same).toEqual(xs);
    }
  });

  it('mapEntries maps every entry into a new list of the same length', () => {
    const xs = [{ n: 1 }, { n: 2 }, { n: 3 }];
    const out = mapEntries(xs, (x) => (x.n === 2 ? { n: 20 } : x));
    expect(out).toEqual([{ n: 1 }, { n: 20 }, { n: 3 }]);
    expect(out[0]).toBe(xs[0]);
    expect(xs[1]).toEqual({ n: 2 });
    expect(mapEntries([] as { n: number }[], (x) => x)).toEqual([]);
  });

  it('numbersWith sets one number in a copy, u32 values included', () => {
    const counts = [0, 1, 2];
    expect(numbersWith(counts, 2, 0xffffffff)).toEqual([0, 1, 0xffffffff]);
    expect(numbersWith(counts, 3, 9)).toEqual([0, 1, 2]);
    expect(counts).toEqual([0, 1, 2]);
  });

  it('zeros and numberList make fresh arrays of the exact length', () => {
    expect(zeros(0)).toEqual([]);
    const z = zeros(7);
    expect(z).toEqual([0, 0, 0, 0, 0, 0, 0]);
    z[0] = 5;
    expect(zeros(7)[0]).toBe(0);
    const xs = [3, 0xfffffffe, 0];
    const copy = numberList(xs);
    expect(copy).toEqual(xs);
    expect(copy).not.toBe(xs);
    expect(Object.keys(numberList(new Array<number>(2).fill(4)))).toEqual(['0', '1']);
  });
});
