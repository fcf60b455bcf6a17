// Speed of the VM on our connect object: connect4 runs per second of CPU time on one core, each
// run on a fresh socket (so it creates socket storage) through the common path: enrolled
// namespace, frontend -> random-LB service -> endpoint -> backend, rewritten destination.
// CPU time, not wall time, so that other load on the machine does not count; the best of a few
// rounds after a warm-up, so that compilation and one-off pauses do not either.

import { Vm } from './vm.js';
import { VmSock } from './context.js';
import { encodeManagerKeyCookie, encodeState, fromHex } from '../codec/index.js';
import { LbPolicy, NO_WAYPOINT, type MapState } from '../../model/domain.js';
import type { HashMap, SkStorageMap } from './maps.js';
import { instructionHits } from './coverage.js';
import { defaultObjects } from './executor.js';

export interface VmBenchOptions {
  /** The connect object (default: ours in build/bpf). */
  readonly object?: string;
  readonly engine?: 'jit' | 'interp';
  /** Runs per round. */
  readonly runs?: number;
  readonly rounds?: number;
}

export interface VmBenchResult {
  readonly runsPerSecond: number;
  /** Instructions one run executes. */
  readonly instructionsPerRun: number;
  readonly engine: 'jit' | 'interp';
  readonly runs: number;
}

const pad = (a: number[], n: number) => [...a, ...new Array<number>(n - a.length).fill(0)];

export const BENCH_STATE: MapState = {
  frontends: [{ addr: '10.96.0.10', upstreamId: 1 }],
  services: [{ id: 1, endpointCounts: pad([3], 7), lbPolicy: LbPolicy.random, servicePorts: pad([80], 10), targetPorts: pad([8080], 10), waypoint: NO_WAYPOINT }],
  endpoints: [1, 2, 3].map((i) => ({ serviceId: 1, prio: 0, index: i, backendUid: 100 + i })),
  backends: [1, 2, 3].map((i) => ({ uid: 100 + i, addr: `10.0.1.${i}`, services: [1], waypoint: NO_WAYPOINT })),
};

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

export function runVmBench(opts: VmBenchOptions = {}): VmBenchResult {
  const engine = opts.engine ?? 'jit';
  const vm = new Vm();
  vm.machine.engine = engine;
  vm.load(opts.object ?? defaultObjects().connect);
  const prog = vm.program('cgroup_connect4_prog');
  vm.setTailCall('km_cgr_tailcall', 0, prog);
  for (const [name, entries] of encodeState(BENCH_STATE)) {
    const m = vm.map<HashMap>(name);
    for (const [k, v] of entries) m.set(fromHex(k), v);
  }
  vm.map<HashMap>('km_manage').set(encodeManagerKeyCookie(BigInt(vm.netnsCookie)), new Uint8Array(4));
  const storage = vm.map<SkStorageMap>('km_sockstorage');
  const dest = new Uint8Array([10, 96, 0, 10]);
  const sock = new VmSock(1, 'inet', 'tcp', 1);
  const once = () => {
    storage.drop(sock, true); // a fresh socket each run, as a closed one's storage goes away
    const verdict = vm.runConnectRaw(prog, sock, dest, 80);
    if (verdict !== 1) throw new Error(`bench: connect4 returned ${verdict}`);
  };
  const runs = opts.runs ?? 200_000;
  const rounds = opts.rounds ?? 3;
  for (let i = 0; i < Math.min(runs, 100_000); i++) once(); // warm-up: compile, optimise
  const before = instructionHits(vm.machine, prog).reduce((a, b) => a + b, 0);
  once();
  const instructionsPerRun = instructionHits(vm.machine, prog).reduce((a, b) => a + b, 0) - before;
  const dst = vm.connect4Ctx.dest().addr;
  if (!dst.startsWith('10.0.1.')) throw new Error(`bench: the connect was not rewritten to a backend (got ${dst}); is the object ours?`);
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < runs; i++) once();
    best = Math.max(best, runs / cpuSeconds(t0));
  }
  return { runsPerSecond: Math.round(best), instructionsPerRun, engine, runs };
}
