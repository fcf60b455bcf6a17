// --shard on the enumerated domains of check --exhaustive: the acceleration enumeration
// (section 8) and the connection-report enumeration (section 7) are split so that the parts of
// n shards partition the domain (no case twice, none missing) for n = 1, 2, 3, a finding keeps
// its index in the whole domain, and merge sums the parts once, complete only with every shard,
// and their program coverage to the unsharded run's.
// The sampled phases of a default run take a seed and a share of the budget per shard instead.

import { describe, expect, it } from 'vitest';
import { accelExhaustiveCases, accelExhaustiveCount } from '../../generators/accel-exhaustive.js';
import { reportCasesAtScope } from '../../generators/exhaustive/report.js';
import { shardPart, shardSize, WHOLE, type Shard } from '../../generators/shard.js';
import type { AccelCase } from '../../model/accel/domain.js';
import { expectedAccel } from '../../model/accel/model.js';
import { runAccelExhaustive } from '../../properties/accel-exhaustive.js';
import { reportSpec } from '../../properties/report.js';
import { runSectionChecks } from '../../properties/section-check.js';
import { buildAccelMutant } from '../../cli/accel-mutants.js';
import { AccelVmExecutor } from '../../bpf/vm/accel-executor.js';
import { mergeSectionPhases, type ShardReport } from '../../cli/merge-sections.js';
import type { CoverageSummary } from '../../bpf/vm/coverage.js';
import { runSectionPhases, sectionPhaseJson, shardSampling } from '../../cli/section-phases.js';
import { FailureDb } from '../../cli/failure-db.js';
import { accelRuns } from '../../cli/accel-phase.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../shared/package.js';

const shardsOf = (n: number): Shard[] => Array.from({ length: n }, (_, index) => ({ index, count: n }));

/** Each case's position in `domain`, failing on a case that is not in it. */
function positions(domain: readonly unknown[], ran: readonly unknown[]): number[] {
  const at = new Map(domain.map((c, i) => [JSON.stringify(c), i]));
  return ran.map((c) => {
    const i = at.get(JSON.stringify(c));
    if (i === undefined) throw new Error(`a case outside the domain: ${JSON.stringify(c)}`);
    return i;
  });
}

/** Every index of the domain exactly once over the parts. */
function expectPartition(parts: readonly number[][], size: number): void {
  const all = parts.flat().sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: size }, (_, i) => i));
}

