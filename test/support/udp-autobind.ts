// The DNS cases an object whose hooks act only for a socket with a local port
// (test/fixtures/vm/dns_needs_port.c) is run on, beside ours, by the VM and the kernel tests: the
// hand-written scenarios and generated DNS cases of both state kinds.

import fc from 'fast-check';
import type { Case } from '../../model/domain.js';
import type { Executor } from '../../model/executor.js';
import { caseArb } from '../../generators/index.js';
import { traceKey } from '../../properties/observation.js';
import { DNS_SCENARIOS, PROXY } from './dns-scenarios.js';

export function dnsCases(): Case[] {
  const out = DNS_SCENARIOS.map((s) => s.case);
  for (const kind of ['consistent', 'raw'] as const) out.push(...fc.sample(caseArb({ kind, shape: 'dns' }), { seed: 4242, numRuns: 150 }));
  return out;
}

/** Each case's observations as one comparable text per case, and how many cases had a query the send hook redirected to the proxy. */
export async function observed(executor: Executor, cases: readonly Case[]): Promise<{ traces: string[]; redirected: number }> {
  const runs = await executor.run(cases);
  const redirected = runs.filter((obs) => obs.some((o) => o.op === 'sendto' && o.arrivedAt?.addr === PROXY)).length;
  return { traces: runs.map((o) => traceKey(o)), redirected };
}
