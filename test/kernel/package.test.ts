// kmesh-check as a user installs it: `npm pack` of a clean copy (no dist/: prepack builds it)
// yields a self-sufficient tarball; installed into a fresh project, `npx kmesh-check check
// --executor vm` runs there on objects given by path as an unprivileged user without clang on
// PATH; and an exported regression test, which imports `kmesh-check/regression` by name, runs in
// that project, failing on a buggy data path and passing on ours.

import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';
import { buildMutant } from '../../cli/mutants.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { runChecks } from '../../properties/run.js';
import { regressionTest } from '../../cli/export.js';
import type { SavedFailure } from '../../cli/failure-db.js';

const root = packageRoot();
const NOBODY = 65534;
// Absolute: the child's PATH is kept bare on purpose.
const SETPRIV = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).stdout.trim() || '/usr/bin/setpriv';
let work: string;
let project: string;
let tarball: string;
let binDir: string;

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { asNobody?: boolean } = {}) {
  const { asNobody, ...rest } = opts;
  const [c, a] = asNobody ? [SETPRIV, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', cmd, ...args]] : [cmd, args];
  const r = spawnSync(c, a, { encoding: 'utf8', timeout: 240_000, ...rest });
  if (r.error) throw new Error(`${c}: ${r.error.message}`);
  return { code: r.status, out: String(r.stdout ?? ''), err: String(r.stderr ?? '') };
}

/** A PATH with node, npm, npx and sh only: no clang, no bpftool, nothing of the checkout. */
function bareEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: binDir, HOME: home, npm_config_cache: join(home, '.npm-cache'), npm_config_update_notifier: 'false' };
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the package test installs into a project owned by nobody (uid 65534) and needs root to set that up');
  work = mkdtempSync(join(tmpdir(), 'kc-package-'));
  chmodSync(work, 0o755);

  // A clean copy of the sources without dist/, so that packing proves prepack builds it.
  const src = join(work, 'src');
  const skip = new Set(['node_modules', 'dist', '.git', '.kmesh-check', 'build/mutants', 'build/shim']);
  cpSync(root, src, { recursive: true, preserveTimestamps: true, filter: (p) => !skip.has(relative(root, p)) && !relative(root, p).startsWith('build/regress') });
  symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'));
  expect(existsSync(join(src, 'dist'))).toBe(false);
  const packed = run('npm', ['pack', '--pack-destination', work, '--loglevel=error'], { cwd: src });
  expect(packed.code, packed.err).toBe(0);
  tarball = join(work, packed.out.trim().split('\n').pop()!);
  expect(existsSync(tarball), packed.out).toBe(true);

  // node, npm, npx and sh, nothing else (the checkout's tools, clang and bpftool stay out of reach).
  binDir = join(work, 'bin');
  mkdirSync(binDir);
  const which = (c: string) => run('sh', ['-c', `command -v ${c}`]).out.trim();
  for (const c of ['node', 'npm', 'npx', 'sh']) symlinkSync(run('readlink', ['-f', which(c)]).out.trim(), join(binDir, c));

  project = join(work, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true, type: 'module' }, null, 2));
  // The registry is reachable, but whatever is already in npm's cache is taken from there.
  const installed = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, 'vitest@4'], { cwd: project });
  expect(installed.code, installed.err).toBe(0);
  // The user's own objects, by path, outside the package.
  mkdirSync(join(project, 'objs'));
  for (const f of ['cgroup_sock.o', 'sockops.o', 'sendmsg.o']) copyFileSync(join(root, 'build/bpf', f), join(project, 'objs', f));
  run('chown', ['-R', `${NOBODY}:${NOBODY}`, project]);
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the compiled CLI and our BPF objects, not the tests or a checkout', () => {
    const list = run('tar', ['-tzf', tarball])
      .out.split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    expect(list).toEqual(
      expect.arrayContaining([
        'bin/kmesh-check.js',
        'dist/cli/main.js',
        'dist/cli/regression.js',
        'dist/bpf/vm/executor.js',
        'dist/bpf/kernel/worker.js',
        'build/bpf/cgroup_sock.o',
        'build/bpf/sockops.o',
        'build/bpf/sendmsg.o',
        'package.json',
      ]),
    );
    expect(list.filter((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.startsWith('node_modules/') || f.endsWith('.ts'))).toEqual([]);
  });

  it('installed in a fresh project, npx kmesh-check check --executor vm runs as nobody without clang', () => {
    const home = project;
    expect(run('sh', ['-c', 'command -v clang'], { env: bareEnv(home) }).code).not.toBe(0);
    const v = run('npx', ['kmesh-check', '--version'], { cwd: project, env: bareEnv(home), asNobody: true });
    expect(v.code, v.err).toBe(0);
    expect(v.out.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    const objects = ['objs/cgroup_sock.o', 'objs/sockops.o', 'objs/sendmsg.o'].join(',');
    const r = run('npx', ['kmesh-check', 'check', '--executor', 'vm', '--objects', objects, '--runs', '2000', '--json', 'report.json', '--coverage-out', 'lcov.info'], {
      cwd: project,
      env: bareEnv(home),
      asNobody: true,
    });
    expect(r.err).not.toMatch(/error|warn|\n\s+at /i); // progress only
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/executor vm \(asked for with --executor vm\)/);
    expect(r.out).toMatch(/verdict: PASS/);
    const report = JSON.parse(readFileSync(join(project, 'report.json'), 'utf8'));
    // 2000 connect cases and a tenth more in the DNS phase, plus what targeted generation added.
    expect(report).toMatchObject({ executor: 'vm', verdict: 'pass' });
    expect(report.cases - (report.coverage.targeted ?? 0)).toBe(2200);
    // The report names the objects by absolute path (the replay line works from any folder).
    expect(report.objects.connect).toBe(join(project, 'objs/cgroup_sock.o'));
    expect(readFileSync(join(project, 'lcov.info'), 'utf8')).toMatch(/^SF:.*cgroup_sock\.bpf\.c$/m);
    // Without --objects it uses the objects shipped in the package.
    const shipped = run('npx', ['kmesh-check', 'check', '--executor', 'vm', '--runs', '200', '--no-failure-db'], { cwd: project, env: bareEnv(home), asNobody: true });
    expect(shipped.err).not.toMatch(/error|warn/i);
    expect(shipped.out).toMatch(/verdict: /);
  }, 240_000);

  it('an exported regression test imports kmesh-check by name and runs in that project: fails on the bug, passes on ours', async () => {
    const mutant = buildMutant('strict-empty-kept');
    const vm = await createVmExecutor({ objects: mutant });
    const found = await runChecks({ seed: 42, runs: 500, states: 'consistent', env: vm.environment, executor: vm });
    await vm.close();
    const cx = found.counterexamples[0];
    expect(cx).toBeDefined();
    const buggy = join(project, 'buggy-objs');
    mkdirSync(buggy);
    const objs: Record<string, string> = {};
    for (const [role, p] of Object.entries(mutant)) {
      copyFileSync(p, join(buggy, `${role}.o`));
      objs[role] = join(buggy, `${role}.o`);
    }
    const saved: SavedFailure = { id: 'pkg-test', savedAt: '', executor: 'vm', invariant: cx!.failure.invariant, phase: cx!.phase, seed: cx!.seed, path: cx!.path, case: cx!.case, objects: objs };
    const tests = join(project, 'test');
    mkdirSync(tests);
    const buggyTest = regressionTest(saved, objs);
    expect(buggyTest).toMatch(/from 'kmesh-check\/regression'/);
    expect(buggyTest).not.toMatch(/from '\.|\/work\/|dist\//);
    writeFileSync(join(tests, 'buggy.test.ts'), buggyTest);
    writeFileSync(join(tests, 'fixed.test.ts'), regressionTest(saved, null));
    chownSync(buggy, NOBODY, NOBODY);
    for (const d of [tests, buggy]) for (const f of readdirSync(d)) chownSync(join(d, f), NOBODY, NOBODY);
    chownSync(tests, NOBODY, NOBODY);

    const vitest = (file: string) => run('npx', ['vitest', 'run', relative(project, file)], { cwd: project, env: bareEnv(project), asNobody: true });
    const failing = vitest(join(tests, 'buggy.test.ts'));
    expect(failing.code, failing.out + failing.err).toBe(1);
    expect(failing.out + failing.err).toMatch(/kmesh-check regression pkg-test/);
    expect(failing.out + failing.err).toMatch(new RegExp(cx!.failure.invariant.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    const passing = vitest(join(tests, 'fixed.test.ts'));
    expect(passing.code, passing.out + passing.err).toBe(0);
  }, 240_000);
});

describe('the Dockerfile of the README', () => {
  it('is the image the Kubernetes Job names and is built by the set-up script', () => {
    const docker = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(docker).toMatch(/^RUN bash scripts\/setup\.sh/m);
    // No second recipe: no apt-get or npm install of its own.
    expect(docker).not.toMatch(/apt-get install|npm (ci|install)/);
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme).toMatch(/docker build -t [\w./-]*kmesh-check/);
    expect(readme).toMatch(/image: [\w./-]*kmesh-check/);
  });
});
