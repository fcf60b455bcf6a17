// Statistics of the generated cases and the coverage requirements a run must meet: a run that
// exercised a class that matters (each LB policy, each socket family, each path of the
// document's section 3) too rarely has not checked it, and says so by failing.

import type { CaseTraits } from './traits.js';
import { DNS_CLASSES } from './dns-traits.js';
import { HISTORY_CLASS_FACTOR, HISTORY_CLASSES } from './history-traits.js';

type Counter = Record<string, number>;

function bump(c: Counter, key: string): void {
  c[key] = (c[key] ?? 0) + 1;
}

export interface StatisticsJson {
  readonly cases: number;
  /** Cases of the DNS phase (section 6); the other classes are required of the rest. */
  readonly dnsCases?: number;
  readonly stateKind: Counter;
  readonly family: Counter;
  readonly policy: Counter;
  readonly path: Counter;
  readonly chainLength: Counter;
  readonly operations: Counter;
  readonly dns: Counter;
  readonly history?: Counter;
  /** The history counts of a report written before they were named so (read, never written). */
  readonly storage?: Counter;
}

export class Statistics {
  cases = 0;
  dnsCases = 0;
  readonly stateKind: Counter = {};
  readonly family: Counter = {};
  readonly policy: Counter = {};
  readonly path: Counter = {};
  readonly chainLength: Counter = {};
  readonly operations: Counter = {};
  readonly dns: Counter = {};
  readonly history: Counter = {};

  /** Each class is counted once per case that has it. */
  add(t: CaseTraits, dnsPhase = false): void {
    this.cases++;
    if (dnsPhase) this.dnsCases++;
    bump(this.stateKind, t.kind);
    for (const f of t.families) bump(this.family, f);
    for (const p of t.policies) bump(this.policy, p);
    for (const p of t.paths) bump(this.path, p);
    bump(this.chainLength, t.maxPasses >= 5 ? '5+' : String(t.maxPasses));
    bump(this.operations, t.operations >= 8 ? '8+' : String(t.operations));
    for (const d of t.dns) bump(this.dns, d);
    for (const d of t.history) bump(this.history, d);
  }

  merge(o: StatisticsJson): void {
    this.cases += o.cases;
    this.dnsCases += o.dnsCases ?? 0;
    for (const key of ['stateKind', 'family', 'policy', 'path', 'chainLength', 'operations', 'dns', 'history'] as const) {
      // Reports written before a class existed lack it; those written before the history classes
      // were named so counted them under `storage`.
      const counts = key === 'history' ? (o.history ?? o.storage) : o[key];
      for (const [k, v] of Object.entries(counts ?? {})) this[key][k] = (this[key][k] ?? 0) + v;
    }
  }

