// What a case looked like, for the run's statistics and coverage requirements: state kind, socket
// families, LB policies and section-3 paths its passes took, and the longest waypoint chain.

import { v4MappedInner } from '../model/address.js';
import type { Case } from '../model/domain.js';
import type { Trace } from '../model/impl/index.js';
import { policyName } from './format.js';
import { dnsTraits } from './dns-traits.js';
import { historyTraits } from './history-traits.js';
import type { Environment } from '../model/environment.js';
import { outcomes } from '../model/impl/index.js';

export interface CaseTraits {
  readonly kind: Case['kind'];
  /** 'inet', 'inet6', and 'inet6-v4mapped' for an AF_INET6 connect to a v4-mapped address. */
  readonly families: ReadonlySet<string>;
  readonly policies: ReadonlySet<string>;
  readonly paths: ReadonlySet<string>;
  /** The most passes one connect took (1 + tail calls). */
  readonly maxPasses: number;
  /** Draws with more than one possible index: the case's outcome is nondeterministic. */
  readonly randomDraws: number;
  readonly operations: number;
  /** Section 6 classes the case exercised (properties/dns-traits.ts). */
  readonly dns: ReadonlySet<string>;
  /** Classes only a history within the case reaches (properties/history-traits.ts). */
  readonly history: ReadonlySet<string>;
}

export function describeCase(c: Case, allowed: readonly Trace[], env: Environment): CaseTraits {
  const families = new Set<string>();
  const socketFamily = new Map<number, string>();
  for (const op of c.ops) {
    if (op.op === 'socket') {
      socketFamily.set(op.sock, op.family);
      families.add(op.family);
    } else if (op.op === 'connect' && socketFamily.get(op.sock) === 'inet6' && v4MappedInner(op.dest.addr)) {
      families.add('inet6-v4mapped');
    }
  }
  const policies = new Set<string>();
  const paths = new Set<string>();
  let maxPasses = 0;
  let randomDraws = 0;
  for (const t of allowed) {
    let draws = 0;
    for (const passes of t.passes) {
      maxPasses = Math.max(maxPasses, passes.length);
      for (const p of passes) {
        paths.add(p.path);
        if (p.lbPolicy !== null) policies.add(policyName(p.lbPolicy));
        if (p.count !== null && p.count > 1) draws++;
      }
    }
    randomDraws = Math.max(randomDraws, draws);
  }
  return { kind: c.kind, families, policies, paths, maxPasses, randomDraws, operations: c.ops.length, dns: dnsTraits(c, allowed, env), history: historyTraits(c, allowed) };
}

/** Whether a case has a coverage class ("family:inet6", "policy:strict", "path:random-empty", "dns:reply-restored", "history:original-kept"). */
export function hasClass(cls: string, env: Environment): (c: Case) => boolean {
  const [prefix, name] = cls.split(':') as [string, string];
  return (c: Case) => {
    let allowed: Trace[];
    try {
      allowed = outcomes(c, env);
    } catch {
      return false;
    }
    const t = describeCase(c, allowed, env);
    const set = prefix === 'family' ? t.families : prefix === 'policy' ? t.policies : prefix === 'dns' ? t.dns : prefix === 'history' ? t.history : t.paths;
    return set.has(name);
  };
}
