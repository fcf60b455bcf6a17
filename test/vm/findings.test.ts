// Findings a user can act on, through the command line on the VM (no privileges needed): objects
// with two planted bugs give one run that reports both, each shrunk, explained and replayable from
// its printed command; a mixed-family finding's explanation shows the address the program wrote;
// failures saved from --objects X survive a plain check and replay on X; an invalid saved file is
// one line and the run goes on; a baseline accepts known findings and fails on new ones only; Ctrl-C
// still reports (on the kernel executor: test/kernel/interrupt.test.ts). The mutants are built
// with clang (scripts/setup.sh installs it).

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBaseline, buildMutant, buildMutantSet } from '../../cli/mutants.js';
import { packageRoot } from '../../shared/package.js';
import { parseAddress } from '../../model/address.js';
import type { ObjectPaths } from '../../model/executor.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { runChecks } from '../../properties/run.js';
import type { Case } from '../../model/domain.js';
import type { ReportJson } from '../../cli/report.js';
import { STOPPED_AT_FIRST, type SectionPhaseJson } from '../../cli/section-phases.js';
import type { Explanation } from '../../cli/explain.js';

const root = packageRoot();
const bin = join(root, 'bin/kmesh-check.js');

function cli(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const objectsArg = (o: ObjectPaths) => `${o.connect},${o.sockops},${o.sendmsg}`;
const report = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as ReportJson;

/** The IPv6 addresses a case's state holds (backends and waypoints). */
function ipv6In(c: Case): string[] {
  const s = c.state;
  return [...s.backends.flatMap((b) => [b.addr, b.waypoint.addr]), ...s.services.map((v) => v.waypoint.addr)].filter((a) => a.includes(':') && !/^::$/.test(a));
}

let both: ObjectPaths;
let tlvOnly: ObjectPaths;

beforeAll(() => {
  // Two bugs of different kinds: connect writes the first 4 bytes of an IPv6 target on an AF_INET
  // socket, and sendmsg prefixes every message with the TLV.
  both = buildMutantSet(['family-truncate', 'tlv-repeated']);
  tlvOnly = buildMutant('tlv-repeated');
});

describe('one run on objects with two planted bugs', () => {
  let dir: string;
  let r: ReturnType<typeof cli>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kc-findings-'));
    r = cli(['check', '--executor', 'vm', '--objects', objectsArg(both), '--json', 'r.json', '--no-failure-db'], dir);
  });

  it('reports both, each shrunk, explained and replayable from its printed command', () => {
    expect(r.code, r.err).toBe(1);
    const rep = report(dir, 'r.json');
    expect(rep.findings.length).toBeGreaterThanOrEqual(2);
    // Distinct signatures, each with its hit count; the hits add up to no more than the failing cases.
    expect(new Set(rep.findings.map((f) => f.signature)).size).toBe(rep.findings.length);
    for (const f of rep.findings) expect(f.hits).toBeGreaterThan(0);
    const tlv = rep.findings.find((f) => f.signatureText === 'send | stream.payload');
    const family = rep.findings.find((f) => f.signatureText === 'connect | result');
    expect(tlv, rep.findings.map((f) => f.signatureText).join('\n')).toBeDefined();
    expect(family, rep.findings.map((f) => f.signatureText).join('\n')).toBeDefined();
    // The summary lists every finding.
    for (const f of rep.findings) expect(r.out).toContain(f.signature);
    // The family bug was hit on the model's family-mismatch path (where the model refuses to write).
    expect(family!.modelPaths['family-mismatch']).toBeGreaterThan(0);
    for (const f of [tlv!, family!]) {
      expect(f.size).toBeLessThan(f.shrunkFrom + 1);
      expect(f.size).toBeLessThanOrEqual(8);
      const x = f.explanation as Explanation;
      expect(x.steps.some((s) => s.program.length > 0)).toBe(true);
      // Replayed from the printed line, verbatim: same signature, same case, exit 1.
      const args = f.replay.replace(/^kmesh-check /, '').split(' ');
      expect(args).toContain('--objects');
      const again = cli([...args, '--no-explain'], dir);
      expect(again.code, again.out + again.err).toBe(1);
      expect(again.out).toContain(`signature ${f.signature}`);
      for (const line of f.text.split('\n').filter((l) => /^ {4}\d+\. /.test(l))) expect(again.out).toContain(line);
    }
  });

  it('explains a mixed-family finding with the address the program wrote', () => {
    expect(r.code).toBe(1);
    const f = report(dir, 'r.json').findings.find((x) => x.signatureText === 'connect | result');
    expect(f).toBeDefined();
    const x = f!.explanation as Explanation;
    const writes = x.events.filter((e) => e.kind === 'ctx-write').map((e) => (e as { dest: string }).dest);
    // The program wrote the first 4 bytes of an IPv6 target as an IPv4 address: that is in the trace.
    const truncated = ipv6In(f!.case).map((a) => [...parseAddress(a).subarray(0, 4)].join('.'));
    expect(truncated.length).toBeGreaterThan(0);
    expect(writes.some((w) => truncated.some((t) => w.startsWith(`${t}:`)))).toBe(true);
    // And the text says so, beside the model's family-mismatch path.
    expect(f!.text.length).toBeGreaterThan(0);
    expect(r.out).toMatch(/model: +pass \d .*path (family-mismatch|random|strict|failover|backend-missing|service-waypoint|backend-waypoint|direct-backend-waypoint)/);
    expect(r.out).toMatch(/program: wrote destination \d+\.\d+\.\d+\.\d+:\d+/);
  });
});