describe('shardPart', () => {
  it('keeps the whole index, and shardSize counts the part', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    expect([...shardPart(items, { index: 1, count: 2 })]).toEqual([
      [1, 'b'],
      [3, 'd'],
    ]);
    for (const n of [1, 2, 3, 7]) for (const s of shardsOf(n)) expect(shardSize(items.length, s)).toBe([...shardPart(items, s)].length);
    expect([...shardPart(items, WHOLE)].map(([i]) => i)).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('the acceleration enumeration split by --shard', () => {
  it.each([1, 2, 3])('the cases %i shard(s) run partition scope 2, and their reports merge to the whole', async (n) => {
    const domain = [...accelExhaustiveCases(2)];
    const parts: number[][] = [];
    const reports: ShardReport[] = [];
    for (const shard of shardsOf(n)) {
      // The model as the executor, recording what the phase hands it.
      const ran: AccelCase[] = [];
      const executor = { name: 'model', run: (cs: readonly AccelCase[]) => (ran.push(...cs), Promise.resolve(cs.map(expectedAccel))), close: () => Promise.resolve() };
      const r = await runAccelExhaustive({ scope: 2, executor, shard });
      expect(r.enumeration).toEqual({ scope: 2, shard, part: ran.length, ran: ran.length, total: domain.length, complete: true });
      parts.push(positions(domain, ran));
      reports.push({ shard: n === 1 ? null : shard, acceleration: sectionPhaseJson({ status: 'pass', result: r }) } as ShardReport);
    }
    expectPartition(parts, accelExhaustiveCount(2));
    const merged = mergeSectionPhases(reports).acceleration;
    expect(merged?.runs).toBe(domain.length);
    expect(merged?.enumeration).toEqual({ scope: 2, total: domain.length, ran: domain.length, complete: true, truncated: [] });
    if (n > 1) {
      // One shard short, or one shard twice, is not the whole domain.
      expect(mergeSectionPhases(reports.slice(1)).acceleration?.enumeration).toMatchObject({ complete: false, truncated: [`shard 1/${n} missing`] });
      const twice = mergeSectionPhases([...reports, reports[0]!]).acceleration?.enumeration;
      expect(twice?.complete).toBe(false);
      expect(twice?.truncated).toEqual(['1 report(s) of a shard already given']);
    }
  });

  it('a finding in a shard replays from its index in the whole enumeration', async () => {
    const ex = new AccelVmExecutor(buildAccelMutant('ma-key-no-netns'));
    try {
      const found = await Promise.all(shardsOf(3).map((shard) => runAccelExhaustive({ scope: 2, executor: ex, shard })));
      const f = found.find((r) => r.failure && r.enumeration.shard.index > 0)?.failure;
      expect(f).toBeDefined();
      const at = Number(/^2\.(\d+)$/.exec(f!.path)?.[1]);
      expect([...accelExhaustiveCases(2)][at]).toEqual(f!.case);
    } finally {
      await ex.close();
    }
  });
});

describe('the report enumeration split by --shard', () => {
  it('the cases of 1, 2 and 3 shards partition scope 1 on the VM; merged counts equal the unsharded run', async () => {
    const domain = reportCasesAtScope(1);
    const spec = reportSpec({ executor: 'vm' });
    const whole = await runSectionChecks(spec, { seed: 1, runs: 1, exhaustiveScope: 1 });
    for (const n of [1, 2, 3]) {
      const parts: number[][] = [];
      const reports: ShardReport[] = [];
      for (const shard of shardsOf(n)) {
        const ran: unknown[] = [];
        const r = await runSectionChecks({ ...spec, run: (cs) => (ran.push(...cs), spec.run(cs)) }, { seed: 1, runs: 1, exhaustiveScope: 1, shard });
        expect(r.enumeration).toMatchObject({ scope: 1, part: ran.length, ran: ran.length, total: domain.length });
        parts.push(positions(domain, ran));
        reports.push({ shard, reports: sectionPhaseJson({ status: 'pass', result: { ...r, failure: null } }) } as ShardReport);
      }
      expectPartition(parts, domain.length);
      const merged = mergeSectionPhases(reports).reports;
      expect(merged?.enumeration).toMatchObject({ ran: domain.length, complete: true });
      expect(merged?.exercised).toEqual(whole.exercised);
    }
  });
});

describe('the sampled phases of a default run under --shard', () => {
  it('each shard samples with its own seed and its share of the budget, so merged runs add up to one run', async () => {
    const seeds = shardsOf(3).map((shard) => shardSampling({ seed: 7, runs: 3000, shard }, 'accel').seed);
    expect(new Set(seeds).size).toBe(3);
    expect(shardSampling({ seed: 7, runs: 3000 }, 'accel')).toEqual({ seed: 7, runs: 3000 });
    const db = FailureDb.at(mkdtempSync(join(tmpdir(), 'kc-shard-sampled-')));
    const reports: ShardReport[] = [];
    for (const shard of shardsOf(2)) {
      const out = await runSectionPhases({ executor: 'vm', seed: 7, runs: 2000, userObjects: false, saved: [], db, log: () => {}, shard });
      reports.push({ shard, acceleration: sectionPhaseJson(out.accel), reports: sectionPhaseJson(out.reports) } as ShardReport);
    }
    const merged = mergeSectionPhases(reports);
    expect(merged.acceleration?.runs).toBe(accelRuns(2000));
    expect(merged.reports?.runs).toBe(accelRuns(2000));
  });
});

describe('check --exhaustive --shard i/2, then merge', () => {
  it('each shard runs its part of both enumerations; merge counts each case once, passes, and is complete only with both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-shard-enum-'));
    const bin = join(packageRoot(), 'bin', 'kmesh-check.js');
    const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    for (const i of [1, 2]) {
      const r = run(['check', '--exhaustive', '--executor', 'vm', '--shard', `${i}/2`, '--no-failure-db', '--no-explain', '--json', `s${i}.json`]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`acceleration (section 8): exhaustive scope 1 (shard ${i}/2: ${accelExhaustiveCount(1) / 2} of ${accelExhaustiveCount(1)} cases)`);
    }
    const m = run(['merge', 's1.json', 's2.json', '--json', 'm.json']);
    expect(m.status, m.stdout).toBe(0);
    const merged = JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8')) as ShardReport & { acceleration: { runs: number }; reports: { runs: number } };
    const reports = reportCasesAtScope(1).length;
    expect(merged.acceleration.runs).toBe(accelExhaustiveCount(1));
    expect(merged.reports.runs).toBe(reports);
    expect(merged.invariants.find((r) => r.name === 'redirect-cleanup')?.checked).toBe(accelExhaustiveCount(1));
    expect(m.stdout).toContain(`connection reports: exhaustive scope 1, ${reports} of ${reports} cases, complete`);
    // Program coverage as the unsharded run's: runs and branch counts summed, instructions and lines run by either shard.
    const whole = run(['check', '--exhaustive', '--executor', 'vm', '--no-failure-db', '--no-explain', '--json', 'whole.json']);
    expect(whole.status, whole.stderr).toBe(0);
    const all = JSON.parse(readFileSync(join(dir, 'whole.json'), 'utf8')) as ShardReport;
    const shard1 = JSON.parse(readFileSync(join(dir, 's1.json'), 'utf8')) as ShardReport;
    // A line's count is each shard's most-run instruction's, summed: compared as run or not.
    const covered = (c: CoverageSummary | undefined) => c && { ...c, programs: c.programs.map((p) => ({ ...p, lines: p.lines.map((l) => ({ ...l, hits: l.hits > 0 })) })) };
    for (const phase of [(r: ShardReport) => r.programCoverage, (r: ShardReport) => r.acceleration?.programCoverage, (r: ShardReport) => r.reports?.programCoverage]) {
      expect(phase(all)?.programs.length).toBeGreaterThan(0);
      expect(covered(phase(merged))).toEqual(covered(phase(all)));
    }
    // Neither shard alone ran what the whole run did (else this would not test the union).
    expect(shard1.programCoverage!.executedInstructions).toBeLessThan(all.programCoverage!.executedInstructions);
    const half = run(['merge', 's2.json']);
    expect(half.stdout).toContain(`acceleration: exhaustive scope 1, ${accelExhaustiveCount(1) / 2} of ${accelExhaustiveCount(1)} cases, incomplete: shard 1/2 missing`);
  }, 300_000);
});
