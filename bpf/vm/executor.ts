// The userspace executor: the compiled objects in the VM, run by the case runner
// (bpf/runner/case-runner.ts) over the VM's socket layer (sockets.ts), so that its observations
// are those of the kernel executor without privileges. outcomeSet() runs a case under every
// answer to its choice points, merging paths that meet again.

import { basename } from 'node:path';
import { defaultObjects } from '../../shared/package.js';
import type { Case, Observation, StreamView } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT, type Environment } from '../../model/environment.js';
import { OutcomeSetLimitError, type Executor, type LazyMapSource, type LazyMaps, type ObjectPaths } from '../../model/executor.js';
import { lbDomain } from '../../model/lb-domain.js';
import { BPF_MAP_TYPE, MAP_BY_NAME, OBJECT_OF_PROGRAM, PROGRAMS, ROUTING_MAPS, checkMapShape, type MapName } from '../codec/abi.js';
import { checkReportMap } from '../codec/report.js';
import { toHex } from '../codec/state.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { CaseRunner } from '../runner/case-runner.js';
import { Pruned, ScriptedChoices, SeededChoices, explore, type Choice, type ChoiceSource, type FailurePoint } from '../runner/choices.js';
import { ObsWriter, decodeObservations } from '../runner/observations.js';
import { Vm, loadObjectFile } from './vm.js';
import { ArrayMap, SkStorageMap, SockHashMap, type HashMap, type VmMap } from './maps.js';
import type { VmProgram } from './program.js';
import { PTR_TAG, type Region } from './memory.js';
import { coverageOf, instructionHits, resetCoverage, type CoverageSummary } from './coverage.js';
import { VmSockets, type VmSocket } from './sockets.js';
import { VmTracer, type TraceEvent } from './trace.js';
import { attachLazyMaps } from './lazy.js';
import { PassMemo } from './pass-memo.js';
import { RunThread } from './run-thread.js';

export { PROGRAMS } from '../codec/abi.js';
export { defaultObjects } from '../../shared/package.js';

export interface VmExecutorOptions {
  /** Object paths; each defaults to ours in build/bpf. */
  readonly objects?: Partial<ObjectPaths>;
  readonly environment?: Environment;
  /** Seed of the prandom stream of run(); every case starts from it, so a case's result does not depend on its batch. */
  readonly seed?: number;
  /** 'jit' (default) or the reference interpreter. */
  readonly engine?: 'jit' | 'interp';
}

/** Per program, in load order: times each instruction ran and each conditional jump was taken. */
export type CoverageCounts = readonly { readonly program: string; readonly hits: Uint32Array; readonly taken: Uint32Array }[];

export interface OutcomeOptions {
  /** prandom values to branch over (default: lbDomain(case)). */
  readonly prandomDomain?: readonly number[];
  /** Helper failures to branch over too (default none). */
  readonly failures?: readonly FailurePoint[];
  readonly maxRuns?: number;
  /** Skip draws that the passes learnt so far show to be pruned (pass-memo.ts); default on, off to compare. */
  readonly passMemo?: boolean;
  /**
   * Prune paths that reach a state met before (at tail calls and connect exits); default on. Off,
   * every combination of draws runs, which is cheaper for a case whose combinations are few than
   * keying the state at every merge point.
   */
  readonly prune?: boolean;
  /** Give up after a run whose choice points alone make more combinations than this (ExploreOptions.forecast). */
  readonly forecast?: number;
}

/**
 * Cases per run() with a run thread: a round trip per batch, and a batch's model side alive until
 * its runs come back, two batches at a time (main thread CPU per case at 16, 32, 64, 128: 62, 56,
 * 54, 54 us).
 */
const THREAD_BATCH_SIZE = 64;

/** One traced run of a case: its observations and what the programs did (bpf/vm/trace.ts). */
export interface TracedRun {
  readonly observations: Observation[];
  readonly events: TraceEvent[];
}

export interface Outcome {
  readonly choices: readonly Choice[];
  readonly observations: readonly Observation[];
  /** The most prandom draws one program entry (a pass) made in this run: one pick draws once (section 3.7). */
  readonly mostDrawsInAPass: number;
}