describe('the failure database', () => {
  it('keeps failures of --objects X through a plain check and replays them on X; an invalid file is one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-db-'));
    const first = cli(['check', '--executor', 'vm', '--objects', objectsArg(tlvOnly), '--runs', '400', '--no-explain'], dir);
    expect(first.code).toBe(1);
    const failures = join(dir, '.kmesh-check/failures');
    const saved = readdirSync(failures).filter((n) => n.endsWith('.json'));
    expect(saved.length).toBeGreaterThan(0);
    const entry = JSON.parse(readFileSync(join(failures, saved[0]!), 'utf8'));
    expect(entry.objects.sendmsg).toBe(tlvOnly.sendmsg);
    expect(entry.objectHashes.sendmsg).toMatch(/^[0-9a-f]{64}$/);
    expect(entry.executor).toBe('vm');

    // A file with the right shape but an invalid value.
    const bad = join(failures, 'badvalue.json');
    writeFileSync(bad, JSON.stringify({ ...entry, id: 'badbad', case: { ...entry.case, ops: [{ op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port: 70000 } }] } }));

    // A valid file (of our objects: an earlier version's null) whose case the executor refuses.
    const orphan = join(failures, 'orphan.json');
    writeFileSync(
      orphan,
      JSON.stringify({ ...entry, id: 'cafe01', objects: null, objectHashes: undefined, case: { ...entry.case, ops: [{ op: 'connect', sock: 9, dest: { addr: '10.0.0.1', port: 80 } }] } }),
    );

    const plain = cli(['check', '--executor', 'vm', '--runs', '200', '--no-explain'], dir);
    expect(plain.code, plain.out + plain.err).toBe(0);
    expect(plain.out).toMatch(new RegExp(`${saved.length} of other objects or executors skipped`));
    const badLines = plain.out.split('\n').filter((l) => l.includes('badvalue.json'));
    expect(badLines).toHaveLength(1);
    expect(badLines[0]).toMatch(/not a valid saved failure \(case\.ops\[0\]\.dest .*\); skipped/);
    for (const n of saved) expect(existsSync(join(failures, n))).toBe(true);
    const orphanLines = plain.out.split('\n').filter((l) => l.includes('orphan.json'));
    expect(orphanLines).toHaveLength(1);
    expect(orphanLines[0]).toMatch(/cannot be replayed \(.*socket 9.*\); skipped/);

    // Replayed on its own objects (not ours) without naming them.
    const replay = cli(['replay', '--case', join(failures, saved[0]!), '--no-explain'], dir);
    expect(replay.code, replay.out + replay.err).toBe(1);
    expect(replay.out).toContain(tlvOnly.sendmsg);
    // Its replay line names the file (the seed and path give the case as first generated, not as saved).
    expect(replay.out).toContain(`replay: kmesh-check replay --case ${join(failures, saved[0]!)} --executor vm`);
    expect(replay.out).toMatch(/size \d+ \(map entries \+ operations; as saved in /);

    // Checking X again replays them first, and they still fail there: nothing is removed.
    const again = cli(['check', '--executor', 'vm', '--objects', objectsArg(tlvOnly), '--runs', '100', '--no-explain'], dir);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/still fails/);
    // Printed with the replay line of its file, as replay --case prints it.
    expect(again.out).toMatch(/SAVED FAILURE[\s\S]*replay: kmesh-check replay --case \S+\.json --executor vm/);
    for (const n of saved) expect(existsSync(join(failures, n))).toBe(true);
  });

  it('removes a failure once it passes on its own objects, rebuilt in place after a fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-db-'));
    const own: ObjectPaths = { connect: join(dir, 'connect.o'), sockops: join(dir, 'sockops.o'), sendmsg: join(dir, 'sendmsg.o') };
    for (const r of ['connect', 'sockops', 'sendmsg'] as const) copyFileSync(tlvOnly[r], own[r]);
    expect(cli(['check', '--executor', 'vm', '--objects', objectsArg(own), '--runs', '300', '--no-explain'], dir).code).toBe(1);
    const failures = join(dir, '.kmesh-check/failures');
    const saved = readdirSync(failures).filter((n) => n.endsWith('.json'));
    expect(saved.length).toBeGreaterThan(0);
    // The fix: the correct sendmsg object at the same path.
    copyFileSync(buildBaseline().sendmsg, own.sendmsg);
    const fixed = cli(['check', '--executor', 'vm', '--objects', objectsArg(own), '--runs', '300', '--no-explain'], dir);
    expect(fixed.code, fixed.out).toBe(0);
    expect(fixed.out).toMatch(/passes now on its own objects: removed/);
    for (const n of saved) expect(existsSync(join(failures, n))).toBe(false);
  });
});

