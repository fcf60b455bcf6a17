// What a run counts while it judges cases: cases, statistics, per-invariant counts and the failing
// cases clustered by signature. Parts of a run (jobs) tally apart and merge into one; the result
// is the same as one tally over every case because everything sums and each cluster keeps the
// first hit in run order (phase, then index in the phase's case stream).

import type { Judgement } from './judge.js';
import type { Signature } from './signature.js';
import { Statistics, type StatisticsJson } from './statistics.js';

/** Distinct signatures a tally keeps at most; failing cases of later ones only count. */
export const MAX_CLUSTERS = 1000;

export interface InvariantCount {
  readonly name: string;
  readonly statement: string;
  checked: number;
  failed: number;
}

/** Where a generated case is: its phase, the phase's seed and the case's path, and its run order. */
export interface HitAt {
  readonly phase: string;
  readonly seed: number;
  /** fast-check path of the generated case (its index in the phase's stream). */
  readonly path: string;
  /** Run order: the phase's ordinal, then the index. */
  readonly order: readonly [number, number];
}

/** A failing case found while generating: the first of its signature. */
export interface Cluster extends HitAt {
  readonly signature: Signature;
  hits: number;
  /** Model paths the hits left the model on. */
  readonly paths: Record<string, number>;
  /** The invariants the hits broke (each hit its first), with how many hits each: one signature may gather several. */
  readonly invariants: Record<string, number>;
  /**
   * The first hit on a control-plane-consistent case (perhaps the first hit itself): the case to
   * shrink, so that a bug that breaks consistent states is not shown as a robustness finding
   * because a raw case hit it first.
   */
  consistent?: HitAt;
}

/** The hit to shrink: the first on a consistent case, else the first. */
export function representative(c: Cluster): HitAt {
  return c.consistent ?? c;
}

export interface TallyJson {
  readonly cases: number;
  readonly statistics: StatisticsJson;
  readonly invariants: readonly InvariantCount[];
  readonly clusters: readonly Cluster[];
  readonly overflow: number;
}

/** Two tallies of model paths (hits per path) added into a new one. */
export function addPaths(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out = { ...a };
  for (const [p, n] of Object.entries(b)) out[p] = (out[p] ?? 0) + n;
  return out;
}

const before = (a: HitAt, b: HitAt) => a.order[0] - b.order[0] || a.order[1] - b.order[1];

/** The earlier of two optional hits. */
const earlier = (a: HitAt | undefined, b: HitAt | undefined): HitAt | undefined => (!a ? b : !b ? a : before(a, b) <= 0 ? a : b);

export class Tally {
  cases = 0;
  readonly statistics = new Statistics();
  readonly invariants: InvariantCount[];
  private readonly byName: Map<string, InvariantCount>;
  private clusters = new Map<string, Cluster>();
  /** Failing cases whose signature is not kept. */
  overflow = 0;

  constructor(
    invariants: InvariantCount[],
    private readonly onCase?: (done: number, phase: string) => void,
  ) {
    this.invariants = invariants;
    this.byName = new Map(invariants.map((r) => [r.name, r]));
  }

  /** Counts one judged case: `order` is the phase's ordinal, `index` its index in the phase. */
  record(j: Judgement, phase: string, order: number, seed: number, index: number): void {
    this.cases++;
    this.statistics.add(j.traits, phase.endsWith('/dns'));
    for (const name of j.exercised) {
      const row = this.byName.get(name);
      if (row) row.checked++;
    }
    if (j.failure) {
      const row = this.byName.get(j.failure.invariant);
      if (row) row.failed++;
    }
    if (j.signature) {
      const cl = this.clusters.get(j.signature.id);
      const where = j.signature.path ?? '-';
      const at: HitAt = { phase, seed, path: String(index), order: [order, index] };
      const consistent = j.traits.kind === 'consistent';
      const broke = j.failure?.invariant ?? '';
      if (cl) {
        cl.hits++;
        cl.paths[where] = (cl.paths[where] ?? 0) + 1;
        cl.invariants[broke] = (cl.invariants[broke] ?? 0) + 1;
        if (consistent && !cl.consistent) cl.consistent = at;
      } else if (this.clusters.size < MAX_CLUSTERS) {
        this.clusters.set(j.signature.id, { signature: j.signature, ...at, hits: 1, paths: { [where]: 1 }, invariants: { [broke]: 1 }, ...(consistent ? { consistent: at } : {}) });
      } else this.overflow++;
    }
    this.onCase?.(this.cases, phase);
  }

  /** Distinct signatures found so far. */
  get findings(): number {
    return this.clusters.size;
  }

  toJSON(): TallyJson {
    return { cases: this.cases, statistics: this.statistics.toJSON(), invariants: this.invariants, clusters: [...this.clusters.values()], overflow: this.overflow };
  }

  /** Adds another part's tally: sums, and per signature the earlier first hit. */
  merge(o: TallyJson): void {
    this.cases += o.cases;
    this.statistics.merge(o.statistics);
    this.overflow += o.overflow;
    for (const r of o.invariants) {
      const row = this.byName.get(r.name);
      if (row) {
        row.checked += r.checked;
        row.failed += r.failed;
      }
    }
    for (const c of o.clusters) {
      const had = this.clusters.get(c.signature.id);
      if (!had) {
        this.clusters.set(c.signature.id, { ...c, paths: { ...c.paths }, invariants: { ...c.invariants } });
        continue;
      }
      const first = before(c, had) < 0 ? c : had;
      const consistent = earlier(had.consistent, c.consistent);
      this.clusters.set(c.signature.id, {
        ...first,
        hits: had.hits + c.hits,
        paths: addPaths(had.paths, c.paths),
        invariants: addPaths(had.invariants, c.invariants),
        ...(consistent ? { consistent } : {}),
      });
    }
    this.clusters = new Map([...this.clusters.entries()].sort((a, b) => before(a[1], b[1])));
    // Parts that each kept MAX_CLUSTERS may together hold more: the later ones only count.
    for (const c of [...this.clusters.values()].slice(MAX_CLUSTERS)) {
      this.clusters.delete(c.signature.id);
      this.overflow += c.hits;
    }
  }

  /** The first `max` clusters in run order; the failing cases of the others count as overflow. */
  kept(max: number): { clusters: Cluster[]; overflow: number } {
    const all = [...this.clusters.values()];
    return { clusters: all.slice(0, max), overflow: this.overflow + all.slice(max).reduce((n, c) => n + c.hits, 0) };
  }
}
