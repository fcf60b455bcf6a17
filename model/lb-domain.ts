// The prandom values worth trying for a case: one per distinct load-balancing pick. A model
// concept (which endpoint indices a service's priority groups can yield), used by the VM's
// exhaustive runs and the docs' examples to keep the set of random answers small and exact.

/** Shape of a map state, as far as the default prandom domain needs it. */
interface LbState {
  readonly services: readonly { readonly id: number; readonly endpointCounts: readonly number[] }[];
  readonly endpoints: readonly { readonly serviceId: number; readonly prio: number; readonly index: number }[];
}

/**
 * The prandom values that give every distinct load-balancing pick of a case, for data paths that
 * pick `index = prandom % count + 1` (kmesh-dataplane.md 3.7). For each service and priority
 * group with count c, the indices that matter are the endpoint indices present in 1..c and one
 * absent index in 1..c (all absent ones fail alike); index i comes from the value i - 1 < c. The
 * union of those values serves every draw (a value meant for another group still lands on some
 * index of this one), so the outcome set is exact and the domain stays small for raw states too.
 */
export function lbDomain(c: { readonly state: LbState; readonly ops: readonly unknown[] }): number[] {
  const states: LbState[] = [c.state];
  for (const op of c.ops) {
    const o = op as { op?: string; state?: LbState };
    if (o.op === 'apply' && o.state) states.push(o.state);
  }
  const values = new Set<number>([0]);
  for (const s of states) {
    const present = new Map<string, Set<number>>();
    for (const e of s.endpoints) {
      const key = `${e.serviceId}/${e.prio}`;
      let set = present.get(key);
      if (!set) present.set(key, (set = new Set<number>()));
      set.add(e.index >>> 0);
    }
    for (const svc of s.services) {
      svc.endpointCounts.forEach((raw, prio) => {
        const count = raw >>> 0;
        if (count === 0) return;
        const have = present.get(`${svc.id}/${prio}`) ?? new Set<number>();
        for (const i of have) if (i >= 1 && i <= count) values.add(i - 1);
        for (let i = 1; i <= count; i++) {
          if (!have.has(i)) {
            values.add(i - 1);
            break;
          }
        }
      });
    }
  }
  return [...values].sort((a, b) => a - b);
}

/**
 * The draw in the middle of the range a multiply-shift pick (index = prandom * count >> 32, the
 * other common uniform pick) maps to 0-based index `i` of `count`: any rounding of that pick
 * agrees there.
 */
export function spreadDraw(i: number, count: number): number {
  return Math.floor(((2 * i + 1) * 2 ** 32) / (2 * count));
}

/**
 * lbDomain and, for every endpoint index it names, the draw that gives that index under a
 * multiply-shift pick, and the largest u32. Before the checker says that no draw of a program
 * gives an outcome, it tries these too: a program that picks uniformly but not by `%` then gives
 * every endpoint, and is judged on what it picks, not on how.
 */
export function lbSpreadDomain(c: { readonly state: LbState; readonly ops: readonly unknown[] }): number[] {
  const values = new Set<number>([...lbDomain(c), 0xffffffff]);
  const states: LbState[] = [c.state];
  for (const op of c.ops) {
    const o = op as { op?: string; state?: LbState };
    if (o.op === 'apply' && o.state) states.push(o.state);
  }
  for (const s of states) {
    for (const e of s.endpoints) {
      const count = s.services.find((v) => v.id === e.serviceId)?.endpointCounts[e.prio] ?? 0;
      const index = e.index >>> 0;
      if (index >= 1 && index <= count >>> 0) values.add(spreadDraw(index - 1, count >>> 0));
    }
  }
  return [...values].sort((a, b) => a - b);
}
