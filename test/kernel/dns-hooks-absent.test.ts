// A user's objects without the section 6 hooks: both executors run them without the hooks and
// say so, and `check` skips the DNS phase with a line saying why instead of reporting the
// missing redirect as a finding; with our objects the phase runs.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { createKernelExecutor } from '../../bpf/kernel/executor.js';
import { packageRoot } from '../../shared/package.js';
import { dnsPhaseRuns, phasesFor } from '../../properties/run.js';
import { DNS_SCENARIOS, PROXY, A } from '../support/dns-scenarios.js';
import { dataPathObjects, fixtureObject } from '../fixtures/vm/helpers.js';

const noDns = () => ({ ...dataPathObjects(), connect: fixtureObject('connect_no_dns') });
const first = DNS_SCENARIOS[0]!;

describe('objects without the DNS hooks', () => {
  it('the VM runs them without the hooks: the query goes to the server it names', async () => {
    const vm = await createVmExecutor({ objects: noDns() });
    expect(vm.dnsHooks).toEqual([]);
    const [obs] = await vm.run([first.case]);
    expect(obs![1]).toMatchObject({ arrivedAt: { addr: A, port: 53 } });
    await vm.close();
    const ours = await createVmExecutor({ objects: dataPathObjects() });
    expect((await ours.run([first.case]))[0]![1]).toMatchObject({ arrivedAt: { addr: PROXY, port: 53 } });
    await ours.close();
  });

  it('the kernel executor attaches none and observes the same', async () => {
    if (process.geteuid?.() !== 0) throw new Error('this test runs the kernel executor and requires root');
    const k = await createKernelExecutor({ objects: noDns() });
    try {
      expect(k.dnsHooks).toEqual([]);
      const [obs] = await k.run([first.case]);
      expect(obs![1]).toMatchObject({ arrivedAt: { addr: A, port: 53 } });
    } finally {
      await k.close();
    }
  });

  it('the DNS phase runs only when the objects have cgroup/sendmsg4', () => {
    expect(dnsPhaseRuns(undefined)).toBe(true);
    const stub = (dnsHooks: string[]) => ({ name: 'x', environment: {} as never, dnsHooks, run: async () => [], close: async () => {} });
    expect(dnsPhaseRuns(stub(['sendmsg4', 'recvmsg4']))).toBe(true);
    expect(dnsPhaseRuns(stub(['recvmsg4', 'recvmsg6']))).toBe(false);
    expect(phasesFor('consistent', false).map((p) => p.shape)).toEqual(['single', 'sequence']);
    expect(phasesFor('consistent').map((p) => p.shape)).toEqual(['single', 'sequence', 'dns']);
  });

  it('check says so, skips the DNS phase and passes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-nodns-'));
    const o = noDns();
    const bin = join(packageRoot(), 'bin/kmesh-check.js');
    const r = spawnSync(process.execPath, [bin, 'check', '--executor', 'vm', '--runs', '2000', '--no-failure-db', '--objects', `${o.connect},${o.sockops},${o.sendmsg}`, '--json', 'r.json'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.stdout).toMatch(
      /DNS over UDP sends \(section 6\): the objects have no cgroup\/sendmsg4, cgroup\/recvmsg4, cgroup\/recvmsg6: checked without them \(the dns phase and the exhaustive datagram sequences are skipped\)/,
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(report.dnsHooks).toEqual([]);
    expect(report.statistics.dnsCases).toBe(0);
    // 2000 sampled cases, plus any targeted generation added toward a connect class sampling saw too rarely.
    expect(report.cases - (report.coverage.targeted ?? 0)).toBe(2000);
    expect(report.exploration).toMatchObject({ findings: 0 });
  }, 150_000);
});