describe('a baseline', () => {
  it("accepts a mutant's findings, then fails only on the findings of a second bug", () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-baseline-'));
    const a = cli(['check', '--executor', 'vm', '--objects', objectsArg(tlvOnly), '--runs', '1000', '--json', 'a.json', '--no-failure-db', '--no-explain'], dir);
    expect(a.code).toBe(1);
    const b = cli(['baseline', '--from', 'a.json', '--out', 'accepted.json'], dir);
    expect(b.code, b.err).toBe(0);
    const accepted = JSON.parse(readFileSync(join(dir, 'accepted.json'), 'utf8'));
    expect(accepted.accepted.length).toBe(report(dir, 'a.json').findings.length);

    // Same objects, another seed: every finding is known, the run passes.
    const known = cli(
      ['check', '--executor', 'vm', '--seed', '7', '--runs', '1000', '--objects', objectsArg(tlvOnly), '--baseline', 'accepted.json', '--json', 'k.json', '--no-failure-db', '--no-explain'],
      dir,
    );
    expect(known.code, known.out).toBe(0);
    const k = report(dir, 'k.json');
    expect(k.findings.length).toBeGreaterThan(0);
    expect(k.findings.every((f) => f.status === 'known')).toBe(true);
    expect(known.out).toMatch(/verdict: PASS: no new finding/);

    // A second bug added: the run fails, on the new findings only.
    const more = cli(['check', '--executor', 'vm', '--runs', '1000', '--objects', objectsArg(both), '--baseline', 'accepted.json', '--json', 'm.json', '--no-failure-db', '--no-explain'], dir);
    expect(more.code).toBe(1);
    const m = report(dir, 'm.json');
    const fresh = m.findings.filter((f) => f.status === 'new');
    expect(fresh.length).toBeGreaterThan(0);
    for (const f of fresh) expect(f.signatureText).toMatch(/^connect \|/);
    expect(m.findings.some((f) => f.status === 'known')).toBe(true);
    expect(m.failures).toBe(fresh.length);

    // The baseline's own objects without the bug: accepted findings are listed as fixed.
    const fixed = cli(['check', '--executor', 'vm', '--runs', '300', '--baseline', 'accepted.json', '--json', 'f.json', '--no-failure-db', '--no-explain'], dir);
    expect(fixed.code).toBe(0);
    expect(report(dir, 'f.json').baseline?.fixed.length).toBe(accepted.accepted.length);
  });

  it('does not hide another bug whose findings share a signature with an accepted one, on another model path', () => {
    // Two load-balancing bugs, both a wrong connect result: failover taking the wrong group, and
    // locality strict taking the first non-empty group instead of the first.
    const dir = mkdtempSync(join(tmpdir(), 'kc-baseline-'));
    const run = (mutant: string, out: string, more: string[] = []) =>
      cli(['check', '--executor', 'vm', '--objects', objectsArg(buildMutant(mutant)), '--runs', '1000', '--json', out, '--no-failure-db', '--no-explain', ...more], dir);
    expect(run('failover-last-nonempty', 'a.json').code).toBe(1);
    expect(cli(['baseline', '--from', 'a.json', '--out', 'accepted.json'], dir).code).toBe(0);
    const b = run('strict-first-nonempty', 'b.json', ['--baseline', 'accepted.json']);
    expect(b.code, b.out).toBe(1);
    const rep = report(dir, 'b.json');
    const accepted = new Set(report(dir, 'a.json').findings.map((f) => f.signature));
    const shared = rep.findings.filter((f) => accepted.has(f.signature));
    expect(shared.length, 'the second bug shows under an accepted signature').toBeGreaterThan(0);
    for (const f of shared) expect(f.status).toBe('new');
    expect(rep.baseline?.newPaths.map((n) => n.signature).sort()).toEqual(shared.map((f) => f.signature).sort());
    expect(b.out).toMatch(/new path \w+ +connect \| result: hit on .*strict/);
  });
});

