// The signature of a failure: what makes two failing cases "the same bug", so that a run can keep
// going after its first counterexample and report each distinct finding once, with a hit count.
// It is built from the operation where the observations first left the model and the first kind
// of difference there (result, stream, a storage field, km_socket membership), with the model's
// path there kept beside it; the invariant only for failures of the model itself. Never from
// ids, addresses, ports or the seed, so the same bug found from different cases (or seeds)
// gives the same signature.

import { createHash } from 'node:crypto';
import type { Case, Observation } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import { outcomes, type Trace } from '../model/impl/index.js';
import type { Failure } from './judge.js';
import { firstDifference, followsUpTo } from './observation.js';

export interface Signature {
  /** Short stable id (hex) of `parts`: what baselines and `replay --signature` use. */
  readonly id: string;
  /** The parts, readable: "operation | kind of difference". */
  readonly text: string;
  /** The model's path where this case left the model (not part of the id: one bug shows on many paths). */
  readonly path?: string;
}

/**
 * The first field (in this order) where an observation differs from an allowed one: the kind of
 * difference. Peer and error are one field, the connect's result; errors count by presence.
 */
const KINDS = ['result', 'stream.tlv', 'stream.payload', 'storage', 'storage.hasSetIp', 'storage.original', 'storage.viaWaypoint', 'storage.hasEncoded', 'inSockhash'] as const;

function differingKinds(o: Observation, a: Observation): string[] {
  const same = (x: unknown, y: unknown) => JSON.stringify(x ?? null) === JSON.stringify(y ?? null);
  const present = (v: unknown) => v !== undefined && v !== null;
  const out = new Set<string>();
  if (present(o.error) !== present(a.error) || !same(o.peer, a.peer) || o.op !== a.op) out.add('result');
  if (!same(o.stream?.tlv, a.stream?.tlv)) out.add('stream.tlv');
  if (!same(o.stream?.payloadIntact, a.stream?.payloadIntact)) out.add('stream.payload');
  if (present(o.storage) !== present(a.storage)) out.add('storage');
  else if (o.storage && a.storage) {
    for (const k of ['hasSetIp', 'original', 'viaWaypoint', 'hasEncoded'] as const) if (!same(o.storage[k], a.storage[k])) out.add(`storage.${k}`);
  }
  if (Boolean(o.inSockhash) !== Boolean(a.inSockhash)) out.add('inSockhash');
  return KINDS.filter((k) => out.has(k));
}

/**
 * The model's path of a step: its passes' paths in order ("service-waypoint > failover"), a run of
 * one path written once with its count ("service-waypoint x32"). The whole chain, not its last
 * pass: a bug in a chain's first pass would otherwise be credited to the path its last pass
 * happened to take, and a baseline would take another bug there for a known one.
 */
export function chainPath(t: Trace, step: number): string {
  const passes = t.passes[step] ?? [];
  if (passes.length === 0) return '-';
  const parts: string[] = [];
  for (let i = 0; i < passes.length;) {
    let j = i + 1;
    while (j < passes.length && passes[j]!.path === passes[i]!.path) j++;
    parts.push(j - i > 1 ? `${passes[i]!.path} x${j - i}` : passes[i]!.path);
    i = j;
  }
  return parts.join(' > ');
}

/** The step where an observed trace first leaves every allowed trace (-1: it never does). */
function divergenceStep(observed: readonly Observation[], allowed: readonly Trace[]): number {
  let best = -1;
  for (const t of allowed) {
    const d = firstDifference(observed, t.observations);
    if (d < 0) return -1;
    best = Math.max(best, d);
  }
  return best;
}

/**
 * The model's path and the kind of difference at the divergence step, against the closest allowed
 * outcome there (fewest differing fields; ties broken by name, so the choice does not depend on
 * the order outcomes were enumerated in).
 */
function closest(trace: readonly Observation[], allowed: readonly Trace[], step: number): { path: string; kind: string } {
  const observed = trace[step];
  // The outcomes that follow the run up to the step, as the report's "allowed at step" (divergence):
  // one that left it earlier may match this step by chance ("connect | none"), and a bug's rare
  // cases then got a signature of their own.
  const following = allowed.filter((t) => followsUpTo(trace, t.observations, step));
  let best: { path: string; kinds: string[] } | null = null;
  for (const t of following.length ? following : allowed) {
    const a = t.observations[step];
    if (!a) continue;
    const kinds = observed ? differingKinds(observed, a) : ['missing'];
    const path = chainPath(t, step);
    const better = best === null || kinds.length < best.kinds.length || (kinds.length === best.kinds.length && `${kinds[0]}|${path}` < `${best.kinds[0]}|${best.path}`);
    if (better) best = { path, kinds };
  }
  return best ? { path: best.path, kind: best.kinds[0] ?? 'none' } : { path: '-', kind: 'missing' };
}

export function signatureFromParts(parts: readonly string[]): Signature {
  const text = parts.join(' | ');
  return { id: createHash('sha256').update(text).digest('hex').slice(0, 12), text };
}

/**
 * The signature of a failure of case `c`. An executor's failure is keyed by how it left the
 * model: the operation and the first kind of difference there. Neither the invariant that
 * happened to fire first nor the model's path is part of the key: measured on our mutants, one
 * bug breaks different invariants in different cases (a fabricated address is no-fabricated-peer
 * in one, dns-proxy or executor-matches-model in another) and shows on up to ten paths (an
 * overwritten original on every path that records one), which would report one bug as ten
 * findings. The path is kept beside the key, so a finding lists the paths it was hit on.
 * A failure of the model itself is keyed by the invariant and the model's paths.
 */
export function signatureOf(c: Case, failure: Failure, env: Environment, known?: readonly Trace[]): Signature {
  let allowed: readonly Trace[] = known ?? [];
  if (!known) {
    try {
      allowed = outcomes(c, env);
    } catch {
      allowed = [];
    }
  }
  if (failure.source === 'model') {
    const steps = c.ops.map((_, i) => i).filter((i) => (allowed[0]?.passes[i]?.length ?? 0) > 0);
    const paths = new Set(steps.flatMap((i) => allowed.map((t) => chainPath(t, i))));
    return signatureFromParts([`model breaks ${failure.invariant}`, [...paths].sort().join(',') || '-']);
  }
  const observed = failure.observed ?? [];
  const step = failure.allowedAtStep?.step ?? divergenceStep(observed, allowed);
  // Observations the model allows, yet an invariant broke: only the invariant says what.
  if (step < 0) return signatureFromParts([`${failure.invariant} on allowed observations`]);
  const at = closest(observed, allowed, step);
  return { ...signatureFromParts([c.ops[step]?.op ?? '?', at.kind]), path: at.path };
}
