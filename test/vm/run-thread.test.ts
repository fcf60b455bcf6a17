// A VM executor whose runs go to a thread of their own (bpf/vm/run-thread.ts, what `check` does
// with one job on two cores) reports what one running them in this thread reports: on objects
// with a planted bug found by exact outcome sets, the findings, statistics, invariant counts and
// program coverage are the same; outcome sets and observations come back equal, a program fault
// in the thread comes back as the same VmFault, and a closed executor refuses runs in one line.
// The thread runs the compiled dist/bpf/vm/run-thread-worker.js (npm run build:ts).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMutant } from '../../cli/mutants.js';
import { createVmExecutor, type VmExecutor } from '../../bpf/vm/executor.js';
import { VmFault } from '../../bpf/vm/program.js';
import { exploringVm } from '../../properties/exact-set.js';
import { generatedCases, runChecks, type RunOptions, type RunResult } from '../../properties/run.js';
import { EXACT_SET_OPTIONS } from '../../properties/judge.js';
import { lbDomain } from '../../model/lb-domain.js';
import type { CoverageSummary, ObjectPaths } from '../../model/executor.js';
import { buildVariant, objectsOf } from '../helpers/variant.js';
import { packageRoot } from '../../shared/package.js';

let objects: ObjectPaths;
let here: VmExecutor;
let threaded: VmExecutor;
const runs: Array<{ r: RunResult; coverage: CoverageSummary }> = [];

beforeAll(async () => {
  // Its random picks never give the last endpoint: only exact outcome sets show it.
  objects = buildMutant('random-never-last');
  here = await createVmExecutor({ objects });
  threaded = await createVmExecutor({ objects });
  await threaded.runInThread();
  for (const vm of [here, threaded]) {
    const opts: RunOptions = { seed: 3, runs: 1500, states: 'both', maxFindings: 3, env: vm.environment, executor: vm, exact: exploringVm(vm)!, targetCoverage: { paths: [] } };
    const r = await runChecks(opts);
    await vm.collectThreadCoverage();
    runs.push({ r, coverage: vm.coverage() });
  }
}, 120_000);

afterAll(async () => {
  await here?.close();
  await threaded?.close();
});

const findings = (r: RunResult) => r.counterexamples.map((c) => ({ phase: c.phase, seed: c.seed, path: c.path, case: c.case, hits: c.hits, signature: c.signature.id, paths: c.paths }));

describe('the VM run thread', () => {
  it('reports what runs in this thread report: findings, statistics, invariant counts, coverage', () => {
    const [one, other] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(one.r.counterexamples.map((c) => c.failure.invariant)).toContain('executor-covers-model');
    expect(findings(other.r)).toEqual(findings(one.r));
    expect(other.r.statistics.toJSON()).toEqual(one.r.statistics.toJSON());
    expect(other.r.invariants).toEqual(one.r.invariants);
    expect(other.r.cases).toBe(one.r.cases);
    // The thread's counts came home once: the same runs of each program as in this thread.
    expect(other.coverage).toEqual(one.coverage);
    expect(one.coverage.programs.find((p) => p.program === 'cgroup_connect4_prog')?.runs).toBeGreaterThan(0);
  });

  it('gives the same observations and outcome sets', async () => {
    const cases = generatedCases({ seed: 11, runs: 400, states: 'both', env: here.environment }).slice(0, 400);
    expect(await threaded.run(cases)).toEqual(await here.run(cases));
    const drawn = cases.filter((c) => lbDomain(c).length > 1).slice(0, 30);
    expect(drawn.length).toBeGreaterThan(5);
    const sets = await threaded.outcomeSets(drawn, EXACT_SET_OPTIONS);
    expect(sets).toEqual(here.outcomeSetsHere(drawn, EXACT_SET_OPTIONS));
    expect(sets.some((s) => s !== null && s.length > 1)).toBe(true);
  });

  it('throws a program fault of the thread here as the VmFault it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-thread-fault-'));
    // sockops reading `family` through a pointer moved to it first: the VM faults as the kernel's verifier refuses.
    const o = buildVariant(dir, [['sockops.bpf.c', '\t__u32 family = skops->family;', '\t__u32 *family_at = &skops->family;\n\tasm volatile("" : "+r"(family_at));\n\t__u32 family = *family_at;']]);
    const inHere = await createVmExecutor({ objects: objectsOf(o) });
    const inThread = await createVmExecutor({ objects: objectsOf(o) });
    try {
      await inThread.runInThread();
      const cases = generatedCases({ seed: 1, runs: 200, states: 'consistent', env: inHere.environment });
      const fault = async (vm: VmExecutor) => {
        try {
          await vm.run(cases);
        } catch (e) {
          return e;
        }
        throw new Error('no fault');
      };
      const a = await fault(inHere);
      const b = await fault(inThread);
      expect(a).toBeInstanceOf(VmFault);
      expect(b).toBeInstanceOf(VmFault);
      expect((b as VmFault).message).toBe((a as VmFault).message);
      expect((b as VmFault).message).toMatch(/^sockops_prog: fault at pc \d+ .*dereference of a modified context pointer/);
    } finally {
      await inHere.close();
      await inThread.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('check writes the same report with one job (its VM runs in a thread, on two cores) and with two', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-thread-cli-'));
    try {
      const args = ['check', '--executor', 'vm', '--objects', `${objects.connect},${objects.sockops},${objects.sendmsg}`, '--runs', '2000', '--seed', '4', '--no-failure-db'];
      const texts = [1, 2].map((jobs) => {
        const r = spawnSync(process.execPath, [join(packageRoot(), 'bin/kmesh-check.js'), ...args, '--jobs', String(jobs), '--json', `r${jobs}.json`], {
          cwd: dir,
          encoding: 'utf8',
          timeout: 240_000,
        });
        expect(r.status, r.stderr).toBe(1);
        return JSON.stringify(JSON.parse(readFileSync(join(dir, `r${jobs}.json`), 'utf8')), (k: string, v: unknown) => (/durationMs$|seconds$/i.test(k) ? undefined : v), 2);
      });
      const report = JSON.parse(texts[0]!) as { findings: Array<{ invariant: string }>; programCoverage: unknown };
      expect(report.findings.map((f) => f.invariant)).toContain('executor-covers-model');
      expect(report.programCoverage).toBeTruthy();
      expect(texts[1]).toBe(texts[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('refuses runs once closed, in one line', async () => {
    const vm = await createVmExecutor({ objects });
    await vm.runInThread();
    await vm.close();
    await expect(vm.run(generatedCases({ seed: 1, runs: 5, states: 'consistent', env: vm.environment }))).rejects.toThrow(/^the VM executor is closed$/);
  });
});