describe('Ctrl-C', () => {
  it('stops the run, prints the summary and writes the partial reports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-sigint-'));
    const child = spawn(process.execPath, [bin, 'check', '--executor', 'model', '--runs', '10000000', '--json', 'r.json', '--junit', 'r.xml'], { cwd: dir });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // Generation has started once the first progress line is out.
    const started = new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => d.toString().includes('checking: ') && resolve()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await started;
    child.kill('SIGINT');
    const code = await exited;
    expect(code, out).toBe(130);
    expect(out).toMatch(/^summary: \d+ sampled cases/m);
    expect(out).toMatch(/stopped early by Ctrl-C/);
    const rep = report(dir, 'r.json');
    expect(rep.stopped).toBe(true);
    expect(rep.cases).toBeGreaterThan(0);
    expect(rep.cases).toBeLessThan(10_000_000);
    expect(readFileSync(join(dir, 'r.xml'), 'utf8')).toMatch(/<testsuites/);
  });
});

describe('Ctrl-C during an exhaustive exploration', () => {
  it('ends the exploration where it is, in every job, and reports it incomplete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-sigint-x-'));
    // Scope 3 takes hours: only the Ctrl-C can end this run within the test's time.
    const child = spawn(process.execPath, [bin, 'check', '--executor', 'vm', '--exhaustive', '--scope', '3', '--jobs', '2', '--json', 'r.json', '--no-failure-db'], { cwd: dir });
    let out = '';
    const exploring = new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // The exploration starts right after the executor line; give it (and the job's thread) a moment.
        if (out.includes('kmesh-check: executor')) setTimeout(resolve, 2_000);
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await exploring;
    child.kill('SIGINT');
    const code = await exited;
    expect(code, out).toBe(130);
    expect(out).toMatch(/exhaustive: incomplete for scope 3: \d+ states.*stopped by Ctrl-C/);
    const rep = report(dir, 'r.json') as ReportJson & { exploration?: { complete: boolean; truncated: string[]; states: number } };
    expect(rep.stopped).toBe(true);
    expect(rep.exploration?.complete).toBe(false);
    expect(rep.exploration?.truncated).toContain('stopped by Ctrl-C');
    expect(rep.exploration?.states).toBeGreaterThan(0);
  }, 60_000);
});

describe('--max-findings and --stop-at-first', () => {
  it('caps the findings shrunk (the rest counted), or stops at the first failing case', async () => {
    const vm = await createVmExecutor({ objects: both });
    try {
      const base = { seed: 42, runs: 600, states: 'both' as const, env: vm.environment, executor: vm };
      const all = await runChecks(base);
      expect(all.counterexamples.length).toBeGreaterThanOrEqual(2);
      const one = await runChecks({ ...base, maxFindings: 1 });
      expect(one.counterexamples).toHaveLength(1);
      expect(one.counterexamples[0]!.signature.id).toBe(all.counterexamples[0]!.signature.id);
      expect(one.unclustered).toBe(all.counterexamples.slice(1).reduce((n, c) => n + c.hits, 0) + all.unclustered);
      const first = await runChecks({ ...base, stopAtFirst: true });
      expect(first.counterexamples).toHaveLength(1);
      expect(first.counterexamples[0]!.hits).toBe(1);
      expect(first.cases).toBeLessThan(all.cases);
    } finally {
      await vm.close();
    }
  });

  it('--stop-at-first stops the exhaustive phase at its first finding too, and asks no sampling quota of the run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-first-'));
    const r = cli(['check', '--executor', 'vm', '--objects', objectsArg(both), '--stop-at-first', '--json', 'r.json', '--no-failure-db', '--no-explain'], dir);
    expect(r.code, r.err).toBe(1);
    const rep = report(dir, 'r.json');
    expect(rep.findings).toHaveLength(1);
    expect(r.out).toMatch(/^exhaustive: incomplete for scope 1: .*stopped at the first finding; 1 finding \(1 failing states\)/m);
    expect(r.out).toMatch(/^summary: \d+ states of the exhaustive phase in /m);
    expect(r.out).not.toMatch(/stopped by the time limit/);
    expect(rep.coverage.ok).toBe(true);
    // The acceleration and report phases do not run after it.
    const skipped = { status: 'skipped', why: STOPPED_AT_FIRST };
    const phases = rep as ReportJson & { acceleration: SectionPhaseJson; reports: SectionPhaseJson };
    expect([phases.acceleration, phases.reports]).toEqual([skipped, skipped]);
  }, 120_000);
});
