// The control-flow layout of a compiled program (jit.ts): which instructions start a `case` of the
// dispatch switch, and which forward jumps become a `break` out of a labelled block instead. Every
// jump through the switch goes back to the loop head, where each of the program's 24 local
// variables gets one more phi input: TurboFan's graph (and its compile time, paid again at every
// deopt) grows with their number. A forward jump that crosses no case boundary is a labelled break,
// plain structured control flow that merges only where the jump lands.

export interface Layout {
  /** 1 where a `case` starts: pc 0, subprogram entries and return points, targets of backward jumps and of jumps that cross a case. */
  readonly entry: Uint8Array;
  /** 1 where a labelled block ends: the target of a local forward jump. */
  readonly label: Uint8Array;
  /** Whether the jump from `pc` to `target` is a labelled break (else it goes through the switch). */
  local(pc: number, target: number): boolean;
}

/** Lays out a program of `n` instructions with these jumps (from, to) and entries that must be cases. */
export function layout(n: number, jumps: readonly (readonly [number, number])[], fixed: Iterable<number>): Layout {
  const entry = new Uint8Array(n + 1);
  for (const pc of fixed) if (pc >= 0 && pc < n) entry[pc] = 1;
  for (const [from, to] of jumps) if (to <= from && to >= 0) entry[to] = 1;
  // before[i] = entries at pcs < i; a jump crosses a case when one starts in (from, to].
  const before = new Int32Array(n + 2);
  const count = () => {
    for (let i = 0; i <= n; i++) before[i + 1] = (before[i] as number) + (entry[i] as number);
  };
  const local = (from: number, to: number) => to > from && to < n && before[to + 1] === before[from + 1];
  // A crossing jump makes its target a case, which may make other jumps cross: repeat until stable.
  for (let changed = true; changed;) {
    changed = false;
    count();
    for (const [from, to] of jumps) {
      if (to > from && to < n && !entry[to] && !local(from, to)) {
        entry[to] = 1;
        changed = true;
      }
    }
  }
  count();
  const label = new Uint8Array(n + 1);
  for (const [from, to] of jumps) if (local(from, to)) label[to] = 1;
  return { entry, label, local };
}
