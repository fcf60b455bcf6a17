// A baseline accepts a finding on the model paths it was hit on: its signature is coarse (one bug,
// one finding), so the same signature hit often on another path fails the run as new until
// accepted there too, while a path hit too seldom for the baseline's run to have been likely to
// see it stays known (a bug's long tail of paths); a baseline without hits (older versions) fails
// on every other path, and one without paths accepts its signatures on any path.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyBaseline, baselineFromReport, readBaseline, unseenPathIsNew, type Baseline } from '../../cli/baseline.js';
import type { FindingJson, ReportJson } from '../../cli/report.js';
import { mergeReports } from '../../cli/commands/merge.js';
import { Statistics } from '../../properties/statistics.js';

function finding(signature: string, modelPaths: Record<string, number>, text = 'connect | result'): FindingJson {
  const hits = Object.values(modelPaths).reduce((n, h) => n + h, 0);
  return { signature, signatureText: text, invariant: 'executor-matches-model', hits, modelPaths, status: 'new' } as unknown as FindingJson;
}

describe('baselines', () => {
  it('record the paths each finding was hit on, and --merge adds to them', () => {
    const b = baselineFromReport({ findings: [finding('aaaaaa', { failover: 3, 'endpoint-missing': 1 }), finding('bbbbbb', { '-': 2 }, 'send | stream.tlv')] });
    expect(b.accepted).toEqual([
      { signature: 'aaaaaa', text: 'connect | result', invariant: 'executor-matches-model', paths: ['endpoint-missing', 'failover'], hits: 4 },
      { signature: 'bbbbbb', text: 'send | stream.tlv', invariant: 'executor-matches-model', paths: ['-'], hits: 2 },
    ]);
    const merged = baselineFromReport({ findings: [finding('aaaaaa', { strict: 1 })] }, b);
    expect(merged.accepted.find((a) => a.signature === 'aaaaaa')).toMatchObject({ paths: ['endpoint-missing', 'failover', 'strict'], hits: 5 });
    expect(merged.accepted).toHaveLength(2);
  });

  it('know a finding only on accepted paths: another path of the same signature is new', () => {
    const b = baselineFromReport({ findings: [finding('aaaaaa', { failover: 30 })] });
    const r = applyBaseline([finding('aaaaaa', { failover: 9 }), finding('cccccc', { failover: 1 })], b, 'accepted.json');
    expect(r.findings.map((f) => f.status)).toEqual(['known', 'new']);
    expect(r.baseline.newPaths).toEqual([]);
    const other = applyBaseline([finding('aaaaaa', { failover: 2, 'strict-empty': 12 })], b, 'accepted.json');
    expect(other.findings[0]!.status).toBe('new');
    expect(other.baseline.newPaths).toEqual([{ signature: 'aaaaaa', text: 'connect | result', paths: ['strict-empty'], accepted: ['failover'] }]);
    expect(other.baseline.known).toEqual([]);
  });

  it('leave known a path hit too seldom for the baseline to have been likely to see it, and say so', () => {
    // 300 hits accepted on failover; here 3 of 300 on a chain the baseline never saw: at that rate
    // its run would have missed the chain with a chance of 1 in 7.
    const b = baselineFromReport({ findings: [finding('aaaaaa', { failover: 300 })] });
    const tail = applyBaseline([finding('aaaaaa', { failover: 297, 'backend-waypoint > strict': 3 })], b, 'accepted.json');
    expect(tail.findings[0]!.status).toBe('known');
    expect(tail.baseline.newPaths).toEqual([]);
    expect(tail.baseline.rarePaths).toEqual([{ signature: 'aaaaaa', text: 'connect | result', paths: ['backend-waypoint > strict'], hits: 3, of: 300, acceptedHits: 300 }]);
    // 20 of 300: the baseline's run would almost surely have seen it (e^-19): another bug there, maybe.
    const often = applyBaseline([finding('aaaaaa', { failover: 280, strict: 20 })], b, 'accepted.json');
    expect(often.findings[0]!.status).toBe('new');
    expect(often.baseline.newPaths[0]!.paths).toEqual(['strict']);
    // Were the path's share the same in both runs, all its hits would land here with the chance
    // (hits here / all hits)^(its hits): with equal hits on both sides, new from 10 hits on (2^-10).
    expect(unseenPathIsNew(9, 300, 300)).toBe(false);
    expect(unseenPathIsNew(10, 300, 300)).toBe(true);
    // Whatever the budgets: a baseline three times this run's hits makes 5 enough (4^-5), a third of them 25.
    expect(unseenPathIsNew(4, 300, 900)).toBe(false);
    expect(unseenPathIsNew(5, 300, 900)).toBe(true);
    expect(unseenPathIsNew(24, 300, 100)).toBe(false);
    expect(unseenPathIsNew(25, 300, 100)).toBe(true);
    // A baseline of few hits knows little of the finding's paths, but a path that alone has more
    // hits than the whole finding had there is new.
    expect(unseenPathIsNew(3, 10, 3)).toBe(false);
    expect(unseenPathIsNew(4, 10, 3)).toBe(true);
    // A baseline of an older version counted no hits: every other path is new there.
    const old: Baseline = { tool: 'kmesh-check-baseline', version: 1, accepted: [{ signature: 'aaaaaa', text: 'connect | result', invariant: 'executor-matches-model', paths: ['failover'] }] };
    expect(applyBaseline([finding('aaaaaa', { failover: 297, 'backend-waypoint > strict': 3 })], old, 'old.json').findings[0]!.status).toBe('new');
    // Merged onto such an acceptance, the hits count from the report merged.
    expect(baselineFromReport({ findings: [finding('aaaaaa', { strict: 7 })] }, old).accepted[0]).toMatchObject({ paths: ['failover', 'strict'], hits: 7 });
  });

  it('accept on any path when written without paths, and refuse paths that are not text', () => {
    const old: Baseline = { tool: 'kmesh-check-baseline', version: 1, accepted: [{ signature: 'aaaaaa', text: 'connect | result', invariant: 'executor-matches-model' }] };
    expect(applyBaseline([finding('aaaaaa', { 'random-empty': 1 })], old, 'old.json').findings[0]!.status).toBe('known');
    const dir = mkdtempSync(join(tmpdir(), 'kc-baseline-'));
    writeFileSync(join(dir, 'old.json'), JSON.stringify(old));
    expect(readBaseline(join(dir, 'old.json')).accepted[0]!.paths).toBeUndefined();
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...old, accepted: [{ ...old.accepted[0], paths: [3] }] }));
    expect(() => readBaseline(join(dir, 'bad.json'))).toThrow(/not a kmesh-check baseline/);
    writeFileSync(join(dir, 'bad-hits.json'), JSON.stringify({ ...old, accepted: [{ ...old.accepted[0], paths: [], hits: -1 }] }));
    expect(() => readBaseline(join(dir, 'bad-hits.json'))).toThrow(/not a kmesh-check baseline/);
  });

  it('hold the report and acceleration phases, saved failures and older acceptances to their paths exactly', () => {
    const b = baselineFromReport({ findings: [finding('aaaaaa', { padding: 300 }, 'connection reports (section 7): report-bytes-written broke')] });
    // Another rule of the same invariant, a few cases: another bug, whatever its share.
    const report = { ...finding('aaaaaa', { padding: 300, 'an original destination where none is due': 7 }), phase: 'report' };
    expect(applyBaseline([report], b, 'b.json').findings[0]!.status).toBe('new');
    // A saved failure on a path not accepted still fails the run (its one path counts no hits).
    const routing = baselineFromReport({ findings: [finding('cccccc', { failover: 300 })] });
    const saved = { ...finding('cccccc', { strict: 1 }), hits: 0, status: 'saved' } as FindingJson;
    expect(applyBaseline([saved], routing, 'b.json').findings[0]!.status).toBe('saved');
  });

  it('list a finding with new paths as new only, and merge shards by their summed hits', () => {
    const b = baselineFromReport({ findings: [finding('aaaaaa', { failover: 1000 })] });
    const both = applyBaseline([finding('aaaaaa', { failover: 970, strict: 25, 'backend-waypoint > strict': 5 })], b, 'b.json');
    expect(both.findings[0]!.status).toBe('new');
    expect(both.baseline.newPaths[0]!.paths).toEqual(['strict']);
    expect(both.baseline.rarePaths).toEqual([]);
    // Four shards each hit strict 3 times of 250 (rare in each); the merged run, 12 of 1,000 against
    // the baseline's 1,000, is held to the baseline again: new, as the unsharded run would be.
    const shard = (): ReportJson => {
      const applied = applyBaseline([finding('aaaaaa', { failover: 247, strict: 3 })], b, 'b.json');
      expect(applied.findings[0]!.status).toBe('known');
      return {
        tool: 'kmesh-check',
        version: 1,
        executor: 'vm',
        seed: 1,
        runs: 250,
        cases: 250,
        durationMs: 1,
        interrupted: false,
        stopped: false,
        states: 'both',
        shard: null,
        invariants: [],
        statistics: new Statistics().toJSON(),
        coverage: { ok: true, requirements: [], targeted: 0 },
        findings: applied.findings,
        unclustered: 0,
        baseline: applied.baseline,
        stoppedPhases: [],
        failures: 0,
        verdict: 'pass',
        savedFailures: null,
      } as unknown as ReportJson;
    };
    const merged = mergeReports([shard(), shard(), shard(), shard()]);
    expect(merged.findings[0]!.status).toBe('new');
    expect(merged.baseline?.newPaths.map((p) => p.paths)).toEqual([['strict']]);
    expect(merged.verdict).toBe('fail');
  });
});
