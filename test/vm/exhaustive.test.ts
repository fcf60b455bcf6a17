// Bounded-exhaustive exploration (properties/explore.ts) on the VM, no privileges: on our objects
// a focused part of the scope-1 tree is complete with no finding and deterministic, a leaf replays
// to its concrete case, shards partition the tree and merge wants every shard, scope 2 adds one
// deviation, and the CLI's report is the same on every run (the mutant and kernel tests are in
// test/kernel/exhaustive*.test.ts: they build objects and run the kernel executor).

import { describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { caseAtPath, explore, leafAt, pathText } from '../../properties/explore.js';
import { nextPrefix } from '../../bpf/runner/choices.js';
import { exactVerdict } from '../../properties/exact-set.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { START_VARIANTS, describeSkeleton, skeletons, startOf, type Skeleton } from '../../generators/exhaustive/skeletons.js';
import { packageRoot } from '../../shared/package.js';
import type { Case } from '../../model/domain.js';
import type { Executor } from '../../model/executor.js';
import { mergeExplorations } from '../../cli/commands/merge.js';
import type { ReportJson } from '../../cli/report.js';

const DATAGRAM = new Set(['sendto-recv-twice', 'sendto-deliver-recv', 'sendto-deliver6-recv', 'connect-send-recv', 'connect-sendto-recv']);
const indicesOf = (list: readonly Skeleton[], keep: (s: Skeleton) => boolean): number[] => list.flatMap((s, i) => (keep(s) ? [i] : []));

// connect-send, enrolled, AF_INET TCP to an ordinary IPv4 address on the ordinary port.
const TCP_V4 = skeletons(1).findIndex((s) => s.sequence === 'connect-send' && s.enrolled && s.family === 'inet' && s.protocol === 'tcp' && s.destClass === 'ipv4' && s.port === 80);

describe('bounded-exhaustive exploration', () => {
  it('is complete with no finding on our objects, and deterministic', async () => {
    const vm = await createVmExecutor({});
    const run = () => explore({ scope: 1, env: DEFAULT_ENVIRONMENT, vm, onlySkeletons: [TCP_V4] });
    const a = await run();
    expect(a.complete).toBe(true);
    expect(a.truncated).toEqual([]);
    expect(a.counterexamples).toEqual([]);
    expect(a.failingStates).toBe(0);
    expect(a.states).toBeGreaterThan(100);
    const b = await run();
    expect({ ...b, durationMs: 0 }).toEqual({ ...a, durationMs: 0 });
    await vm.close();
  }, 120_000);

  it('a leaf replays to the same concrete case, whose exact outcome sets agree without lazy maps', async () => {
    const vm = await createVmExecutor({});
    // frontend present -> fresh id 1; service 1 present; then first alternatives: a random service
    // whose counts and ports are decided by reads.
    const c = caseAtPath(1, `${TCP_V4}.1.1.0.1`, DEFAULT_ENVIRONMENT, vm);
    expect(c.state.frontends).toEqual([{ addr: '10.0.0.1', upstreamId: 1 }]);
    expect(c.state.services.map((s) => s.id)).toEqual([1]);
    expect(outcomes(c, DEFAULT_ENVIRONMENT).length).toBeGreaterThan(0);
    expect(exactVerdict(c, DEFAULT_ENVIRONMENT, vm, 1)).toBeNull();
    expect(caseAtPath(1, `${TCP_V4}.1.1.0.1`, DEFAULT_ENVIRONMENT, vm)).toEqual(c);
    await vm.close();
  }, 60_000);

  it("judges each leaf with the model's outcomes on its lazy view, which are those of its concrete case", async () => {
    const vm = await createVmExecutor({});
    const walked: string[] = [];
    // Every leaf of a connect and of a datagram sequence at scope 1, and of an AF_INET6 connect to a v4-mapped address at scope 2.
    const closeConnect = skeletons(2).findIndex((s) => s.sequence === 'connect-send' && s.family === 'inet6' && s.destClass === 'v4-mapped');
    for (const [scope, skeleton] of [
      [1, TCP_V4],
      [1, indicesOf(skeletons(1), (s) => DATAGRAM.has(s.sequence))[0]!],
      [2, closeConnect],
    ] as const) {
      expect(skeleton).toBeGreaterThanOrEqual(0);
      for (let prefix: number[] | null = []; prefix !== null;) {
        const leaf = leafAt(scope, skeleton, prefix, DEFAULT_ENVIRONMENT, vm);
        expect(leaf.traces).not.toBeNull();
        expect(leaf.traces).toEqual(outcomes(leaf.case, DEFAULT_ENVIRONMENT));
        walked.push(pathText(skeleton, prefix));
        prefix = nextPrefix(leaf.taken);
      }
    }
    expect(walked.length).toBeGreaterThan(100);
    await vm.close();
  }, 120_000);

  it('takes the verdicts of every batch an executor judges, the last one too, at the same points of the walk', async () => {
    const vm = await createVmExecutor({});
    const runner = await createVmExecutor({});
    // An executor that gets every connect to a peer wrong: each such case must be a failing state.
    const wrong = new Set<string>();
    const lying: Executor = {
      name: 'lying',
      environment: runner.environment,
      run: async (cases: readonly Case[]) =>
        (await runner.run(cases)).map((obs, i) =>
          obs.map((o) => {
            if (o.op !== 'connect' || !o.peer) return o;
            wrong.add(JSON.stringify(cases[i]));
            return { ...o, peer: { ...o.peer, port: o.peer.port ^ 1 } };
          }),
        ),
      close: () => runner.close(),
    };
    try {
      const run = (stopAtFirst: boolean) => explore({ scope: 1, env: DEFAULT_ENVIRONMENT, vm, executor: lying, onlySkeletons: [TCP_V4], stopAtFirst, maxFindings: 0 });
      const all = await run(false);
      // Batches of 64: more than one, and the last one partial.
      expect(all.states % 64).not.toBe(0);
      expect(all.states).toBeGreaterThan(128);
      expect(wrong.size).toBeGreaterThan(0);
      expect(all.failingStates).toBe(wrong.size);
      const first = await run(true);
      expect(first.failingStates).toBeGreaterThan(0);
      expect(first.states).toBeLessThan(all.states);
      expect({ ...(await run(true)), durationMs: 0 }).toEqual({ ...first, durationMs: 0 });
    } finally {
      await vm.close();
      await lying.close();
    }
  }, 120_000);

  it('datagram sequences (sendto, recvfrom, deliver): UDP only, the DNS proxy absent or of either family, complete with no finding on our objects', async () => {
    const all1 = skeletons(1);
    const datagram1 = indicesOf(all1, (s) => DATAGRAM.has(s.sequence));
    expect(datagram1.length).toBeGreaterThan(0);
    for (const i of datagram1) expect(all1[i]).toMatchObject({ protocol: 'udp' });
    // AF_INET6 queries the send hook redirects (to v4-mapped servers) from scope 1 in the sequence
    // made for their restore only, at no cost.
    const mapped1 = all1.filter((s) => s.destClass === 'v4-mapped');
    expect(new Set(mapped1.map((s) => s.sequence))).toEqual(new Set(['sendto-deliver6-recv']));
    for (const s of mapped1) expect(s.deviations).toBe(0);
    const all2 = skeletons(2);
    // AF_INET6 to v4-mapped servers, connected and not, from scope 2.
    const mapped2 = indicesOf(all2, (s) => DATAGRAM.has(s.sequence) && s.destClass === 'v4-mapped');
    expect(new Set(mapped2.map((i) => all2[i]!.sequence))).toEqual(DATAGRAM);
    const vm = await createVmExecutor({});
    try {
      // The proxy read by the send hook: absent, then present with an IPv4 address of the pool
      // (server A's or B's: a reply's source is compared with it) or an IPv6 one.
      const query = all1.findIndex((s) => s.sequence === 'sendto-recv-twice' && s.enrolled && s.family === 'inet' && s.destClass === 'ipv4' && s.port === 53);
      const proxies = ['0', '1.0', '1.1', '1.2'].map((p) => caseAtPath(1, `${query}.${p}`, DEFAULT_ENVIRONMENT, vm).state.backends.map((b) => b.addr));
      expect(proxies).toEqual([[], ['10.0.0.1'], ['10.0.0.2'], ['fd00::1']]);
      for (const [scope, only] of [
        [1, datagram1],
        [2, mapped2],
      ] as const) {
        const r = await explore({ scope, env: DEFAULT_ENVIRONMENT, vm, onlySkeletons: only });
        expect(r.complete).toBe(true);
        expect(r.counterexamples).toEqual([]);
        expect(r.exercised['dns-exchange']).toBeGreaterThan(0);
        expect(r.exercised['dns-reply-source']).toBeGreaterThan(0);
      }
    } finally {
      await vm.close();
    }
  }, 120_000);

  it('shards split the tree by top-level choices; merge is complete only when every shard is', async () => {
    const whole = await explore({ scope: 1, env: DEFAULT_ENVIRONMENT });
    const parts = await Promise.all([0, 1, 2].map((index) => explore({ scope: 1, env: DEFAULT_ENVIRONMENT, shard: { index, count: 3 } })));
    expect(whole.complete).toBe(true);
    expect(parts.reduce((n, p) => n + p.states, 0)).toBe(whole.states);
    expect(parts.reduce((n, p) => n + p.choicePoints, 0)).toBe(whole.choicePoints);
    const report = (e: typeof whole, index: number) => ({ shard: { index, count: 3 }, exploration: { ...e, findings: 0 } }) as unknown as ReportJson;
    const merged = mergeExplorations(parts.map(report));
    expect(merged).toMatchObject({ scope: 1, states: whole.states, complete: true, truncated: [], deviations: 0 });
    const cut = await explore({ scope: 1, env: DEFAULT_ENVIRONMENT, shard: { index: 0, count: 3 }, maxStates: 5 });
    expect(cut.complete).toBe(false);
    expect(mergeExplorations([report(cut, 0), ...parts.slice(1).map(report)])?.complete).toBe(false);
    // Two complete shards of three are not the whole tree.
    const two = mergeExplorations(parts.slice(0, 2).map(report));
    expect(two?.complete).toBe(false);
    expect(two?.truncated).toEqual(['shard 3/3 missing']);
  }, 60_000);

  it('scope 2 adds one deviation to scope 1: its top-level choices cost at most one, and it holds more states', async () => {
    // Model-driven (no VM) over the plain TCP connect: cheap, and the deviation bound is in the decisions.
    const one = skeletons(2).findIndex((s) => s.sequence === 'connect-send' && s.enrolled && s.family === 'inet' && s.protocol === 'tcp' && s.destClass === 'ipv4' && s.port === 80);
    const s1 = await explore({ scope: 1, env: DEFAULT_ENVIRONMENT, onlySkeletons: [TCP_V4] });
    const s2 = await explore({ scope: 2, env: DEFAULT_ENVIRONMENT, onlySkeletons: [one] });
    expect(s1.complete && s2.complete).toBe(true);
    expect(s2.states).toBeGreaterThan(s1.states);
    // Every top-level choice of scope 2 costs at most one deviation, and scope 1's are all there.
    expect(skeletons(2).every((s) => s.deviations <= 1)).toBe(true);
    expect(skeletons(1).every((s) => s.deviations === 0)).toBe(true);
    expect(
      skeletons(2)
        .filter((s) => s.deviations === 0)
        .map(describeSkeleton),
    ).toEqual(skeletons(1).map(describeSkeleton));
  }, 120_000);

  it('scope 2 starts every enrolled skeleton of scope 1 otherwise too, one deviation each, after the others; its cases carry the start', () => {
    const enrolled = skeletons(1).filter((s) => s.enrolled);
    const all = skeletons(2);
    const variants = all.filter((s) => s.start !== undefined);
    expect(variants.map((s) => `${s.start} ${describeSkeleton({ ...s, start: undefined } as Skeleton)}`)).toEqual(
      START_VARIANTS.flatMap((v) => enrolled.map((s) => `${v.name} ${describeSkeleton(s)}`)),
    );
    expect(variants.every((s) => s.deviations === 1)).toBe(true);
    // Listed last, so that the others keep their indices (saved paths start with one).
    expect(all.slice(all.length - variants.length)).toEqual(variants);
    expect(skeletons(1).some((s) => s.start !== undefined)).toBe(false);
    for (const v of START_VARIANTS) {
      const i = all.findIndex((s) => s.start === v.name && s.sequence === 'connect-send' && s.family === 'inet' && s.protocol === 'tcp');
      const { case: c } = leafAt(2, i, [], DEFAULT_ENVIRONMENT);
      expect(c).toMatchObject({ ...v.fields, enrolled: true });
      // A value other than the ABI's 0 is a raw state's, whatever the maps (as sampling draws it).
      if ((v.fields.enrolmentWrite ?? 0) !== 0) expect(c.kind).toBe('raw');
    }
    // The other skeletons start as before: enrolled or not by control connects, reports on.
    const base = all.find((s) => s.start === undefined && s.enrolled)!;
    expect(startOf(base)).toEqual({ enrolled: true });
    expect(leafAt(2, all.indexOf(base), [], DEFAULT_ENVIRONMENT).case).not.toHaveProperty('enrolmentWrite');
  });

  it('check --exhaustive writes the same report on every run of the same seed, and of no seed (timings aside)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-exhaustive-'));
    const run = (name: string, extra: string[]) => {
      const file = join(dir, `${name}.json`);
      const r = spawnSync(
        process.execPath,
        [join(packageRoot(), 'bin', 'kmesh-check.js'), 'check', '--exhaustive', '--executor', 'vm', '--shard', '1/12', '--no-failure-db', '--no-explain', '--json', file, ...extra],
        {
          cwd: dir,
          encoding: 'utf8',
          timeout: 120_000,
        },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/exhaustive: complete for scope 1: \d+ states/);
      expect(r.stdout).toMatch(/scope 1: every state with value classes of scope <= 1, .* at most 0 deviations from scope 1/);
      // Timings are the one thing that may differ between two runs.
      return readFileSync(file, 'utf8').replace(/"durationMs": \d+/g, '"durationMs": 0');
    };
    const a = run('a', ['--seed', '7']);
    expect(run('b', ['--seed', '7'])).toBe(a);
    const c = run('c', []);
    expect(run('d', [])).toBe(c);
    const json = JSON.parse(a) as { exploration: { scope: number; complete: boolean; deviations: number; meaning: string } };
    expect(json.exploration).toMatchObject({ scope: 1, complete: true, deviations: 0 });
  }, 300_000);
});