/** Passes `inner`'s answers through, counting the draws of each program entry (Machine.entries). */
class DrawsPerPass implements ChoiceSource {
  most = 0;
  private entry = -1;
  private drawn = 0;
  readonly trail?: () => string;
  constructor(
    private readonly inner: ChoiceSource,
    private readonly entries: () => number,
  ) {
    if (inner.trail) this.trail = () => (inner.trail as () => string)();
  }
  prandom(): number {
    const now = this.entries();
    if (now !== this.entry) {
      this.entry = now;
      this.drawn = 0;
    }
    this.most = Math.max(this.most, ++this.drawn);
    return this.inner.prandom();
  }
  fail(point: FailurePoint): boolean {
    return this.inner.fail(point);
  }
}

export class VmExecutor implements Executor {
  readonly name = 'vm';
  /**
   * In this thread a batch saves no round trip: a small one keeps its model work young garbage
   * (about 10% less CPU per case than 128). With a run thread, THREAD_BATCH_SIZE.
   */
  get batchSize(): number {
    return this.thread ? THREAD_BATCH_SIZE : 16;
  }
  /** run() starts every case from the seed: a case's runs draw alike (cases with draws are held to exact sets instead). */
  readonly sameDrawsEachRun = true;
  readonly environment: Environment;
  readonly vm: Vm;
  private readonly progs: Record<keyof typeof PROGRAMS, VmProgram>;
  private readonly seed: number;
  private readonly sockets: VmSockets;
  private readonly runner: CaseRunner<VmSocket>;
  private readonly sink = new ObsWriter();
  private closed = false;
  private readonly objects: ObjectPaths;
  private readonly engine: 'jit' | 'interp';
  /** Where run() goes once runInThread() has started it (bpf/vm/run-thread.ts). */
  private thread: RunThread | null = null;
  /** During outcomeSet: nodes (states met at tail calls and connect exits) by the trail that reached each first, to prune paths that reach one again. */
  private seenStates: Map<string, string> | null = null;
  /**
   * During outcomeSet: each state key met so far by a number (stateId), so that nodes and the pass
   * memo's transitions are short keys: a state key holds the maps and sockets, often a few KB,
   * and was hashed again for each of them.
   */
  private stateIds: Map<string, number> | null = null;
  /** During outcomeSet without helper failures: the passes learnt so far (pass-memo.ts). */
  private passMemo: PassMemo | null = null;
  /** During traceCase: the tracer the machine's tail calls are reported to. */
  private tracer: VmTracer | null = null;

  constructor(objects: ObjectPaths, opts: VmExecutorOptions = {}) {
    this.environment = opts.environment ?? DEFAULT_ENVIRONMENT;
    this.seed = opts.seed ?? 1;
    this.objects = objects;
    this.engine = opts.engine ?? 'jit';
    this.vm = new Vm({ choices: new SeededChoices(this.seed) });
    this.vm.machine.engine = this.engine;
    for (const role of ['connect', 'sockops', 'sendmsg'] as const) {
      loadObjectFile(this.vm, objects[role], `${role} object`);
    }
    const prog = (role: keyof typeof PROGRAMS): VmProgram => {
      const name = PROGRAMS[role];
      const obj = this.vm.objects.find((o) => o.path === objects[OBJECT_OF_PROGRAM[role]]);
      const p = obj?.programs.find((q) => q.name === name);
      if (!p) throw new KmeshCheckError('object-content', `${OBJECT_OF_PROGRAM[role]} object ${objects[OBJECT_OF_PROGRAM[role]]} has no program ${name}`);
      return p;
    };
    this.progs = { connect4: prog('connect4'), connect6: prog('connect6'), sockops: prog('sockops'), sendmsg: prog('sendmsg') };
    for (const abi of MAP_BY_NAME.values()) this.checkMap(abi.name);
    // Section 7's maps too, where an object defines them, as the kernel loader does.
    for (const o of this.vm.objects) for (const m of o.linked.maps) checkReportMap(`map ${m.name} in ${basename(o.path)}`, m.name, m);
    this.vm.machine.onTailCall = (target, ctx) => this.atTailCall(target, ctx);
    this.vm.setTailCall('km_cgr_tailcall', 0, this.progs.connect4);
    this.vm.setTailCall('km_cgr_tail6', 1, this.progs.connect6);
    this.sockets = new VmSockets(this.vm, this.progs, this.environment);
    this.runner = new CaseRunner(this.sockets, this.environment, this.sink);
  }

  private checkMap(name: MapName): void {
    const abi = MAP_BY_NAME.get(name)!;
    let m: VmMap;
    try {
      m = this.vm.map(name);
    } catch {
      throw new KmeshCheckError('object-content', `no loaded object defines map ${name}`);
    }
    checkMapShape(this.vm.mapLabel(name), 2, { ...abi, type: BPF_MAP_TYPE[abi.type] }, m.def);
  }

