// A baseline accepts a finding on the model paths it was hit on: its signature is coarse (one bug,
// one finding), so the same signature hit on another path fails the run as new until accepted
// there too; a baseline without paths (older versions) accepts its signatures on any path.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyBaseline, baselineFromReport, readBaseline, type Baseline } from '../../cli/baseline.js';
import type { FindingJson } from '../../cli/report.js';

function finding(signature: string, modelPaths: Record<string, number>, text = 'connect | result'): FindingJson {
  return { signature, signatureText: text, invariant: 'executor-matches-model', hits: 1, modelPaths, status: 'new' } as unknown as FindingJson;
}

describe('baselines', () => {
  it('record the paths each finding was hit on, and --merge adds to them', () => {
    const b = baselineFromReport({ findings: [finding('aaaaaa', { failover: 3, 'endpoint-missing': 1 }), finding('bbbbbb', { '-': 2 }, 'send | stream.tlv')] });
    expect(b.accepted).toEqual([
      { signature: 'aaaaaa', text: 'connect | result', invariant: 'executor-matches-model', paths: ['endpoint-missing', 'failover'] },
      { signature: 'bbbbbb', text: 'send | stream.tlv', invariant: 'executor-matches-model', paths: ['-'] },
    ]);
    const merged = baselineFromReport({ findings: [finding('aaaaaa', { strict: 1 })] }, b);
    expect(merged.accepted.find((a) => a.signature === 'aaaaaa')!.paths).toEqual(['endpoint-missing', 'failover', 'strict']);
    expect(merged.accepted).toHaveLength(2);
  });

  it('know a finding only on accepted paths: another path of the same signature is new', () => {
    const b = baselineFromReport({ findings: [finding('aaaaaa', { failover: 3 })] });
    const r = applyBaseline([finding('aaaaaa', { failover: 9 }), finding('cccccc', { failover: 1 })], b, 'accepted.json');
    expect(r.findings.map((f) => f.status)).toEqual(['known', 'new']);
    expect(r.baseline.newPaths).toEqual([]);
    const other = applyBaseline([finding('aaaaaa', { failover: 2, 'strict-empty': 1 })], b, 'accepted.json');
    expect(other.findings[0]!.status).toBe('new');
    expect(other.baseline.newPaths).toEqual([{ signature: 'aaaaaa', text: 'connect | result', paths: ['strict-empty'], accepted: ['failover'] }]);
    expect(other.baseline.known).toEqual([]);
  });

  it('accept on any path when written without paths, and refuse paths that are not text', () => {
    const old: Baseline = { tool: 'kmesh-check-baseline', version: 1, accepted: [{ signature: 'aaaaaa', text: 'connect | result', invariant: 'executor-matches-model' }] };
    expect(applyBaseline([finding('aaaaaa', { 'random-empty': 1 })], old, 'old.json').findings[0]!.status).toBe('known');
    const dir = mkdtempSync(join(tmpdir(), 'kc-baseline-'));
    writeFileSync(join(dir, 'old.json'), JSON.stringify(old));
    expect(readBaseline(join(dir, 'old.json')).accepted[0]!.paths).toBeUndefined();
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...old, accepted: [{ ...old.accepted[0], paths: [3] }] }));
    expect(() => readBaseline(join(dir, 'bad.json'))).toThrow(/not a kmesh-check baseline/);
  });
});
