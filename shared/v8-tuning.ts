// V8 tuning of the checker's own processes. A run calls many small functions a few thousand times
// each, and most of its CPU time in a short run (a 5,000-case check, the first seconds of a long
// one) went to TurboFan compiling them, again and again as types widened, with the default budget
// of callees inlined into each: a tenth of that budget cuts the compile work by a third, so a run
// checks cases sooner, and costs a long run's optimised code little (bench: end to end, model).
// Set by the entry points (bin/kmesh-check.js, the bench's child processes), never by modules a
// user's program may import; a budget the user gives on node's command line wins (node refuses this
// flag in NODE_OPTIONS).

import { setFlagsFromString } from 'node:v8';

/** Bytecode size of all the callees TurboFan inlines into one function (V8's default: 920). */
export const INLINE_BUDGET_FLAG = '--max-inlined-bytecode-size-cumulative';
export const INLINE_BUDGET = 100;

/** Whether node's command line already set the budget (V8 accepts dashes or underscores). */
export function budgetGiven(execArgv: readonly string[]): boolean {
  const name = INLINE_BUDGET_FLAG.slice(2);
  return execArgv.some((a) => a.includes(name) || a.includes(name.replaceAll('-', '_')));
}

/** Applies the tuning to this process (and the worker threads it starts), unless the user set the flag. */
export function tuneV8(): void {
  if (!budgetGiven(process.execArgv)) setFlagsFromString(`${INLINE_BUDGET_FLAG}=${INLINE_BUDGET}`);
}