  /** The section 6 hooks the loaded objects have. */
  get dnsHooks(): readonly string[] {
    return this.sockets.dns.hooksPresent();
  }

  /** The programs the executor runs, by role. */
  get programs(): Readonly<Record<keyof typeof PROGRAMS, VmProgram>> {
    return this.progs;
  }

  async run(cases: readonly Case[]): Promise<Observation[][]> {
    // Closed, the thread is gone and runRecorded refuses.
    if (this.thread) return this.thread.run(cases);
    const { bytes, streams } = this.runRecorded(cases);
    return decodeObservations(bytes, streams);
  }

  /**
   * Runs each case on this thread's VM, from the seed, and gives its observation records in the
   * sink's format: run() decodes them, a run thread (bpf/vm/run-thread.ts) sends them back.
   */
  runRecorded(cases: readonly Case[]): { bytes: Uint8Array; streams: StreamView[] } {
    if (this.closed) throw new KmeshCheckError('unsupported', 'the VM executor is closed');
    const choices = new SeededChoices(this.seed);
    this.sink.clear();
    this.withEnrolmentMemo(() => {
      for (let i = 0; i < cases.length; i++) {
        choices.reseed(this.seed);
        try {
          this.runner.runCase(cases[i] as Case, choices);
        } catch (e) {
          if (e instanceof KmeshCheckError) throw new KmeshCheckError(e.code, `case ${i}: ${e.message}`);
          throw e;
        }
      }
    });
    return this.sink.take();
  }

  /**
   * Runs `f` with enrolment replayed where it can be (bpf/vm/enrol-memo.ts): for runs of which no
   * one watches the steps (plain runs, outcome sets), not for traced ones.
   */
  private withEnrolmentMemo<T>(f: () => T): T {
    this.sockets.memoEnrolment = true;
    try {
      return f();
    } finally {
      this.sockets.memoEnrolment = false;
    }
  }

  /** Every outcome of a case over every prandom value of the domain (and helper failure, if asked). */
  outcomeSet(c: Case, opts: OutcomeOptions = {}): Outcome[] {
    const domain = {
      prandomDomain: opts.prandomDomain ?? lbDomain(c),
      ...(opts.failures ? { failures: opts.failures } : {}),
      ...(opts.maxRuns !== undefined ? { maxRuns: opts.maxRuns } : {}),
      ...(opts.forecast !== undefined ? { forecast: opts.forecast } : {}),
    };
    type Run = { readonly observations: Observation[]; readonly mostDrawsInAPass: number };
    const outcomes = (runs: ReturnType<typeof explore<Run>>): Outcome[] => runs.map((r) => ({ choices: r.choices, ...r.result }));
    const machine = this.vm.machine;
    /** One run of the case, its draws counted per pass. */
    const counted = (choices: ChoiceSource, wrap: (c: ChoiceSource) => ChoiceSource = (x) => x): Run => {
      const draws = new DrawsPerPass(choices, () => machine.entries);
      const observations = this.runCase(c, wrap(draws));
      return { observations, mostDrawsInAPass: draws.most };
    };
    if (opts.prune === false) return this.withEnrolmentMemo(() => outcomes(explore((choices) => counted(choices), domain)));
    const seen = new Map<string, string>();
    this.seenStates = seen;
    this.stateIds = new Map();
    const memo =
      opts.failures?.length || opts.passMemo === false
        ? null
        : new PassMemo(
            () => this.vm.machine.tailCalls,
            (node) => seen.has(node),
          );
    this.passMemo = memo;
    // The end of a connect program is a merge point like a tail call (atConnectExit).
    const vm = this.vm;
    const raw = Vm.prototype.runConnectRaw;
    vm.runConnectRaw = (prog, sock, addr, port) => {
      const verdict = raw.call(vm, prog, sock, addr, port);
      this.atConnectExit(prog, (sock.family === 'inet' ? vm.connect4Ctx : vm.connect6Ctx).region, verdict);
      return verdict;
    };
    try {
      // Enrolment comes before any choice point, so its nodes never prune: replaying it skips nothing.
      return this.withEnrolmentMemo(() =>
        outcomes(
          explore((choices) => counted(choices, memo ? (x) => memo.wrap(x) : undefined), {
            ...domain,
            ...(memo ? { redundant: (position: number, value: number) => memo.redundant(position, value) } : {}),
          }),
        ),
      );
    } finally {
      delete (vm as { runConnectRaw?: unknown }).runConnectRaw;
      this.seenStates = null;
      this.stateIds = null;
      this.passMemo = null;
    }
  }

