// The exhaustive phase's verdict on one case: the reference model's outcome set must equal the
// compiled program's outcome set in the VM over every prandom value (exact sets). An outcome of
// the program that the model does not allow fails the spec invariant it breaks, else
// executor-matches-model; an outcome of the model that no draw of the program gives fails
// executor-covers-model. Used at every leaf of an
// exploration (explore.ts) and to judge saved exhaustive cases again.

import type { Case, Observation } from '../model/domain.js';
import type { Family } from '../model/address.js';
import type { Environment } from '../model/environment.js';
import type { Executor, ExecutorOutcome } from '../model/executor.js';
import { outcomes } from '../model/impl/index.js';
import { prandomValues } from '../generators/exhaustive/classes.js';
import { formatObservation, socketFamilies } from './format.js';
import { MATCHES_MODEL, executorSpecFailure, type Failure } from './judge.js';
import type { Invariant } from '../model/spec/index.js';
import { divergence, traceKey } from './observation.js';

/** The exact-set relation's other half, named like an invariant so reports treat it alike. */
export const COVERS_MODEL = {
  name: 'executor-covers-model',
  statement:
    'Every outcome the reference model allows for a case is produced by the compiled program for some prandom draw, and no pass of the program draws more than once (one draw per pick, no retry) (on the VM: every case of the exhaustive phase, and every sampled case with random draws).',
} as const;

/**
 * What exploration needs of an executor: its optional outcome sets and lazy maps (the VM has both),
 * and outcome sets a batch at a time where it offers them.
 */
export type ExploringVm = Required<Pick<Executor, 'outcomeSet' | 'lazyMaps'>> & Pick<Executor, 'outcomeSets'>;

/** The executor as an ExploringVm when it offers both capabilities, else undefined. */
export function exploringVm(e: Executor | undefined): ExploringVm | undefined {
  if (!e?.outcomeSet || !e.lazyMaps) return undefined;
  return { outcomeSet: e.outcomeSet.bind(e), lazyMaps: e.lazyMaps.bind(e), ...(e.outcomeSets ? { outcomeSets: e.outcomeSets.bind(e) } : {}) };
}

/** Runs of the VM per case at most when it enumerates prandom draws. */
export const VM_MAX_RUNS = 20_000;

/** The values its prandom choice points answered, in order (helper failures are no draws). */
function prandomDraws(o: ExecutorOutcome): number[] {
  return (o.choices ?? []).filter((x) => x.point === 'prandom').map((x) => x.value);
}

/** How many of the program's outcomes at a step an executor-covers-model finding lists. */
const LISTED_OUTCOMES = 4;

/**
 * What the program gives at operation `step` instead, and by which prandom draws: "peer 10.0.0.1
 * (prandom 0; 2), peer 10.0.0.3 (prandom 1)", so that a pick the program never makes shows.
 */
function programGives(vm: readonly ExecutorOutcome[], step: number, family: Family): string {
  const byText = new Map<string, string[]>();
  for (const o of vm) {
    const at = o.observations[step];
    const text = at ? formatObservation(at, family) : 'nothing';
    const draws = prandomDraws(o).map((v) => (v === 0xffffffff ? '2^32-1' : String(v)));
    const list = byText.get(text) ?? [];
    if (draws.length) list.push(draws.join(', '));
    byText.set(text, list);
  }
  const parts = [...byText].slice(0, LISTED_OUTCOMES).map(([text, draws]) => (draws.length ? `${text} (prandom ${draws.slice(0, 3).join('; ')}${draws.length > 3 ? '; ...' : ''})` : text));
  return parts.join(', ') + (byText.size > LISTED_OUTCOMES ? `, and ${byText.size - LISTED_OUTCOMES} more` : '');
}

/**
 * The spec's invariants to hold an outcome of the program to before calling it a difference from
 * the model (as judgeRuns does with a sampled run), on `concrete()` when the case compared is
 * lazily decided (made only on a difference).
 */
export interface SetSpec {
  readonly env: Environment;
  readonly invariants?: readonly Invariant[];
  readonly concrete?: () => Case;
}

