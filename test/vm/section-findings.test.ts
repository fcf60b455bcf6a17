// Findings of the report phase through the command line on the VM, handled like every other
// finding: shrunk, printed with its replay line, in the JSON findings and the JUnit report, saved
// in the failure database, replayed from it (still failing: "saved"; fixed in place: removed),
// and replayable from the printed seed and path. The plumbing is the same piece for the
// acceleration phase (cli/section-findings.ts); its kernel side is test/kernel/accel-cli.test.ts.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildAccelMutant } from '../../cli/accel-mutants.js';
import { buildReportMutant } from '../../cli/report-mutants.js';
import { STOPPED_AT_FIRST, type SectionPhaseJson } from '../../cli/section-phases.js';
import { defaultReportObjects } from '../../bpf/kernel/report/run.js';
import { packageRoot } from '../../shared/package.js';
import type { ReportJson } from '../../cli/report.js';
import { reportInvariants } from '../../model/report/invariants.js';

const bin = join(packageRoot(), 'bin/kmesh-check.js');
const cli = (args: string[], cwd: string) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: r.stdout + r.stderr };
};
const ROLES = ['connect', 'sockops', 'sendmsg', 'skb'] as const;

describe('report-phase findings on the VM', () => {
  it('are shrunk, reported, saved, replayed, and removed once fixed in place', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-section-'));
    // The objects live in the run's folder, so that a fix rebuilds them where they were found.
    const mutant = buildReportMutant('report-padding-unwritten');
    for (const r of ROLES) copyFileSync(mutant[r], join(dir, `${r}.o`));
    const objects = ROLES.map((r) => join(dir, `${r}.o`)).join(',');
    const args = ['check', '--executor', 'vm', '--runs', '100', '--seed', '3', '--report-objects', objects, '--no-explain'];

    const first = cli([...args, '--json', 'r.json', '--junit', 'r.xml'], dir);
    expect(first.code, first.out).toBe(1);
    const json = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as ReportJson;
    const f = json.findings.find((x) => x.phase === 'report');
    expect(f, first.out).toBeDefined();
    expect([f!.invariant, f!.status]).toEqual(['report-bytes-written', 'new']);
    expect(f!.size).toBeLessThan(f!.shrunkFrom);
    expect(f!.hits).toBeGreaterThan(1);
    expect(json.invariants.find((i) => i.name === 'report-bytes-written')?.failed).toBe(f!.hits);
    expect(readFileSync(join(dir, 'r.xml'), 'utf8')).toMatch(/name="report-bytes-written" time="0"><failure/);
    expect(first.out).toMatch(/FINDING: invariant "report-bytes-written" broke \(connection reports \(section 7\), on the vm executor\)/);
    const replayLine = /replay: (kmesh-check replay --phase report .*)/.exec(first.out)![1]!;
    const saved = readdirSync(join(dir, '.kmesh-check/failures')).filter((n) => n.endsWith('.json'));
    expect(saved).toHaveLength(1);

    // The printed replay line reproduces it; so does the saved file.
    const again = cli(replayLine.split(' ').slice(1), dir);
    expect(again.code, again.out).toBe(1);
    expect(again.out).toMatch(/padding 0xa5a5a5a5, expected 0/);
    // A path that names no case of the phase (another executor's, another version's): one line, exit 2.
    const words = replayLine.split(' ').slice(1);
    words[words.indexOf('--path') + 1] += ':999:999';
    const wrong = cli(words, dir);
    expect(wrong.code, wrong.out).toBe(2);
    expect(wrong.out).toMatch(/^kmesh-check: path \S+:999:999 names no case of this phase at seed \d+: replay the line printed by a run of the same executor and version/m);
    expect(wrong.out).not.toMatch(/\n\s+at /);
    const fromFile = cli(['replay', '--case', join(dir, '.kmesh-check/failures', saved[0]!)], dir);
    expect(fromFile.code, fromFile.out).toBe(1);
    expect(fromFile.out).toMatch(/SAVED FAILURE: invariant "report-bytes-written"/);
    expect(fromFile.out).toContain(`replay: kmesh-check replay --case ${join(dir, '.kmesh-check/failures', saved[0]!)} --executor vm`);

    // A second run replays it first: the same finding, now "saved".
    const second = cli([...args, '--json', 'r2.json'], dir);
    expect(second.code).toBe(1);
    expect(second.out).toMatch(/saved failure [0-9a-f]+ \(report-bytes-written\) still fails/);
    expect((JSON.parse(readFileSync(join(dir, 'r2.json'), 'utf8')) as ReportJson).findings.filter((x) => x.phase === 'report').map((x) => x.status)).toEqual(['saved']);
    // Printed and listed with the replay line of its file.
    const savedFile = join(dir, '.kmesh-check/failures', saved[0]!);
    expect(second.out).toContain(`replay: kmesh-check replay --case ${savedFile} --executor vm`);
    expect((JSON.parse(readFileSync(join(dir, 'r2.json'), 'utf8')) as ReportJson).findings.find((x) => x.phase === 'report')?.replay).toMatch(/^kmesh-check replay --case \S+\.json --executor vm/);

    // Fixed in place (our objects rebuilt at the same paths): it passes and is removed.
    const ours = defaultReportObjects();
    for (const r of ROLES) copyFileSync(ours[r], join(dir, `${r}.o`));
    const fixed = cli([...args, '--json', 'r3.json'], dir);
    expect(fixed.code, fixed.out).toBe(0);
    // On our objects every report invariant is in the run's table, exercised, never failed.
    const table = (JSON.parse(readFileSync(join(dir, 'r3.json'), 'utf8')) as ReportJson).invariants;
    for (const name of reportInvariants.map((i) => i.name)) {
      const row = table.find((i) => i.name === name);
      expect(row?.checked, name).toBeGreaterThan(0);
      expect(row?.failed, name).toBe(0);
    }
    expect(fixed.out).toMatch(/saved failure [0-9a-f]+ \(report-bytes-written\) passes now on its own objects: removed/);
    expect(existsSync(join(dir, '.kmesh-check/failures', saved[0]!))).toBe(false);
  });
});