  /** outcomeSet of each case, null where it has too many paths for `opts`; in the run thread when there is one. */
  async outcomeSets(cases: readonly Case[], opts: OutcomeOptions): Promise<Array<Outcome[] | null>> {
    if (this.thread) return this.thread.outcomeSets(cases, opts);
    return this.outcomeSetsHere(cases, opts);
  }

  /** outcomeSets on this thread's VM (what the run thread answers with). */
  outcomeSetsHere(cases: readonly Case[], opts: OutcomeOptions): Array<Outcome[] | null> {
    return cases.map((c) => {
      try {
        return this.outcomeSet(c, opts);
      } catch (e) {
        if (e instanceof OutcomeSetLimitError) return null;
        throw e;
      }
    });
  }

  /**
   * Bounded-exhaustive exploration (properties/explore.ts): from now on a program-side miss in a
   * routing map asks `source` (bpf/vm/lazy.ts). The maps start empty; detach() unhooks them and
   * empties them again. The empty case first makes the runner's tracker and the maps agree on
   * empty maps, so that the lazily decided entries are the only ones.
   */
  lazyMaps(source: () => LazyMapSource): LazyMaps {
    this.runCase({ state: { frontends: [], services: [], endpoints: [], backends: [] }, kind: 'raw', enrolled: false, ops: [] });
    const maps = attachLazyMaps(new Map(ROUTING_MAPS.map((n) => [n, this.vm.map<HashMap>(n)])), source);
    // The listening policy follows the entries as they are decided (bpf/vm/sockets.ts).
    this.sockets.lazyState = () => source().toState();
    return {
      clear: () => maps.clear(),
      detach: () => {
        this.sockets.lazyState = null;
        maps.detach();
      },
    };
  }

  /** One run of a case with the given answers to its choice points. */
  runCase(c: Case, choices: ChoiceSource = new SeededChoices(this.seed)): Observation[] {
    this.sink.clear();
    this.runner.runCase(c, choices);
    // Decoded from the sink's own buffer (the observations copy what they keep): no copy per case.
    return decodeObservations(this.sink.written(), this.sink.streams)[0]!;
  }

  /**
   * One run of a case with the given answers to its choice points, traced on the reference
   * interpreter: map lookups, helper calls, destination writes, tail calls, storage, by
   * operation, with source lines. The executor is left as it was.
   */
  traceCase(c: Case, choices: readonly Choice[]): TracedRun {
    const tracer = new VmTracer(this.vm, () => this.runner.opIndex);
    tracer.attach();
    this.tracer = tracer;
    try {
      const observations = this.runCase(c, new ScriptedChoices(choices));
      return { observations, events: [...tracer.events] };
    } finally {
      this.tracer = null;
      tracer.detach();
    }
  }

  /**
   * At a tail call during exploration: the state the target starts from is everything that decides
   * what follows (the context, the maps programs wrote, the sockets, the clock, the observations
   * so far); a path that reaches a state seen before is pruned (explore() keeps it complete).
   */
  private atTailCall(target: VmProgram, ctx: Region | null): void {
    this.tracer?.tailCall(target);
    if (this.seenStates === null) return;
    // The state without the tail-call count (what the pass memo learns), then the count.
    const state = this.stateId(target.name, ctx);
    this.passMemo?.tailCall(state);
    this.visit(`${state}|${this.vm.machine.tailCalls}`);
  }

  /**
   * When a connect program returns during exploration: the same state (with the verdict, the
   * context holding the destination the socket gets) decides what follows, as at a tail call.
   */
  private atConnectExit(prog: VmProgram, ctx: Region, verdict: number): void {
    if (this.seenStates === null) return;
    const node = `${this.stateId(`exit ${prog.name} ${verdict}`, ctx)}|exit`;
    this.passMemo?.exit(node);
    this.visit(node);
  }

  /** The number of the state now (stateKey) in this exploration: equal states, equal numbers. */
  private stateId(at: string, ctx: Region | null): number {
    const ids = this.stateIds as Map<string, number>;
    const key = this.stateKey(at, ctx);
    let id = ids.get(key);
    if (id === undefined) ids.set(key, (id = ids.size));
    return id;
  }