/**
 * The exact-set verdict of one case: the model's set against the VM's, or null when equal and no
 * pass of the program drew twice. A program that draws again after a miss gives the same set of
 * outcomes by other odds: only its draws show it (section 3.7: one draw, no retry). An outcome the
 * model does not allow that breaks an invariant of the spec is reported under that invariant,
 * which names the rule, as the sampled phase reports it.
 */
/** Which of the program's outcomes leave the model: all of them, when none drew, said without draws. */
function outcomesLeaving(vm: readonly ExecutorOutcome[], modelKeys: ReadonlySet<string>): string {
  if (vm.some((o) => modelKeys.has(traceKey(o.observations)))) return 'some prandom draw gives';
  return vm.some((o) => prandomDraws(o).length > 0) ? 'every prandom draw tried gives' : 'the program, which draws nothing here, gives';
}

export function compareSets(c: Case, model: readonly { readonly observations: readonly Observation[] }[], vm: readonly ExecutorOutcome[], spec?: SetSpec): Failure | null {
  const modelKeys = new Set(model.map((t) => traceKey(t.observations)));
  const vmKeys = new Set(vm.map((o) => traceKey(o.observations)));
  const extra = vm.find((o) => !modelKeys.has(traceKey(o.observations)));
  if (extra) {
    const d = divergence(
      extra.observations,
      model.map((t) => t.observations),
    );
    const named = spec ? executorSpecFailure(spec.concrete?.() ?? c, extra.observations, spec) : null;
    const draws = prandomDraws(extra);
    if (named) return { ...named, detail: draws.length ? `${named.detail} (prandom ${draws.join(', ')})` : named.detail, allowedAtStep: d };
    return {
      invariant: MATCHES_MODEL.name,
      statement: MATCHES_MODEL.statement,
      // A case whose every draw leaves the model (a group of one endpoint, say) is no case of luck;
      // one whose runs drew nothing is no case of draws at all.
      detail: `operation ${d.step + 1}: ${outcomesLeaving(vm, modelKeys)} an observation the model does not allow`,
      source: 'executor',
      observed: extra.observations,
      allowedAtStep: d,
    };
  }
  const missing = model.find((t) => !vmKeys.has(traceKey(t.observations)));
  if (missing) {
    const families = socketFamilies(c.ops);
    const d = divergence(
      missing.observations,
      vm.map((o) => o.observations),
    );
    const op = c.ops[d.step];
    const family = op && op.op !== 'apply' ? (families.get(op.sock) ?? 'inet') : 'inet';
    const o = missing.observations[d.step];
    return {
      invariant: COVERS_MODEL.name,
      statement: COVERS_MODEL.statement,
      detail: `operation ${d.step + 1}: the model allows ${o ? formatObservation(o, family) : 'an outcome'}, which no prandom draw tried gives (those of every pick by prandom % count and by multiply-shift); it gives ${programGives(vm, d.step, family)}`,
      source: 'executor',
      observed: vm[0]?.observations ?? [],
      allowedAtStep: { step: d.step, allowed: o ? [o] : [] },
    };
  }
  const redraw = vm.find((o) => (o.mostDrawsInAPass ?? 0) > 1);
  if (redraw) {
    const draws = prandomDraws(redraw);
    return {
      invariant: COVERS_MODEL.name,
      statement: COVERS_MODEL.statement,
      // A program run is one pass as the VM counts it: two draws there are a retry, or two passes
      // run inline in one program run (not tail calls), each with its pick.
      detail: `one run of the connect program draws prandom ${redraw.mostDrawsInAPass} times (the run's draws: ${draws.slice(0, 6).join(', ')}${draws.length > 6 ? ', ...' : ''}): one draw per pick, no retry (section 3.7), and one pass per program run (each further pass is a tail call, section 3.9)`,
      source: 'executor',
      observed: redraw.observations,
    };
  }
  return null;
}

/** Model outcomes and VM outcome set of a concrete case (no lazy maps): the exact-set verdict. */
export function exactVerdict(c: Case, env: Environment, vm: ExploringVm, scope: number, invariants?: readonly Invariant[]): Failure | null {
  return compareSets(c, outcomes(c, env), vm.outcomeSet(c, { prandomDomain: prandomValues(scope), maxRuns: VM_MAX_RUNS }), { env, ...(invariants ? { invariants } : {}) });
}
