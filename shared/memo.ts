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
