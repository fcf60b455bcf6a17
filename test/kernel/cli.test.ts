// The command line as a user meets it with the kernel executor (root): doctor, the same verdict
// on the unprivileged VM as on the kernel, and the failure database with its exports.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMutant } from '../../cli/mutants.js';
import { packageRoot } from '../../shared/package.js';
import { bpftoolApplyCommands, casePinDir } from '../../cli/export.js';
import { unprivilegedPrefix } from '../helpers/privileges.js';

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

describe('kmesh-check check on the kernel', () => {
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
    expect(v.programCoverage.programs.map((p: { program: string }) => p.program).sort()).toEqual([
      'bpf_redirect_dns_send',
      'bpf_restore_dns_recv',
      'bpf_restore_dns_recv6',
      'cgroup_connect4_prog',
      'cgroup_connect6_prog',
      'sendmsg_prog',
      'sockops_prog',
    ]);
    // The routing run covers the routing programs almost whole; sockops_prog also holds the
    // report and authorization paths (passive side, state changes), which only the
    // report checks run (check's report phase, test/vm/report.test.ts), so its bar is lower.
    type Cov = { program: string; executedInstructions: number; instructions: number };
    for (const p of v.programCoverage.programs as Cov[]) {
      expect(p.executedInstructions, p.program).toBeGreaterThan(p.instructions * (p.program === 'sockops_prog' ? 0.3 : 0.8));
    }
    expect(v.cases).toBe(k.cases);
    expect(v.statistics).toEqual(k.statistics);
    // Every row of the VM's table is the kernel's too (the kernel adds the acceleration phase's).
    type Row = { name: string; failed: number };
    const onVm = new Set((v.invariants as Row[]).map((i) => i.name));
    expect((v.invariants as Row[]).map((i) => [i.name, i.failed])).toEqual((k.invariants as Row[]).filter((i) => onVm.has(i.name)).map((i) => [i.name, i.failed]));
    expect(onVm.has('report-periodic')).toBe(true);
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

    // Each distinct finding (of either phase, exhaustive or random) is saved: three files per failure.
    const ids = saved
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.replace(/\.json$/, ''))
      .sort();
    expect(ids.length).toBeGreaterThanOrEqual(1);
    expect(saved.sort()).toEqual(ids.flatMap((i) => [`${i}.bpftool`, `${i}.json`, `${i}.test.ts`]).sort());
    const id = ids[0]!;
    expect(readFileSync(join(dbDir, `${id}.test.ts`), 'utf8')).toMatch(/kmesh-check regression/);

    // The bpftool batch file applies, by its own instructions, into the case's private pin folder.
    const batchFile = join(dbDir, `${id}.bpftool`);
    const batch = readFileSync(batchFile, 'utf8');
    expect(batch).not.toMatch(/ name km_/);
    const savedCase = JSON.parse(readFileSync(join(dbDir, `${id}.json`), 'utf8')).case;
    const pin = casePinDir(savedCase, id);
    expect(batch).toContain(`map update pinned ${pin}/maps/km_frontend `);
    const cmds = bpftoolApplyCommands(pin, m.connect, batchFile);
    try {
      for (const c of [cmds.prepare, cmds.load, cmds.apply]) {
        const r = spawnSync(c[0]!, c.slice(1), { encoding: 'utf8' });
        expect(r.status, `${c.join(' ')}: ${r.stderr}`).toBe(0);
      }
      const dump = JSON.parse(spawnSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${pin}/maps/km_frontend`], { encoding: 'utf8' }).stdout);
      expect(dump).toHaveLength(savedCase.state.frontends.length);
    } finally {
      spawnSync(cmds.cleanup[0]!, cmds.cleanup.slice(1));
    }

    const byFile = cli(['replay', '--executor', 'kernel', '--objects', objects, '--case', join(dbDir, `${id}.json`)], first.cwd);
    expect(byFile.code).toBe(1);

    // A check of our own objects leaves them alone: they were found on other objects.
    const ours = cli(['check', '--executor', 'kernel', '--runs', '50'], first.cwd);
    expect(ours.out).toMatch(/of other objects or executors skipped/);
    for (const i of ids) expect(existsSync(join(dbDir, `${i}.json`))).toBe(true);
  });
});
