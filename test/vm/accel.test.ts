// Same-node acceleration on the userspace VM: our ma_ops/ma_redirect run on the VM's emulated
// loopback TCP (bpf/vm/accel-sockets.ts) give exactly the model's observation on generated cases
// and on the two-namespace isolation cases; every acceleration mutant is caught by the invariant
// meant for it, through the acceleration checks as check runs them; objects that lack the
// programs are refused in one line.

import { formatSectionFinding } from '../../cli/section-findings.js';
import { accelSpec } from '../../properties/accel.js';
import type { SectionSpec } from '../../properties/section-check.js';
import { describe, expect, it } from 'vitest';
import { ACCEL_MUTANTS, buildAccelMutant } from '../../cli/accel-mutants.js';
import { accelPhase, accelRuns } from '../../cli/accel-phase.js';
import { AccelVmExecutor } from '../../bpf/vm/accel-executor.js';
import { NETNS_COOKIE_BASE } from '../../bpf/vm/accel-sockets.js';
import { decodeSockKey } from '../../bpf/codec/accel.js';
import type { HashMap, SockHashMap } from '../../bpf/vm/maps.js';
import { defaultObjects } from '../../shared/package.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { accelInvariants } from '../../model/accel/invariants.js';
import { expectedAccel } from '../../model/accel/model.js';
import { runAccelChecks } from '../../properties/accel.js';
import { ACCEL_CASES, ISOLATION, ISOLATION_BOTH_INSIDE, accelViolations } from '../support/accel-cases.js';

describe('same-node acceleration on the VM', () => {
  const ex = new AccelVmExecutor();

  it('generated cases: the observation is the model’s, and every invariant is exercised', () => {
    const obs = ACCEL_CASES.map((c) => ex.runOne(c));
    expect(Object.fromEntries(accelViolations(ACCEL_CASES, obs))).toEqual({});
    ACCEL_CASES.forEach((c, i) => expect(obs[i], `case ${i}`).toEqual(expectedAccel(c)));
    for (const inv of accelInvariants) expect(ACCEL_CASES.filter((c, i) => inv.check(c, obs[i]!).status === 'holds').length, inv.name).toBeGreaterThan(20);
    const flat = obs.flatMap((o) => o.pairs.flatMap((p) => [p.toServer, p.toClient])).filter((d) => d.received.length > 0);
    expect(flat.some((d) => d.viaTcp === 0)).toBe(true);
    expect(flat.some((d) => d.viaTcp > 0)).toBe(true);
  });

  it('two namespaces, one four-tuple: each connection stays its own', () => {
    const o = ex.runOne(ISOLATION);
    expect(o).toEqual(expectedAccel(ISOLATION));
    expect(o.pairs[0]!.toServer.viaTcp).toBe(0);
    expect(o.pairs[1]!.toServer.viaTcp).toBe(8);
    expect(ex.runOne(ISOLATION_BOTH_INSIDE)).toEqual(expectedAccel(ISOLATION_BOTH_INSIDE));
  });

  it('while open, both maps hold each connection under keys with its namespace cookie; a send is redirected, not carried by TCP', () => {
    const s = ex.sockets;
    const [p0, p1] = ISOLATION_BOTH_INSIDE.pairs;
    s.begin();
    s.setFilter(ISOLATION_BOTH_INSIDE.filter);
    const a = s.connect(p0!);
    const b = s.connect(p1!);
    const ops = ex.vm.map<SockHashMap>('sock_ops_map');
    const cookies = [...ops.socks.values()].map((e) => decodeSockKey(e.key).cookie).sort();
    expect(cookies).toEqual([0n, 0n, 1n, 1n].map((n) => BigInt(NETNS_COOKIE_BASE) + n));
    expect(ex.vm.map<HashMap>('sock_proxy_map').keys().length).toBe(4);
    s.send(a.client, Uint8Array.of(1, 2, 3));
    expect([...s.read(b.server, 0)]).toEqual([]);
    expect([...s.read(a.server, 3)]).toEqual([1, 2, 3]);
    expect(s.tcpReceived(a.server)).toBe(0);
    for (const end of [a.client, a.server, b.client, b.server]) s.close(end);
    const left = s.readMaps(true);
    expect(left.opsKeys.length + left.proxy.length).toBe(0);
  });
});

describe('acceleration mutants on the VM', () => {
  for (const m of ACCEL_MUTANTS) {
    it(`${m.name}: caught by ${m.expectedInvariant} on the generated sample and by the acceleration checks`, async () => {
      const mx = new AccelVmExecutor(buildAccelMutant(m.name));
      const cases = [ISOLATION, ISOLATION_BOTH_INSIDE, ...ACCEL_CASES];
      expect([...accelViolations(cases, await mx.run(cases)).keys()]).toContain(m.expectedInvariant);
      const r = await runAccelChecks({ seed: 1, runs: accelRuns(2000), executor: mx });
      expect(r.failure?.invariant).toBeDefined();
    });
  }
});

describe('acceleration phase of check on the VM', () => {
  it('passes on ours and fails on a mutant with a shrunk, printed counterexample', async () => {
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    expect((await accelPhase({ executor: 'vm', seed: 42, runs: 300, userObjects: false, log })).status).toBe('pass');
    expect(lines.join('\n')).toMatch(/acceleration \(section 8\): 30 cases on the VM/);
    const r = await accelPhase({ executor: 'vm', seed: 42, runs: 300, userObjects: false, objects: buildAccelMutant('ma-entries-kept'), log });
    expect(r.status).toBe('fail');
    expect(r.result?.failure?.invariant).toBe('redirect-cleanup');
    expect(r.result?.failure?.case.pairs.length).toBe(1);
    // The phase counts it; check prints it like every finding (cli/section-findings.ts).
    expect(lines.join('\n')).toMatch(/acceleration \(section 8\): 1 finding \(printed below\)/);
    expect(formatSectionFinding(accelSpec() as SectionSpec<unknown, unknown>, r.result!.failure!, { executor: 'vm', objectsFlag: null })).toMatch(
      /FINDING: invariant "redirect-cleanup" broke \(acceleration \(section 8\), on the vm executor\)/,
    );
  });
});

describe('an executor that fails', () => {
  it('is an error of the acceleration checks, not a pass', async () => {
    const broken = { name: 'broken', run: () => Promise.reject(new KmeshCheckError('environment', 'no sockets today')), close: () => Promise.resolve() };
    await expect(runAccelChecks({ seed: 1, runs: 20, executor: broken })).rejects.toThrow('no sockets today');
  });
});

describe('objects without the acceleration programs', () => {
  it('are refused with a one-line error naming the missing program', () => {
    const other = defaultObjects().sockops;
    let err: (Error & { code?: string }) | null = null;
    try {
      new AccelVmExecutor({ ops: other, redirect: other });
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe('object-content');
    expect(err?.message).toMatch(/no acceleration object has program 'ma_ops'/);
    expect(err?.message).not.toMatch(/\n/);
  });
});
