// The bounded-exhaustive enumeration of the acceleration domain: its size and order, the filter
// reasons its classes reach, our objects complete and clean at scope 2 on the VM, each
// acceleration mutant killed by the enumeration alone at scope <= 2, and check's acceleration
// phase under --exhaustive.

import { formatSectionFinding } from '../../cli/section-findings.js';
import { accelSpec } from '../../properties/accel.js';
import type { SectionSpec } from '../../properties/section-check.js';
import { describe, expect, it } from 'vitest';
import { ACCEL_MUTANTS, buildAccelMutant } from '../../cli/accel-mutants.js';
import { accelPhase } from '../../cli/accel-phase.js';
import { AccelVmExecutor } from '../../bpf/vm/accel-executor.js';
import { FILTER_CLASSES, accelExhaustiveCases, accelExhaustiveCount, interleavings, singlePairs } from '../../generators/accel-exhaustive.js';
import { filterVerdict } from '../../model/accel/filter.js';
import { runAccelExhaustive } from '../../properties/accel-exhaustive.js';

describe('the acceleration enumeration', () => {
  it('yields its count of distinct cases, scope 1 first and unchanged inside scope 2', () => {
    const one = [...accelExhaustiveCases(1)].map((c) => JSON.stringify(c));
    const two = [...accelExhaustiveCases(2)].map((c) => JSON.stringify(c));
    expect(one.length).toBe(accelExhaustiveCount(1));
    expect(two.length).toBe(accelExhaustiveCount(2));
    expect(new Set(two).size).toBe(two.length);
    expect(two.slice(0, one.length)).toEqual(one);
    expect([...accelExhaustiveCases(5)].length).toBe(two.length);
  });

  it('interleavings: every order-keeping merge once', () => {
    const merges = [...interleavings<number | string>([1, 2], ['a', 'b', 'c'])].map((m) => m.join(''));
    expect(merges.length).toBe(10);
    expect(new Set(merges).size).toBe(10);
    for (const m of merges) expect(m.replace(/[abc]/g, '')).toBe('12');
  });

  it('its filter classes reach every reason of the filter on the enumerated connections', () => {
    const reasons = new Set(FILTER_CLASSES.flatMap((f) => singlePairs().map((p) => filterVerdict(f, p))));
    expect([...reasons].sort()).toEqual(['accept-cidr', 'accept-port', 'admitted', 'return-cidr', 'return-port']);
  });

  it('the model passes its own enumeration', async () => {
    const r = await runAccelExhaustive({ scope: 2 });
    expect(r.failure).toBeNull();
    expect(r.complete).toBe(true);
  });
});

describe('the enumeration on the VM', () => {
  it('ours: scope 2 complete, every invariant exercised, no failure, nearly every instruction of both programs run', async () => {
    const ex = new AccelVmExecutor();
    const r = await runAccelExhaustive({ scope: 2, executor: ex });
    // What stays unrun in ma_ops are NULL checks of pointers the verifier wants checked (an array's entry, a list).
    const share = Object.fromEntries(ex.coverage().programs.map((p) => [p.program, p.executedInstructions / p.instructions]));
    expect(share.ma_redirect).toBe(1);
    expect(share.ma_ops).toBeGreaterThan(0.97);
    expect(r.failure).toBeNull();
    expect(r.complete).toBe(true);
    expect(r.runs).toBe(accelExhaustiveCount(2));
    for (const [name, n] of Object.entries(r.exercised)) expect(n, name).toBeGreaterThan(100);
  });

  for (const m of ACCEL_MUTANTS) {
    it(`${m.name}: killed by the enumeration alone at scope <= 2`, async () => {
      const ex = new AccelVmExecutor(buildAccelMutant(m.name));
      const one = await runAccelExhaustive({ scope: 1, executor: ex });
      const r = one.failure ? one : await runAccelExhaustive({ scope: 2, executor: ex });
      expect(r.failure?.invariant).toBeDefined();
    });
  }

  it('check --exhaustive: the acceleration phase enumerates, passes on ours, prints where a mutant failed', async () => {
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    expect((await accelPhase({ executor: 'vm', seed: 1, runs: 20, userObjects: false, log, exhaustiveScope: 2 })).status).toBe('pass');
    expect(lines.join('\n')).toMatch(new RegExp(`exhaustive scope 2 \\(${accelExhaustiveCount(2)} cases\\), complete: ${accelExhaustiveCount(2)} cases on the VM`));
    const r = await accelPhase({ executor: 'vm', seed: 1, runs: 20, userObjects: false, objects: buildAccelMutant('ma-key-no-netns'), log, exhaustiveScope: 2 });
    expect(r.status).toBe('fail');
    // Its keys carry no namespace cookie: one connection shows it while open (redirect-keys),
    // before two namespaces sharing a four-tuple would (redirect-isolation).
    expect(r.result?.failure?.case.pairs.length).toBe(1);
    expect(r.result?.failure?.invariant).toBe('redirect-keys');
    // check prints it with a replay line at its place in the enumeration (cli/section-findings.ts).
    const text = formatSectionFinding(accelSpec() as SectionSpec<unknown, unknown>, r.result!.failure!, { executor: 'vm', objectsFlag: null });
    expect(text).toMatch(/replay: kmesh-check replay --phase accel --seed 0 --path 2\.\d+ --executor vm/);
  });
});