  /** Classes in name order: the same counts give the same text however they were summed (jobs, shards). */
  toJSON(): StatisticsJson {
    const { cases, dnsCases } = this;
    const sorted = (c: Counter): Counter => Object.fromEntries(Object.entries(c).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return {
      cases,
      dnsCases,
      stateKind: sorted(this.stateKind),
      family: sorted(this.family),
      policy: sorted(this.policy),
      path: sorted(this.path),
      chainLength: sorted(this.chainLength),
      operations: sorted(this.operations),
      dns: sorted(this.dns),
      history: sorted(this.history),
    };
  }
}

export interface CoverageRequirement {
  readonly class: string;
  readonly required: number;
  readonly seen: number;
  readonly ok: boolean;
  /** Why the class could not be reached (set when targeted generation gave up). */
  readonly why?: string;
}

export interface CoverageReport {
  readonly ok: boolean;
  /** Cases added by targeted generation toward under-covered classes (0: none needed). */
  readonly targeted?: number;
  readonly requirements: CoverageRequirement[];
  /** Model-path classes not required of this run, as it has findings (the path a finding stops is not owed). */
  readonly pathsWaived?: number;
}

/** DNS classes are required in this many times `fraction` of the DNS phase's cases. */
export const DNS_CLASS_FACTOR = 5;

/** The classes that matter besides the paths (which the caller takes from the model). */
export const REQUIRED_CLASSES: Readonly<Record<'family' | 'policy' | 'dns' | 'history', readonly string[]>> = {
  family: ['inet', 'inet6', 'inet6-v4mapped'],
  policy: ['random', 'strict', 'failover'],
  dns: DNS_CLASSES,
  history: HISTORY_CLASSES,
};

/** The share of a run's cases each required class must be seen in. */
export const COVERAGE_FRACTION = 0.002;

/** Every required class, as "family:inet", "policy:random", "history:...", "path:...", and "dns:..." when the DNS phase runs. */
export function requiredClasses(paths: readonly string[], dns = false): string[] {
  return [
    ...REQUIRED_CLASSES.family.map((n) => `family:${n}`),
    ...REQUIRED_CLASSES.policy.map((n) => `policy:${n}`),
    ...REQUIRED_CLASSES.history.map((n) => `history:${n}`),
    ...paths.map((n) => `path:${n}`),
    ...(dns ? REQUIRED_CLASSES.dns.map((n) => `dns:${n}`) : []),
  ];
}

/** Cases that had a class so far. */
export function seenOf(stats: Statistics, cls: string): number {
  const [prefix, name] = cls.split(':') as [string, string];
  return counterOf(stats, prefix)[name] ?? 0;
}

/** The counter of a kind of class ("family", "policy", "dns", "history"; anything else: paths). */
function counterOf(stats: Statistics, prefix: string): Counter {
  return prefix === 'family' ? stats.family : prefix === 'policy' ? stats.policy : prefix === 'dns' ? stats.dns : prefix === 'history' ? stats.history : stats.path;
}

/**
 * The share of a run's cases a class of kind `prefix` must be seen in, unrounded: DNS classes
 * count the DNS phase's cases (at `fraction` x DNS_CLASS_FACTOR: each is a large part of that
 * phase), the others the connect phases' (history classes at `fraction` x HISTORY_CLASS_FACTOR).
 */
function classShare(stats: Statistics, prefix: string, fraction: number): number {
  if (prefix === 'dns') return stats.dnsCases * fraction * DNS_CLASS_FACTOR;
  return (stats.cases - stats.dnsCases) * fraction * (prefix === 'history' ? HISTORY_CLASS_FACTOR : 1);
}

/**
 * How many cases a class should be seen in for coverageOf to accept it, rounded up, so that shards
 * that each reach it also reach it summed by merge.
 */
export function classAim(stats: Statistics, cls: string, fraction = COVERAGE_FRACTION): number {
  return Math.max(1, Math.ceil(classShare(stats, cls.split(':')[0]!, fraction)));
}

/**
 * Each required class must be seen in at least its share of the cases (classShare, rounded down)
 * and at least once; paths are filled in from the path vocabulary of the reference model by the caller.
 */
export function coverageOf(stats: Statistics, requiredPaths: readonly string[], fraction = COVERAGE_FRACTION, dns = true): CoverageReport {
  const requirements: CoverageRequirement[] = [];
  const add = (prefix: string, names: readonly string[]) => {
    const required = Math.max(1, Math.floor(classShare(stats, prefix, fraction)));
    for (const n of names) {
      const seen = counterOf(stats, prefix)[n] ?? 0;
      requirements.push({ class: `${prefix}:${n}`, required, seen, ok: seen >= required });
    }
  };
  add('family', REQUIRED_CLASSES.family);
  add('policy', REQUIRED_CLASSES.policy);
  add('history', REQUIRED_CLASSES.history);
  if (dns) add('dns', REQUIRED_CLASSES.dns);
  add('path', requiredPaths);
  return { ok: requirements.every((r) => r.ok), requirements };
}
