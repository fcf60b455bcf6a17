// The generated cases the VM is compared on, with the model (test/vm/agreement.test.ts) and with the
// kernel (test/kernel/vm-agreement.test.ts), and the set of trace keys of a list of outcomes.

import fc from 'fast-check';
import type { Case } from '../../model/domain.js';
import { caseArb } from '../../generators/index.js';
import { traceKey } from '../../properties/observation.js';

export function sharedCases(): Case[] {
  const out: Case[] = [];
  for (const kind of ['consistent', 'raw'] as const) {
    for (const shape of ['single', 'sequence'] as const) {
      out.push(...fc.sample(caseArb({ kind, shape }), { seed: 2024, numRuns: shape === 'single' ? 250 : 100 }));
    }
  }
  return out;
}

export const keys = (traces: ReadonlyArray<{ observations: readonly unknown[] }>) => [...new Set(traces.map((t) => traceKey(t.observations as never)))].sort();
