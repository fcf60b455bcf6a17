// The exhaustive phase's verdict on one case: the reference model's outcome set must equal the
// compiled program's outcome set in the VM over every prandom value (exact sets). An outcome of
// the program that the model does not allow fails executor-matches-model; an outcome of the model
// that no draw of the program gives fails executor-covers-model. Used at every leaf of an
// exploration (explore.ts) and to judge saved exhaustive cases again.

import type { Case, Observation } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import type { Executor } from '../model/executor.js';
import { outcomes } from '../model/impl/index.js';
import { prandomValues } from '../generators/exhaustive/classes.js';
import { formatObservation, socketFamilies } from './format.js';
import { MATCHES_MODEL, type Failure } from './judge.js';
import { divergence, traceKey } from './observation.js';

/** The exact-set relation's other half, named like an invariant so reports treat it alike. */
export const COVERS_MODEL = {
  name: 'executor-covers-model',
  statement:
    'Every outcome the reference model allows for a case is produced by the compiled program for some prandom draw (on the VM: every case of the exhaustive phase, and every sampled case with random draws).',
} as const;

/** What exploration needs of an executor: its optional outcome sets and lazy maps (the VM has both). */
export type ExploringVm = Required<Pick<Executor, 'outcomeSet' | 'lazyMaps'>>;

/** The executor as an ExploringVm when it offers both capabilities, else undefined. */
export function exploringVm(e: Executor | undefined): ExploringVm | undefined {
  if (!e?.outcomeSet || !e.lazyMaps) return undefined;
  return { outcomeSet: e.outcomeSet.bind(e), lazyMaps: e.lazyMaps.bind(e) };
}

/** Runs of the VM per case at most when it enumerates prandom draws. */
export const VM_MAX_RUNS = 20_000;

/** The exact-set verdict of one case: the model's set against the VM's, or null when equal. */
export function compareSets(c: Case, model: readonly { readonly observations: readonly Observation[] }[], vm: readonly { observations: readonly Observation[] }[]): Failure | null {
  const modelKeys = new Set(model.map((t) => traceKey(t.observations)));
  const vmKeys = new Set(vm.map((o) => traceKey(o.observations)));
  const extra = vm.find((o) => !modelKeys.has(traceKey(o.observations)));
  if (extra) {
    const d = divergence(
      extra.observations,
      model.map((t) => t.observations),
    );
    return {
      invariant: MATCHES_MODEL.name,
      statement: MATCHES_MODEL.statement,
      detail: `operation ${d.step + 1}: some prandom draw gives an observation the model does not allow`,
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
      detail: `operation ${d.step + 1}: the model allows ${o ? formatObservation(o, family) : 'an outcome'}, which no prandom draw of the program gives`,
      source: 'executor',
      observed: vm[0]?.observations ?? [],
      allowedAtStep: { step: d.step, allowed: o ? [o] : [] },
    };
  }
  return null;
}

/** Model outcomes and VM outcome set of a concrete case (no lazy maps): the exact-set verdict. */
export function exactVerdict(c: Case, env: Environment, vm: ExploringVm, scope: number): Failure | null {
  return compareSets(c, outcomes(c, env), vm.outcomeSet(c, { prandomDomain: prandomValues(scope), maxRuns: VM_MAX_RUNS }));
}