  private stateKey(at: string, ctx: Region | null): string {
    const parts: string[] = [String(this.runner.opIndex), this.sink.key(), at, ctx ? this.contextKey(ctx) : '-', String(this.vm.now), String(this.sockets.nextPort)];
    for (const [name, m] of this.vm.maps) {
      // Arrays too: programs write them through lookup pointers, which programWrites does not count.
      if (m.programWrites > 0 || m.def.internal || m instanceof ArrayMap || m instanceof SkStorageMap || m instanceof SockHashMap) parts.push(`${name}:${m.digest()}`);
    }
    parts.push(...this.sockets.socketsKey(this.runner.sockets));
    return parts.join('|');
  }

  /** A node of the exploration reached now: pruned if an earlier path (other answers so far) reached it. */
  private visit(node: string): void {
    const seen = this.seenStates as Map<string, string>;
    const trail = this.vm.choices.trail?.() ?? '';
    const first = seen.get(node);
    if (first === undefined) seen.set(node, trail);
    else if (first !== trail) throw new Pruned();
  }

  /** Context bytes with pointers written as region name + offset (region ids differ between runs). */
  private contextKey(ctx: Region): string {
    const b = ctx.bytes;
    const v = ctx.view;
    let out = '';
    for (let o = 0; o + 8 <= b.length; o += 8) {
      const hi = v.getInt32(o + 4, true);
      const r = (hi & PTR_TAG) === PTR_TAG ? this.vm.mem.regionOf(hi) : null;
      out += r ? `<${r.name}+${v.getInt32(o, true)}>` : toHex(b.subarray(o, o + 8));
    }
    return out + toHex(b.subarray(b.length - (b.length % 8)));
  }

  coverage(): CoverageSummary {
    return coverageOf(this.vm.machine, this.vm.allPrograms());
  }

  resetCoverage(): void {
    resetCoverage(this.vm.machine, this.vm.allPrograms());
  }

  /** The raw counts behind coverage(), per program: what another executor on the same objects adds with addCoverageCounts. */
  coverageCounts(): CoverageCounts {
    return this.vm.allPrograms().map((p) => ({ program: p.name, hits: instructionHits(this.vm.machine, p), taken: Uint32Array.from(p.taken) }));
  }

  /** Adds the counts of another executor on the same objects (a --jobs worker's), so coverage() covers both runs. */
  addCoverageCounts(counts: CoverageCounts): void {
    const programs = this.vm.allPrograms();
    if (counts.length !== programs.length || counts.some((c, i) => c.program !== programs[i]!.name || c.hits.length !== programs[i]!.n)) {
      throw new KmeshCheckError('unsupported', 'coverage counts of other objects cannot be added');
    }
    counts.forEach((c, i) => {
      const p = programs[i]!;
      for (let pc = 0; pc < p.n; pc++) {
        p.hits[pc] = p.hits[pc]! + c.hits[pc]!;
        p.taken[pc] = p.taken[pc]! + c.taken[pc]!;
      }
    });
  }

  /**
   * From now on run() runs its cases in a thread of its own, on a VM of its own (bpf/vm/run-thread.ts);
   * outcome sets, traces and lazy maps stay on this one. coverage() counts the thread's runs once
   * collectThreadCoverage() has brought them here.
   */
  async runInThread(): Promise<void> {
    if (this.thread || this.closed) return;
    const thread = await RunThread.start({ objects: this.objects, environment: this.environment, seed: this.seed, engine: this.engine });
    // Closed while the thread started (or started twice at once): this one goes.
    if (this.closed || this.thread) await thread.close();
    else this.thread = thread;
  }

  /** The run thread's Linux thread id, when there is one (the bench reads its CPU time). */
  get runThreadId(): number | null {
    return this.thread?.tid ?? null;
  }

  /** Adds the run thread's coverage counts so far to this VM's (nothing without a thread). */
  async collectThreadCoverage(): Promise<void> {
    if (this.thread) this.addCoverageCounts(await this.thread.takeCoverage());
  }

  async close(): Promise<void> {
    this.closed = true;
    const t = this.thread;
    this.thread = null;
    await t?.close();
  }
}

/** Opens the VM executor on the three objects (each defaults to ours in build/bpf). */
export async function createVmExecutor(opts: VmExecutorOptions = {}): Promise<VmExecutor> {
  const objects = { ...defaultObjects(), ...opts.objects };
  return new VmExecutor(objects, opts);
}

/** Outcomes with equal observations merged (the first path of each is kept). */
export function distinctOutcomes(outcomes: readonly Outcome[]): Outcome[] {
  const seen = new Map<string, Outcome>();
  for (const o of outcomes) {
    const k = JSON.stringify(o.observations);
    if (!seen.has(k)) seen.set(k, o);
  }
  return [...seen.values()];
}
