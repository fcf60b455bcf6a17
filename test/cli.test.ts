// The command line as a user meets it: exit codes, reports, the failure database.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMutant } from '../bpf/mutants.js';
import { packageRoot } from '../bpf/kernel/paths.js';
import { createKernelExecutor } from '../bpf/kernel/executor.js';
import { unprivilegedPrefix } from './helpers/privileges.js';

const root = packageRoot();
const bin = join(root, 'bin/kmesh-check.js');

function cli(args: string[], cwd = mkdtempSync(join(tmpdir(), 'kc-cli-'))) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, cwd };
}

describe('kmesh-check doctor', () => {
  it('passes here as root and fails clearly, one line per check, without the capabilities', () => {
    if (process.geteuid?.() !== 0) throw new Error('doctor is tested as root (and then without capabilities): run the suite as root');
    const ok = cli(['doctor']);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/^doctor: all \d+ checks passed$/m);
    expect(ok.out).not.toMatch(/^FAIL/m);
    const r = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-all', process.execPath, bin, 'doctor'], { encoding: 'utf8', cwd: tmpdir() });
    expect(r.status).toBe(1);
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    expect(failed.length).toBeGreaterThan(0);
    // Each failure says what is wrong and what to do, on its one line.
    for (const line of failed) expect(line).toMatch(/^FAIL [^:]+: .+ \(.+\)$/);
    expect(r.stdout).toMatch(/checks failed/);
  });
});

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
    expect(report.cases).toBe(2000);
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
    expect(a.cases).toBe(1000);
    expect(b.cases).toBe(1000);
    expect(a.statistics).not.toEqual(b.statistics);
    const m = cli(['merge', 'a.json', 'b.json', '--json', 'm.json'], dir);
    expect(m.code).toBe(0);
    const merged = JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8'));
    expect(merged.cases).toBe(2000);
    expect(merged.verdict).toBe('pass');
    expect(cli(['merge', 'missing.json'], dir).code).toBe(2);
  });

  it('reaches the same verdict on the VM without privileges as on the kernel', () => {
    if (process.geteuid?.() !== 0) throw new Error('this test compares with the kernel executor and requires root');
    const dir = mkdtempSync(join(tmpdir(), 'kc-cli-'));
    chmodSync(dir, 0o777);
    const kernel = cli(['check', '--executor', 'kernel', '--runs', '2000', '--no-failure-db', '--json', 'k.json'], dir);
    const { prefix } = unprivilegedPrefix(bin);
    const [cmd, ...args] = [...prefix, process.execPath, bin, 'check', '--runs', '2000', '--no-failure-db', '--json', 'v.json'];
    const vm = spawnSync(cmd!, args, { cwd: dir, encoding: 'utf8', timeout: 240_000 });
    expect(vm.stdout, vm.stderr).toMatch(/executor vm \(not root/);
    const k = JSON.parse(readFileSync(join(dir, 'k.json'), 'utf8'));
    const v = JSON.parse(readFileSync(join(dir, 'v.json'), 'utf8'));
    expect([kernel.code, vm.status]).toEqual([0, 0]);
    expect(v.verdict).toBe(k.verdict);
    // The VM reports per-program instruction and branch coverage of the run.
    expect(v.programCoverage.programs.map((p: { program: string }) => p.program).sort()).toEqual(['cgroup_connect4_prog', 'cgroup_connect6_prog', 'sendmsg_prog', 'sockops_prog']);
    expect(v.programCoverage.executedInstructions).toBeGreaterThan(v.programCoverage.instructions * 0.8);
    expect(v.cases).toBe(k.cases);
    expect(v.statistics).toEqual(k.statistics);
    expect(v.invariants.map((i: { name: string; failed: number }) => [i.name, i.failed])).toEqual(
      k.invariants.map((i: { name: string; failed: number }) => [i.name, i.failed]),
    );
  });

  it('exits 2 with a one-line message on bad usage', () => {
    for (const args of [['check', '--runs', 'many'], ['check', '--executor', 'gpu'], ['check', '--shard', '3/2'], ['replay']]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().length, args.join(' ')).toBeGreaterThan(0);
    }
  });

  it('meets the coverage requirements of a small budget by generating toward the classes it missed', () => {
    const r = cli(['check', '--executor', 'model', '--runs', '20', '--no-failure-db']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/coverage: ok \(28 classes, each in at least 1 cases; targeted generation added \d+ cases\)/);
  });

  it('saves a counterexample with its exports, replays it first on the next run, and replays it by file', async () => {
    if (process.geteuid?.() !== 0) throw new Error('this test runs the kernel executor on a mutant and requires root');
    const m = buildMutant('strict-empty-kept');
    const objects = `${m.connect},${m.sockops},${m.sendmsg}`;
    const first = cli(['check', '--executor', 'kernel', '--objects', objects, '--runs', '500']);
    expect(first.code).toBe(1);
    expect(first.out).toMatch(/^FINDING: /m);
    const dbDir = join(first.cwd, '.kmesh-check/failures');
    const saved = readdirSync(dbDir);

    const second = cli(['check', '--executor', 'kernel', '--objects', objects, '--runs', '50'], first.cwd);
    expect(second.out).toMatch(/saved failure \w+ \(.*\) still fails/);
    expect(second.code).toBe(1);

    const id = saved.find((n) => n.endsWith('.json'))!.replace(/\.json$/, '');
    expect(saved.sort()).toEqual([`${id}.bpftool`, `${id}.json`, `${id}.test.ts`]);
    expect(readFileSync(join(dbDir, `${id}.test.ts`), 'utf8')).toMatch(/kmesh-check regression/);

    // The bpftool batch file applies cleanly to the maps of our objects (names -> this worker's ids).
    const exec = await createKernelExecutor();
    try {
      const { mapIds } = await exec.info();
      const batch = readFileSync(join(dbDir, `${id}.bpftool`), 'utf8').replace(/name (km_\w+)/g, (_, n: string) => `id ${mapIds[n]}`);
      const file = join(first.cwd, 'state.batch');
      writeFileSync(file, batch);
      const applied = spawnSync('bpftool', ['batch', 'file', file], { encoding: 'utf8' });
      expect(applied.status, applied.stderr).toBe(0);
      const savedCase = JSON.parse(readFileSync(join(dbDir, `${id}.json`), 'utf8')).case;
      const dump = JSON.parse(spawnSync('bpftool', ['-j', 'map', 'dump', 'id', String(mapIds.km_frontend)], { encoding: 'utf8' }).stdout);
      expect(dump).toHaveLength(savedCase.state.frontends.length);
    } finally {
      await exec.close();
    }

    const byFile = cli(['replay', '--executor', 'kernel', '--objects', objects, '--case', join(dbDir, `${id}.json`)], first.cwd);
    expect(byFile.code).toBe(1);

    // A check of our own objects leaves it alone: it was found on other objects.
    const ours = cli(['check', '--executor', 'kernel', '--runs', '50'], first.cwd);
    expect(ours.out).toMatch(/of other objects or executors skipped/);
    expect(existsSync(join(dbDir, `${id}.json`))).toBe(true);
  });
});
