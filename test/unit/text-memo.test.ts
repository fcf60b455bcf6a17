// The text memos of shared/memo.ts: a value is computed once per text (per key and text for
// keyedTextMemo, so texts of different keys never share a value), errors are not memoised, and a
// full memo starts over instead of growing.

import { describe, expect, it } from 'vitest';
import { keyedTextMemo, textMemo } from '../../shared/memo.js';

describe('text memos', () => {
  it('textMemo computes once per text and starts over when full', () => {
    const calls: string[] = [];
    const m = textMemo((t: string) => (calls.push(t), t.length), 2);
    expect([m('a'), m('bb'), m('a')]).toEqual([1, 2, 1]);
    expect(calls).toEqual(['a', 'bb']);
    m('ccc');
    m('a');
    expect(calls).toEqual(['a', 'bb', 'ccc', 'a']);
  });

  it('keyedTextMemo computes once per key and text, keeps keys apart and does not memoise errors', () => {
    const calls: string[] = [];
    const m = keyedTextMemo((k: string, t: string) => {
      calls.push(`${k}/${t}`);
      if (t === 'bad') throw new Error(`bad under ${k}`);
      return `${k}:${t}`;
    });
    expect([m('inet', 'x|y'), m('inet|x', 'y'), m('inet', 'x|y'), m('inet6', 'x|y')]).toEqual(['inet:x|y', 'inet|x:y', 'inet:x|y', 'inet6:x|y']);
    expect(calls).toEqual(['inet/x|y', 'inet|x/y', 'inet6/x|y']);
    expect(() => m('inet', 'bad')).toThrow('bad under inet');
    expect(() => m('inet', 'bad')).toThrow('bad under inet');
    expect(calls.filter((c) => c === 'inet/bad')).toHaveLength(2);
  });
});