describe('a baseline of report-phase findings on the VM', () => {
  it('knows an accepted finding again, not another bug that breaks the same invariant in another shape', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-section-baseline-'));
    const objectsOf = (name: string) => {
      const m = buildReportMutant(name);
      return ROLES.map((r) => `${r}=${m[r]}`).join(',');
    };
    const run = (mutant: string, extra: string[]) =>
      cli(['check', '--executor', 'vm', '--runs', '100', '--seed', '3', '--report-objects', objectsOf(mutant), '--no-explain', '--no-failure-db', ...extra], dir);
    // Reports whose padding is not 0: accepted.
    const first = run('report-padding-unwritten', ['--json', 'a.json']);
    expect(first.code, first.out).toBe(1);
    const accepted = (JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8')) as ReportJson).findings.find((f) => f.phase === 'report')!;
    expect(accepted.invariant).toBe('report-bytes-written');
    expect(Object.keys(accepted.modelPaths)).toEqual(['padding']);
    expect(cli(['baseline', '--from', 'a.json', '--out', 'b.json'], dir).code).toBe(0);
    const again = run('report-padding-unwritten', ['--baseline', 'b.json']);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/KNOWN FINDING \(accepted by the baseline\): invariant "report-bytes-written"/);
    // Reports whose start is not the connect time: the same invariant, so the same signature, but
    // another rule of it. It is new, not known.
    const other = run('report-start-unstamped', ['--baseline', 'b.json', '--json', 'c.json']);
    expect(other.code, other.out).toBe(1);
    expect(other.out).toMatch(/FINDING \(the baseline accepts its signature, not in shape .*start not the connect time/);
    const newPaths = (JSON.parse(readFileSync(join(dir, 'c.json'), 'utf8')) as ReportJson).baseline?.newPaths ?? [];
    expect(newPaths.map((p) => p.signature)).toEqual([accepted.signature]);
  });
});

describe('--stop-at-first in the acceleration and report phases', () => {
  const phaseOf = (json: ReportJson, phase: string) => json.findings.filter((x) => x.phase === phase);

  it('stops each phase at its first failing case, and a failing phase skips the ones after it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-section-first-'));
    const report = buildReportMutant('report-padding-unwritten');
    const base = ['check', '--executor', 'vm', '--runs', '100', '--seed', '3', '--no-explain', '--no-failure-db', '--stop-at-first'];
    // By role, in another order than the positional one.
    const byRole = `cgroup_skb=${report.skb},sendmsg=${report.sendmsg},connect=${report.connect},sockops=${report.sockops}`;
    const r = cli([...base, '--report-objects', byRole, '--json', 'r.json'], dir);
    expect(r.code, r.out).toBe(1);
    const json = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as ReportJson;
    const found = phaseOf(json, 'report');
    expect(found.map((f) => [f.invariant, f.hits])).toEqual([['report-bytes-written', 1]]);

    const accel = buildAccelMutant('ma-filter-any-all-swapped');
    const a = cli([...base, '--accel-objects', `ma_redirect=${accel.redirect},ma_ops=${accel.ops}`, '--json', 'a.json'], dir);
    expect(a.code, a.out).toBe(1);
    const aj = JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8')) as ReportJson & { reports: SectionPhaseJson };
    expect(phaseOf(aj, 'accel').map((f) => f.hits)).toEqual([1]);
    expect(aj.reports).toEqual({ status: 'skipped', why: STOPPED_AT_FIRST });
    expect(a.out).toContain(`connection reports (section 7): skipped: ${STOPPED_AT_FIRST}`);
  });
});
