// Batched judging changes nothing a run reports: on objects with a planted bug, a run that judges
// 64 cases per executor call reports the same findings (phase, seed, replay path, shrunk case,
// hits), statistics and invariant counts as a run that judges one case per call; and the first
// failure it reports is the first case of its phase's stream that one-by-one judging fails, where
// --stop-at-first stops.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMutant } from '../../cli/mutants.js';
import { createVmExecutor, type VmExecutor } from '../../bpf/vm/executor.js';
import { judge } from '../../properties/judge.js';
import { caseArb } from '../../generators/index.js';
import { phaseSeed, runChecks, type RunOptions, type RunResult } from '../../properties/run.js';
import type { Case } from '../../model/domain.js';

let vm: VmExecutor;
let one: RunResult;
let batched: RunResult;
let opts: RunOptions;

beforeAll(async () => {
  vm = await createVmExecutor({ objects: buildMutant('pick-ignores-count') });
  opts = { seed: 5, runs: 300, states: 'consistent', env: vm.environment, executor: vm, maxFindings: 3 };
  one = await runChecks({ ...opts, batchSize: 1 });
  batched = await runChecks({ ...opts, batchSize: 64 });
  return () => vm.close();
});

const findings = (r: RunResult) => r.counterexamples.map((c) => ({ phase: c.phase, seed: c.seed, path: c.path, case: c.case, hits: c.hits, signature: c.signature.id, paths: c.paths }));

describe('batched judging', () => {
  it('reports what one-by-one judging reports', () => {
    expect(one.counterexamples.length).toBeGreaterThan(0);
    expect(findings(batched)).toEqual(findings(one));
    expect(batched.statistics.toJSON()).toEqual(one.statistics.toJSON());
    expect(batched.invariants).toEqual(one.invariants);
    expect(batched.cases).toBe(one.cases);
    expect(batched.unclustered).toBe(one.unclustered);
  });

  it('stops at the same first failing case, batched or not', async () => {
    const at = async (batchSize: number) => (await runChecks({ ...opts, batchSize, stopAtFirst: true })).counterexamples.map((c) => [c.phase, c.path.split(':')[0]]);
    const first = [[batched.counterexamples[0]!.phase, batched.counterexamples[0]!.path.split(':')[0]]];
    expect(await at(1)).toEqual(first);
    expect(await at(64)).toEqual(first);
  });

  it('reports as first failure the first failing case of its phase, judged alone', async () => {
    const first = batched.counterexamples[0]!;
    expect(first.phase).toBe('consistent/single');
    expect(first.seed).toBe(phaseSeed(5, first.phase, 0));
    // The stream as fast-check generates it, judged one case per executor call.
    const generated: Case[] = fc.sample(caseArb({ kind: 'consistent', shape: 'single' }), { seed: first.seed, numRuns: Number(first.path.split(':')[0]) + 1 });
    const verdicts: boolean[] = [];
    for (const c of generated) verdicts.push((await judge(c, opts)).failure !== null);
    expect(verdicts.indexOf(true)).toBe(generated.length - 1);
  });
});
