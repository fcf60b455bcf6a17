// The command line as a user meets it, without privileges: exit codes, reports, shards.
// (doctor, the kernel executor and the failure database: test/kernel/cli.test.ts.)

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../bpf/kernel/paths.js';

const root = packageRoot();
const bin = join(root, 'bin/kmesh-check.js');

function cli(args: string[], cwd = mkdtempSync(join(tmpdir(), 'kc-cli-'))) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, cwd };
}

describe('kmesh-check check', () => {
  it('passes on the reference model, with a summary, JSON and JUnit reports', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-cli-'));
    const r = cli(['check', '--executor', 'model', '--runs', '2000', '--json', 'r.json', '--junit', 'r.xml'], dir);
    expect(r.err).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/executor model \(asked for with --executor model\)/);
    expect(r.out).toMatch(/verdict: PASS/);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report).toMatchObject({ executor: 'model', seed: 42, verdict: 'pass', failures: 0 });
    // 2000 connect cases and a tenth more in the DNS phase (section 6), plus the cases targeted
    // generation adds toward the classes sampling saw too rarely (DNS ones and connect ones).
    const targeted = report.coverage.targeted ?? 0;
    expect(report.cases - targeted).toBe(2200);
    expect(report.statistics.dnsCases).toBeGreaterThanOrEqual(200);
    expect(report.cases - report.statistics.dnsCases).toBeGreaterThanOrEqual(2000);
    expect(report.invariants.length).toBeGreaterThan(10);
    for (const i of report.invariants) expect(Object.keys(i).sort()).toEqual(['checked', 'failed', 'name', 'statement']);
    expect(report.statistics.policy.random).toBeGreaterThan(0);
    expect(report.coverage.ok).toBe(true);
    expect(readFileSync(join(dir, 'r.xml'), 'utf8')).toMatch(/<testsuites name="kmesh-check" tests="\d+" failures="0"/);
  });

  it('splits the seed space into shards and merges their reports into one verdict', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-cli-'));
    cli(['check', '--executor', 'model', '--runs', '2000', '--shard', '1/2', '--json', 'a.json', '--no-failure-db'], dir);
    cli(['check', '--executor', 'model', '--runs', '2000', '--shard', '2/2', '--json', 'b.json', '--no-failure-db'], dir);
    const a = JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8'));
    const b = JSON.parse(readFileSync(join(dir, 'b.json'), 'utf8'));
    // Half of the 2,200 sampled cases each, plus the cases targeted generation adds to a shard.
    expect(a.cases - (a.coverage.targeted ?? 0)).toBe(1100);
    expect(b.cases - (b.coverage.targeted ?? 0)).toBe(1100);
    expect(a.statistics).not.toEqual(b.statistics);
    const m = cli(['merge', 'a.json', 'b.json', '--json', 'm.json'], dir);
    expect(m.code).toBe(0);
    const merged = JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8'));
    expect(merged.cases).toBe(a.cases + b.cases);
    expect(merged.verdict).toBe('pass');
    expect(merged.stoppedPhases).toEqual([]);
    // A shard whose phase stopped half-way fails the merged run, which says which and why.
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ ...b, stoppedPhases: ['connection reports: connect failed'] }));
    const stopped = cli(['merge', 'a.json', 'b.json', '--json', 'm.json'], dir);
    expect(stopped.code).toBe(1);
    expect(stopped.out).toContain('phase stopped: connection reports: connect failed (fails the run)');
    expect(JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8')).verdict).toBe('fail');
    expect(cli(['merge', 'missing.json'], dir).code).toBe(2);
  });

  it('exits 2 with a one-line message on bad usage', () => {
    for (const args of [['check', '--runs', 'many'], ['check', '--executor', 'gpu'], ['check', '--shard', '3/2'], ['replay']]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().length, args.join(' ')).toBeGreaterThan(0);
    }
    // A replay path with shrink steps the case does not have: fast-check's own error was a stack trace.
    const wrong = cli(['replay', '--phase', 'consistent/single', '--seed', '42', '--path', '5:0:999:999', '--executor', 'model']);
    expect(wrong.code).toBe(2);
    expect(wrong.err.trim()).toBe(
      "kmesh-check: path 5:0:999:999 names no case of this phase at seed 42: replay the line printed by a run of the same executor and version, or the finding's saved case with --case",
    );
  });

  it('takes object paths in order or by role, and stops on a named object that does not exist, is no BPF object or lacks its programs, before any work', () => {
    const bpf = (name: string) => join(root, 'build/bpf', name);
    const junk = join(mkdtempSync(join(tmpdir(), 'kc-junk-')), 'junk.o');
    writeFileSync(junk, 'not an object\n');
    const bad: Array<[string[], RegExp]> = [
      [['--report-objects', 'a.o,b.o,c.o'], /--report-objects takes four objects.*: no cgroup_skb/],
      [['--report-objects', 'connect=a.o,sockops=b.o,sendmsg=c.o,skbs=d.o'], /no role is named 'skbs'/],
      [['--report-objects', 'connect=a.o,connect=b.o,sendmsg=c.o,cgroup_skb=d.o'], /connect names an object given already/],
      [['--accel-objects', 'a.o,b.o,c.o'], /--accel-objects takes .*: 3 paths given, at most 2/],
      [['--accel-objects', 'ma_ops=a.o'], /--accel-objects takes .*: no ma_redirect/],
      [['--objects', 'a.o,b.o,c.o,d.o'], /--objects takes .*: 4 paths given, at most 3/],
      // The model runs no objects, so the report and acceleration phases would be skipped: the names are still checked.
      [['--report-objects', 'connect=/nope/a.o,sockops=/nope/b.o,sendmsg=/nope/c.o,cgroup_skb=/nope/d.o'], /report object \/nope\/a.o does not exist/],
      [['--accel-objects', 'ma_redirect=/nope/r.o,ma_ops=/nope/o.o'], /acceleration object \/nope\/o.o does not exist/],
      // A file that is no BPF object, or an object without the role's programs: their phase would be skipped.
      [['--report-objects', `${bpf('cgroup_sock.o')},${bpf('sockops.o')},${bpf('sendmsg.o')},${junk}`], /not an ELF file.*\(the report object given to --report-objects\)/],
      [
        ['--report-objects', `${bpf('cgroup_sock.o')},${bpf('sockops.o')},${bpf('sendmsg.o')},${bpf('ma_ops.o')}`],
        /no program 'cgroup_skb_ingress_prog' in the skb object .*ma_ops\.o \(programs there: ma_ops\)/,
      ],
      [['--accel-objects', `ma_ops=${bpf('cgroup_sock.o')},ma_redirect=${bpf('ma_redirect.o')}`], /acceleration: no program 'ma_ops' in cgroup_sock\.o or ma_redirect\.o/],
      [['--accel-objects', bpf('ma_ops.o')], /no program 'ma_redirect' in ma_ops\.o/],
    ];
    for (const [args, message] of bad) {
      const r = cli(['check', '--executor', 'model', '--runs', '10', '--no-failure-db', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.err, args.join(' ')).toMatch(message);
      expect(r.out, args.join(' ')).not.toContain('verdict');
    }
  });

  it('says nothing more, and exits as usual, when its reader stops early (`| head`)', () => {
    // `true` exits without reading: every write of the help text meets a closed pipe.
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${bin}" check --help | true`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('meets the coverage requirements of a small budget by generating toward the classes it missed', () => {
    // 31 connect classes (3 families, 3 policies, 3 history classes, 22 paths) and the 11 DNS classes.
    const r = cli(['check', '--executor', 'model', '--runs', '20', '--no-failure-db']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/coverage: ok \(42 classes, each in at least 1 cases; targeted generation added \d+ cases\)/);
  });
});
