// Text-keyed memo the model and the codecs share: cases reuse a handful of addresses, so each text
// is parsed once. Bounded: a run over many generated addresses starts the memo over instead of
// growing. Memoised values are shared between callers: never mutate them.

export function textMemo<T>(parse: (text: string) => T, limit = 50_000): (text: string) => T {
  const memo = new Map<string, T>();
  return (text: string): T => {
    let v = memo.get(text);
    if (v === undefined) {
      v = parse(text);
      if (memo.size >= limit) memo.clear();
      memo.set(text, v);
    }
    return v;
  };
}

/**
 * A textMemo per first argument (a socket family, say): no `key|text` string is built and hashed
 * per call, as the texts are mostly the same string objects again.
 */
export function keyedTextMemo<K, T>(parse: (key: K, text: string) => T, limit = 50_000): (key: K, text: string) => T {
  const byKey = new Map<K, (text: string) => T>();
  return (key: K, text: string): T => {
    let memo = byKey.get(key);
    if (memo === undefined) byKey.set(key, (memo = textMemo((t) => parse(key, t), limit)));
    return memo(text);
  };
}
