// Command-line habits a user expects: --version, one-line usage errors that name the --help to
// read, a suggestion for a mistyped command, examples and exit codes in --help, impossible budgets
// refused, and report paths checked before the run starts.

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';
import { unprivilegedPrefix } from '../helpers/privileges.js';
import { buildVariant } from '../helpers/variant.js';

const root = packageRoot();
const bin = join(root, 'bin/kmesh-check.js');

/** The command's run; `withoutCaps`: with no capabilities even as root (a VM run as root has the kernel's verifier see its objects first). */
function cli(args: string[], cwd = mkdtempSync(join(tmpdir(), 'kc-habits-')), o: { withoutCaps?: boolean } = {}) {
  const command = [process.execPath, bin, ...args];
  const argv = o.withoutCaps && process.getuid?.() === 0 ? ['setpriv', '--inh-caps=-all', '--bounding-set=-all', ...command] : command;
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, cwd };
}
const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

describe('kmesh-check habits', () => {
  it('--version prints the package version', () => {
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = cli([flag]);
      expect(r.code).toBe(0);
      expect(r.out.trim()).toBe(version);
    }
  });

  it('a usage error is one line that names the subcommand and its --help', () => {
    const cases: [string[], RegExp][] = [
      [['check', '--bogus'], /^kmesh-check check: unknown option '--bogus'.*\(see kmesh-check check --help\)$/],
      [['check', '--executor', 'qemu'], /^kmesh-check check: option '--executor <name>' argument 'qemu' is invalid.*\(see kmesh-check check --help\)$/],
      [['replay', '--seed', 'x'], /^kmesh-check replay: .*--seed must be an integer.*\(see kmesh-check replay --help\)$/],
      [['merge'], /^kmesh-check merge: missing required argument 'reports'.*\(see kmesh-check merge --help\)$/],
    ];
    for (const [args, re] of cases) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lines(r.err), args.join(' ')).toHaveLength(1);
      expect(r.err.trim()).toMatch(re);
      expect(r.out + r.err).not.toMatch(/Usage:/);
    }
  });

  it('an unknown subcommand says so and suggests the nearest', () => {
    const r = cli(['chekc', '--runs', '10']);
    expect(r.code).toBe(2);
    expect(lines(r.err)).toHaveLength(1);
    expect(r.err).toMatch(/^kmesh-check: unknown command 'chekc' \(did you mean check\?\)/);
    const far = cli(['zzzzzzzz']);
    expect(far.code).toBe(2);
    expect(far.err).toMatch(/unknown command 'zzzzzzzz'; commands: check, replay/);
    expect(far.err).not.toMatch(/did you mean/);
    expect(cli(['repaly']).err).toMatch(/did you mean replay\?/);
  });

  it('--help shows examples and the exit codes', () => {
    for (const args of [['--help'], ['check', '--help']]) {
      const r = cli(args);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Examples:\n\s+\$ kmesh-check check /);
      expect(r.out).toMatch(/Exit codes:\n\s+0 .+\n\s+1 .+counterexample.+\n\s+2 .+usage/);
    }
    expect(cli(['check', '--help']).out).toMatch(/--coverage-out <file>/);
  });

  it('impossible budgets are usage errors (exit 2) before anything runs', () => {
    for (const args of [
      ['--time-limit', '0'],
      ['--time-limit', '0s'],
      ['--time-limit', '-5s'],
      ['--runs', '0'],
      ['--runs', '-3'],
      ['--runs', '1.5'],
    ]) {
      const r = cli(['check', '--executor', 'model', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lines(r.err), args.join(' ')).toHaveLength(1);
      expect(r.out, args.join(' ')).not.toMatch(/checking|verdict/);
    }
    const mutants = cli(['mutants', '--runs', '0']);
    expect(mutants.code).toBe(2);
  });

  it('a program the VM faults on stops the run in one line (exit 2): here one the kernel verifier rejects', () => {
    // Our sockops reading `family` through a pointer moved to it first ("dereference of modified ctx ptr").
    const dir = mkdtempSync(join(tmpdir(), 'kc-moved-ctx-'));
    try {
      const o = buildVariant(dir, [['sockops.bpf.c', '\t__u32 family = skops->family;', '\t__u32 *family_at = &skops->family;\n\tasm volatile("" : "+r"(family_at));\n\t__u32 family = *family_at;']]);
      const objects = ['cgroup_sock', 'sockops', 'sendmsg'].map(o).join(',');
      // Without privileges: as root the kernel's verifier would refuse the object before the VM ran it (test/kernel/errors.test.ts).
      const r = cli(['check', '--executor', 'vm', '--objects', objects, '--runs', '50', '--no-failure-db'], dir, { withoutCaps: true });
      expect(r.out).toMatch(/^kernel verifier: not run \(not root: missing /m);
      expect(r.code).toBe(2);
      expect(lines(r.err)).toHaveLength(1);
      expect(r.err).toMatch(
        /^kmesh-check: the VM stopped on a program fault, sockops_prog: fault at pc \d+ \(sockops_prog, sockops\.bpf\.c:\d+: .*\): bpf_sock_ops: dereference of a modified context pointer \(moved by 20 bytes before the access\), which the kernel's verifier rejects; with --executor kernel/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unwritable report path fails before the run, in one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-habits-'));
    mkdirSync(join(dir, 'adir'));
    const cases: [string[], RegExp][] = [
      [['--json', 'no/such/dir/r.json'], /--json no\/such\/dir\/r\.json: folder .* does not exist/],
      [['--junit', 'adir'], /--junit adir: is a directory/],
      [['--coverage-out', 'missing/lcov.info', '--executor', 'vm'], /--coverage-out missing\/lcov\.info: folder .* does not exist/],
    ];
    for (const [args, re] of cases) {
      const r = cli(['check', '--executor', 'model', '--runs', '100000', '--no-failure-db', ...args], dir);
      expect(r.code, args.join(' ')).toBe(2);
      expect(lines(r.err)).toHaveLength(1);
      expect(r.err).toMatch(re);
      // Nothing ran: no executor opened, no progress, no verdict.
      expect(r.out).toBe('');
    }
    // A folder the user may not write. Root may write anywhere, so as root the check runs as nobody
    // (/etc), or, in a checkout nobody cannot read, as root without capabilities (a folder of nobody's).
    const { prefix, nobody } = unprivilegedPrefix(bin);
    let folder = '/etc';
    if (process.getuid?.() === 0 && !nobody) {
      folder = mkdtempSync(join(tmpdir(), 'kc-nobodys-'));
      chmodSync(folder, 0o755);
      chownSync(folder, 65534, 65534);
    }
    const command = [...prefix, process.execPath, bin, 'check', '--executor', 'model', '--json', `${folder}/kc-r.json`];
    const r = spawnSync(command[0]!, command.slice(1), { cwd: tmpdir(), encoding: 'utf8' });
    if (folder !== '/etc') rmSync(folder, { recursive: true, force: true });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim()).toBe(`kmesh-check: --json ${folder}/kc-r.json: folder ${folder} is not writable; choose another path`);
    expect(r.stdout).toBe('');
  });

  it("--coverage-out needs the VM and writes lcov and HTML with it; the JSON report has every phase's program coverage", () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-habits-'));
    const model = cli(['check', '--executor', 'model', '--coverage-out', 'lcov.info'], dir);
    expect(model.code).toBe(2);
    expect(model.err).toMatch(/--coverage-out needs the userspace VM/);
    const r = cli(['check', '--executor', 'vm', '--runs', '200', '--no-failure-db', '--coverage-out', 'lcov.info', '--json', 'r.json'], dir);
    expect(r.code, r.err).not.toBe(2);
    // The JSON report holds each phase's program coverage: the routing programs', and those of the
    // acceleration and report phases, which run on VMs of their own.
    const json = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as Record<
      'acceleration' | 'reports',
      { programCoverage?: { programs: { program: string; executedInstructions: number }[] } }
    > & {
      programCoverage: { programs: { program: string }[] };
    };
    expect(json.programCoverage.programs.map((p) => p.program)).toContain('cgroup_connect4_prog');
    expect(json.acceleration.programCoverage?.programs.map((p) => p.program).sort()).toEqual(['ma_ops', 'ma_redirect']);
    expect(json.reports.programCoverage?.programs.map((p) => p.program).sort()).toEqual(['cgroup_skb_egress_prog', 'cgroup_skb_ingress_prog', 'sockops_prog']);
    for (const p of [...json.acceleration.programCoverage!.programs, ...json.reports.programCoverage!.programs]) expect(p.executedInstructions, p.program).toBeGreaterThan(0);
    expect(r.out).toMatch(/C source coverage: lines \d+\/\d+, branches \d+\/\d+ in \d+ files: lcov\.info \(lcov\), lcov\.html \(HTML\)/);
    const lcov = readFileSync(join(dir, 'lcov.info'), 'utf8');
    expect(lcov).toMatch(/^SF:.*\/cgroup_sock\.bpf\.c$/m);
    // Every phase's runs: authorization (the report phase's sockops) and acceleration lines hit too.
    const linesHit = (file: RegExp) =>
      lcov
        .split('end_of_record')
        .filter((r) => file.test(/^SF:(.*)$/m.exec(r)?.[1] ?? ''))
        .map((r) => Number(/^LH:(\d+)$/m.exec(r)?.[1]));
    expect(linesHit(/\/auth\.h$/)).toEqual([expect.any(Number)]);
    expect(linesHit(/\/auth\.h$/)[0]).toBeGreaterThan(0);
    expect(linesHit(/\/ma_ops\.bpf\.c$/)[0]).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'lcov.html'))).toBe(true);
  });
});
