// Throughput of the kernel executor against its floor: a small C program (bpf/user/baseline.c)
// that makes the same syscalls per case, run inside the same worker's namespace and cgroup, on
// the same maps. Rounds alternate between the two so that both see the same machine load; the
// best round of each counts.

import { service as serviceOf } from '../../model/builders.js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Case, MapState, Service } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { createKernelExecutor, type KernelExecutor, type KernelExecutorOptions } from './executor.js';
import { packageRoot } from './paths.js';

export interface KernelBenchOptions {
  /** Single-connect cases per round (and baseline iterations). */
  readonly cases?: number;
  readonly rounds?: number;
  readonly executor?: KernelExecutorOptions;
}

export interface KernelBenchResult {
  readonly cases: number;
  readonly rounds: number;
  readonly connectsPerSecond: number;
  readonly baselineConnectsPerSecond: number;
  /** baseline / ours: 1.0 means as fast as C, 1.3 means 30% slower. */
  readonly ratio: number;
}

/** Compiles the baseline with gcc into build/bench/ (again only when the source is newer). */
export function buildBaseline(root = packageRoot()): string {
  const src = join(root, 'bpf/user/baseline.c');
  const out = join(root, 'build/bench/baseline');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(join(root, 'build/bench'), { recursive: true });
  try {
    const tmp = `${out}.${process.pid}.tmp`;
    execFileSync('gcc', ['-O2', '-Wall', '-o', tmp, src, '-lbpf'], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(tmp, out); // atomic: a concurrent build never runs a half-written binary
  } catch (e) {
    const err = e as { code?: string; stderr?: Buffer };
    if (err.code === 'ENOENT') throw new KmeshCheckError('environment', 'gcc is missing: apt-get install gcc');
    throw new KmeshCheckError('build', `compiling ${src} failed: ${(err.stderr?.toString() ?? '').trim().split('\n')[0]} (is libbpf-dev installed?)`);
  }
  return out;
}

const service: Service = serviceOf(1, { counts: [1], ports: [[80, 8080]] });

/**
 * Case i: the VIP 10.1.0.1:80 goes to backend 5 at 10.2.0.(i%4+1):8080; one more frontend
 * 10.3.0.(i%4+1) rotates. Between consecutive cases the diff is what the baseline writes:
 * backend 5 rewritten, one frontend deleted, one added. The four states are built once and shared
 * by the cases, as a generator's entities are shared by the cases that reuse them.
 */
export function benchCases(n: number): Case[] {
  const vip = { addr: '10.1.0.1', upstreamId: 1 };
  const endpoint = { serviceId: 1, prio: 0, index: 1, backendUid: 5 };
  const states: MapState[] = [1, 2, 3, 4].map((x) => ({
    frontends: [vip, { addr: `10.3.0.${x}`, upstreamId: 1 }],
    services: [service],
    endpoints: [endpoint],
    backends: [{ uid: 5, addr: `10.2.0.${x}`, services: [1], waypoint: { addr: '0.0.0.0', port: 0 } }],
  }));
  const cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    cases.push({
      state: states[i % 4]!,
      kind: 'consistent',
      enrolled: true,
      ops: [
        { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
        { op: 'connect', sock: 0, dest: { addr: '10.1.0.1', port: 80 } },
      ],
    });
  }
  return cases;
}

async function timeRun(ex: KernelExecutor, cases: readonly Case[]): Promise<number> {
  const t = process.hrtime.bigint();
  const obs = await ex.run(cases);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  // Every case must have been checked and redirected, or the figure means nothing.
  const last = obs.at(-1)?.[1];
  if (obs.length !== cases.length || !last?.peer || last.peer.port !== 8080) {
    throw new KmeshCheckError('worker', `bench cases were not redirected (last connect: ${JSON.stringify(last)}): is the data path working?`);
  }
  return seconds;
}

export async function runKernelBench(opts: KernelBenchOptions = {}): Promise<KernelBenchResult> {
  const n = opts.cases ?? 20_000;
  const rounds = opts.rounds ?? 3;
  const binary = buildBaseline();
  const cases = benchCases(n);
  const ex = await createKernelExecutor(opts.executor ?? {});
  try {
    await ex.run(cases.slice(0, Math.min(n, 2000))); // warm-up: JIT, listeners, enrolment
    await ex.baseline(binary, Math.min(n, 2000));
    let ours = Infinity;
    let theirs = Infinity;
    for (let r = 0; r < rounds; r++) {
      ours = Math.min(ours, await timeRun(ex, cases));
      const b = await ex.baseline(binary, n);
      theirs = Math.min(theirs, b.seconds);
    }
    const connectsPerSecond = n / ours;
    const baselineConnectsPerSecond = n / theirs;
    return { cases: n, rounds, connectsPerSecond, baselineConnectsPerSecond, ratio: baselineConnectsPerSecond / connectsPerSecond };
  } finally {
    await ex.close();
  }
}
