// What the VM's outcome-set exploration learns about the passes of a tail-call chain, so that it
// need not replay a chain to find out again. A pass that starts at a tail call is a function of the
// state it starts from (the executor's tail-call key, which holds everything that decides what
// follows, without the tail-call count: programs cannot read it, and the count only decides whether
// the next tail call succeeds) and of the prandom values it draws. Once a pass from state Q with
// draws D was seen to tail-call into state T, another run that would draw D from Q at count c
// reaches T at count c + 1; if that node was already reached, the run would be pruned there
// (bpf/runner/choices.ts, Pruned), so the alternative can be skipped without running it; the same
// for a pass that ends at the connect program's exit, itself a node (bpf/vm/executor.ts). A waypoint
// loop (a chain that comes back to the same state until the tail-call limit) then costs a few runs
// per draw value instead of one replay of the whole chain per pass and value.

import type { ChoiceSource, FailurePoint } from '../runner/choices.js';
import { MAX_TAIL_CALL_CNT } from './program.js';

interface DrawContext {
  /** The state the pass started from (the number of its tail-call key, without the count). */
  readonly from: number;
  /** The tail-call count during the pass. */
  readonly count: number;
  /** Values drawn earlier in the same pass. */
  readonly before: readonly number[];
}

export class PassMemo {
  /** Per choice position of the current run: where its draw happened, if in a pass that a tail call started. */
  private contexts: (DrawContext | null)[] = [];
  private from: number | null = null;
  private count = 0;
  private draws: number[] = [];
  /** `from#draws` of a pass to where it ended: the state its tail call entered (without the count), or the program's exit node. */
  private readonly transitions = new Map<string, { readonly tail: number } | { readonly exit: string }>();

  constructor(
    /** The machine's tail-call count now. */
    private readonly tailCalls: () => number,
    /** Whether a node (a tail-call state's number with its count, `state|count`, or an exit node) was reached already in this exploration. */
    private readonly reached: (node: string) => boolean,
  ) {}

  /** The choice source of one run: draws are recorded with their context (runs never branch on helper failures here). */
  wrap(inner: ChoiceSource): ChoiceSource {
    this.contexts = [];
    this.from = null;
    return {
      prandom: () => {
        const inPass = this.from !== null && this.tailCalls() === this.count;
        this.contexts.push(inPass ? { from: this.from as number, count: this.count, before: [...this.draws] } : null);
        const v = inner.prandom();
        if (inPass) this.draws.push(v >>> 0);
        return v;
      },
      fail: (point: FailurePoint) => inner.fail(point),
      ...(inner.trail ? { trail: () => (inner.trail as () => string)() } : {}),
    };
  }

  /** At a tail call into `state` (its number; the count already raised): learns the pass that ended here, then starts the next. */
  tailCall(state: number): void {
    const now = this.tailCalls();
    if (this.from !== null && now - 1 === this.count) this.transitions.set(`${this.from}#${this.draws.join(',')}`, { tail: state });
    this.from = state;
    this.count = now;
    this.draws = [];
  }

  /**
   * At the exit node of a program (a connect's verdict): learns the pass that ended there, unless
   * its count is the limit (a tail call it tried may have failed for that alone; below the limit,
   * a pass that exits does so at any count).
   */
  exit(node: string): void {
    if (this.from !== null && this.tailCalls() === this.count && this.count < MAX_TAIL_CALL_CNT) this.transitions.set(`${this.from}#${this.draws.join(',')}`, { exit: node });
    this.from = null;
  }

  /** Whether drawing `value` at choice `position` of the last run leads, by a learnt pass, to a node already reached. */
  redundant(position: number, value: number): boolean {
    const c = this.contexts[position];
    if (!c) return false;
    const next = this.transitions.get(`${c.from}#${[...c.before, value >>> 0].join(',')}`);
    if (next === undefined) return false;
    return this.reached('tail' in next ? `${next.tail}|${c.count + 1}` : next.exit);
  }
}
