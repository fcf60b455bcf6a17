// The userspace executor: the compiled objects in the VM behind a socket layer that reports what
// the kernel would (model/environment.ts, kernelConnect: measured on 6.18), so that its
// observations are those of the kernel executor (bpf/kernel/harness.ts) without privileges:
//  - connect: a connected or connecting TCP socket fails with EISCONN / EALREADY before the hook
//    runs (measured: the cgroup program does not run); otherwise connect4/connect6 runs (tail calls
//    included), then kernelConnect decides; a TCP SYN runs sockops TCP_CONNECT_CB, an established
//    connection ACTIVE_ESTABLISHED_CB.
//  - send: each message the socket takes goes through sk_msg when the socket is in the sockhash
//    sendmsg_prog is attached to; the peer's stream is what the program let through, in order.
//  - close: the socket's storage and sockhash entries go away.
// Enrolment happens through the programs: control connects bound to each enrolled local.
// outcomeSet() runs a case under every answer to its choice points, merging paths that meet again.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Case, Family, MapState, Observation, Operation, SockAddr, SocketId, StorageView, StreamView } from '../../model/domain.js';
import { CONTROL_ADDR, ControlPort, payloadFor } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT, FRESH_SOCKET, kernelConnect, kernelPeer, type Environment, type KernelSocket } from '../../model/environment.js';
import type { Executor, ObjectPaths } from '../../model/executor.js';
import { AddressError, canonicalSockText, parseAddress } from '../../model/address.js';
import { MAP_BY_NAME, OBJECT_OF_PROGRAM, PROGRAMS, ROUTING_MAPS, type MapName } from '../codec/abi.js';
import { StateTracker, fromHex, toHex } from '../codec/state.js';
import { encodeSockTuple, storageView } from '../codec/structs.js';
import { parseTlv } from '../codec/tlv.js';
import { KmeshCheckError } from '../errors.js';
import { Vm, VmLoadError } from './vm.js';
import { VmSock, SockOps, TCP_CLOSE, TCP_ESTABLISHED, TCP_SYN_SENT } from './context.js';
import { ArrayMap, HashMap, RingBufMap, SkStorageMap, SockHashMap, MapError, type VmMap } from './maps.js';
import { LinkError, MapType } from './link.js';
import { ElfError } from './elf.js';
import { BtfError } from './btf.js';
import { VmFault, type VmProgram } from './interp.js';
import { Pruned, SeededChoices, explore, lbDomain, type Choice, type ChoiceSource, type FailurePoint } from './choices.js';
import { PTR_TAG, type Region } from './memory.js';
import { coverageOf, resetCoverage, type CoverageSummary } from './coverage.js';
import { attachLazyMaps, type LazyMapSource, type LazyMaps } from './lazy.js';

export { PROGRAMS } from '../codec/abi.js';
const FIRST_EPHEMERAL_PORT = 40000;

export interface VmExecutorOptions {
  /** Object paths; each defaults to ours in build/bpf. */
  readonly objects?: Partial<ObjectPaths>;
  readonly environment?: Environment;
  /** Seed of the prandom stream of run(); every case starts from it, so a case's result does not depend on its batch. */
  readonly seed?: number;
  /** 'jit' (default) or the reference interpreter. */
  readonly engine?: 'jit' | 'interp';
}

export interface OutcomeOptions {
  /** prandom values to branch over (default: lbDomain(case)). */
  readonly prandomDomain?: readonly number[];
  /** Helper failures to branch over too (default none). */
  readonly failures?: readonly FailurePoint[];
  readonly maxRuns?: number;
}

export interface Outcome {
  readonly choices: readonly Choice[];
  readonly observations: readonly Observation[];
}

interface SockState {
  readonly sock: VmSock;
  /** TCP: established; UDP: associated with a peer. */
  connected: boolean;
  /** TCP left in SYN_SENT (kernelConnect's in-progress): further connects fail with EALREADY. */
  connecting: boolean;
  /** What the kernel keeps of the socket between connects (model/environment.ts). */
  kernel: KernelSocket;
  peer: SockAddr | null;
  sent: number;
  expected: Uint8Array[];
  received: Uint8Array[];
}

/** Our objects in build/bpf, found from this module (sources or dist/). */
export function defaultObjects(): ObjectPaths {
  // The package root: the folder above bpf/ (from sources) or above dist/bpf/ (compiled).
  let dir = fileURLToPath(new URL('../../', import.meta.url));
  if (!existsSync(join(dir, 'package.json'))) dir = fileURLToPath(new URL('../../../', import.meta.url));
  return {
    connect: join(dir, 'build/bpf/cgroup_sock.o'),
    sockops: join(dir, 'build/bpf/sockops.o'),
    sendmsg: join(dir, 'build/bpf/sendmsg.o'),
  };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Passes prandom through but never fails a helper: set-up steps are not choice points. */
class NoFailures implements ChoiceSource {
  constructor(private readonly inner: ChoiceSource) {}
  prandom(): number {
    return this.inner.prandom();
  }
  fail(): boolean {
    return false;
  }
}

export class VmExecutor implements Executor {
  readonly name = 'vm';
  readonly environment: Environment;
  readonly vm: Vm;
  private readonly progs: Record<keyof typeof PROGRAMS, VmProgram>;
  private readonly routing: ReadonlyMap<string, HashMap>;
  private readonly manage: HashMap;
  private readonly storage: SkStorageMap;
  private readonly sockhash: SockHashMap;
  private readonly tracker = new StateTracker();
  private readonly seed: number;
  private readonly socks = new Map<SocketId, SockState>();
  private nextPort = FIRST_EPHEMERAL_PORT;
  private closed = false;
  /** During outcomeSet: states met at tail calls, to prune paths that reach one again. */
  private seenStates: Map<string, string> | null = null;
  private opIndex = 0;
  private observed: readonly Observation[] = [];

  constructor(objects: ObjectPaths, opts: VmExecutorOptions = {}) {
    this.environment = opts.environment ?? DEFAULT_ENVIRONMENT;
    this.seed = opts.seed ?? 1;
    this.vm = new Vm({ choices: new SeededChoices(this.seed) });
    this.vm.machine.engine = opts.engine ?? 'jit';
    for (const role of ['connect', 'sockops', 'sendmsg'] as const) {
      const path = objects[role];
      if (!existsSync(path)) throw new KmeshCheckError('object-file', `${role} object ${path} does not exist: build it (npm run build:bpf) or give the right path`);
      try {
        this.vm.load(path);
      } catch (e) {
        if (e instanceof ElfError) throw new KmeshCheckError('object-file', e.message);
        if (e instanceof LinkError || e instanceof BtfError || e instanceof VmFault || e instanceof VmLoadError || e instanceof MapError) {
          throw new KmeshCheckError('load', `the VM cannot load ${path}: ${e.message}`);
        }
        throw e;
      }
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
    this.vm.machine.onTailCall = (target, ctx) => this.atTailCall(target, ctx);
    this.vm.setTailCall('km_cgr_tailcall', 0, this.progs.connect4);
    this.vm.setTailCall('km_cgr_tail6', 1, this.progs.connect6);
    this.routing = new Map(ROUTING_MAPS.map((n) => [n, this.vm.map<HashMap>(n)]));
    this.manage = this.vm.map<HashMap>('km_manage');
    this.storage = this.vm.map<SkStorageMap>('km_sockstorage');
    this.sockhash = this.vm.map<SockHashMap>('km_socket');
  }

  private checkMap(name: MapName): void {
    const abi = MAP_BY_NAME.get(name)!;
    let m: VmMap;
    try {
      m = this.vm.map(name);
    } catch {
      throw new KmeshCheckError('object-content', `no loaded object defines map ${name}`);
    }
    const type = ({ hash: MapType.HASH, array: MapType.ARRAY, prog_array: MapType.PROG_ARRAY, sockhash: MapType.SOCKHASH, sk_storage: MapType.SK_STORAGE } as const)[abi.type];
    const where = `map ${name}`;
    if (m.def.type !== type) throw new KmeshCheckError('abi-mismatch', `${where}: type ${m.def.type}, expected ${abi.type} (kmesh-dataplane.md section 2)`);
    if (m.def.keySize !== abi.keySize) throw new KmeshCheckError('abi-mismatch', `${where}: key size ${m.def.keySize} B, expected ${abi.keySize} B (${abi.key})`);
    if (m.def.valueSize !== abi.valueSize) throw new KmeshCheckError('abi-mismatch', `${where}: value size ${m.def.valueSize} B, expected ${abi.valueSize} B (${abi.value})`);
  }

  /** The programs the executor runs, by role. */
  get programs(): Readonly<Record<keyof typeof PROGRAMS, VmProgram>> {
    return this.progs;
  }

  async run(cases: readonly Case[]): Promise<Observation[][]> {
    if (this.closed) throw new KmeshCheckError('unsupported', 'the VM executor is closed');
    const out: Observation[][] = [];
    const choices = new SeededChoices(this.seed);
    for (let i = 0; i < cases.length; i++) {
      choices.reseed(this.seed);
      try {
        out.push(this.runCase(cases[i] as Case, choices));
      } catch (e) {
        if (e instanceof KmeshCheckError) throw new KmeshCheckError(e.code, `case ${i}: ${e.message}`);
        throw e;
      }
    }
    return out;
  }

  /** Every outcome of a case over every prandom value of the domain (and helper failure, if asked). */
  outcomeSet(c: Case, opts: OutcomeOptions = {}): Outcome[] {
    this.seenStates = new Map();
    try {
      const runs = explore((choices) => this.runCase(c, choices), {
        prandomDomain: opts.prandomDomain ?? lbDomain(c),
        ...(opts.failures ? { failures: opts.failures } : {}),
        ...(opts.maxRuns !== undefined ? { maxRuns: opts.maxRuns } : {}),
      });
      return runs.map((r) => ({ choices: r.choices, observations: r.result }));
    } finally {
      this.seenStates = null;
    }
  }

  /**
   * Bounded-exhaustive exploration (properties/explore.ts): from now on a program-side miss in a
   * routing map asks `source` (bpf/vm/lazy.ts). The maps start empty; detach() unhooks them and
   * empties them again.
   */
  lazyMaps(source: () => LazyMapSource): LazyMaps {
    this.runCase({ state: { frontends: [], services: [], endpoints: [], backends: [] }, kind: 'raw', enrolled: false, ops: [] });
    return attachLazyMaps(this.routing, source);
  }

  /** One run of a case with the given answers to its choice points. */
  runCase(c: Case, choices: ChoiceSource = new SeededChoices(this.seed)): Observation[] {
    this.closeAll();
    this.resetProgramState();
    this.nextPort = FIRST_EPHEMERAL_PORT;
    this.vm.resetClock();
    this.vm.choices = new NoFailures(choices);
    this.applyState(c.state);
    this.manage.clear();
    if (c.enrolled) this.enrol();
    this.vm.choices = choices;
    const obs: Observation[] = [];
    this.observed = obs;
    try {
      for (let i = 0; i < c.ops.length; i++) {
        this.opIndex = i;
        obs.push(this.runOp(c.ops[i] as Operation));
      }
    } finally {
      this.closeAll();
    }
    return obs;
  }

  /**
   * Every case starts from the same VM state, so that a case's outcome does not depend on the
   * cases before it (and exploration can replay it): global data back to its initial bytes, ring
   * buffers emptied, and maps that programs wrote (other than km_manage, rebuilt by enrolment)
   * emptied; routing maps a program wrote are emptied and reloaded from the case's state.
   */
  private resetProgramState(): void {
    for (const m of this.vm.maps.values()) {
      if (m.def.internal && m instanceof ArrayMap) {
        m.values[0]?.bytes.set(m.def.internal.initial);
      } else if (m instanceof RingBufMap) {
        m.clear();
      } else if (m.programWrites > 0 && m !== this.manage && !this.routing.has(m.name) && !(m instanceof SkStorageMap) && !(m instanceof SockHashMap)) {
        m.clear();
        m.programWrites = 0;
      }
    }
    if ([...this.routing.values()].some((m) => m.programWrites > 0)) {
      // What the maps hold is no longer what the tracker wrote: start them over.
      for (const m of this.routing.values()) { m.clear(); m.programWrites = 0; }
      this.tracker.reset();
    }
  }

  /**
   * Enrols the namespace the way the harness does: one TCP control connect to 0.0.0.2:929 or
   * [::2]:929 bound to each of the environment's enrolled locals, through the programs (connect
   * records the netns cookie, sockops TCP_CONNECT_CB the local IP); no listener, so refused.
   */
  private enrol(): void {
    if (!this.environment.closedPorts.includes(ControlPort.enrol)) {
      throw new KmeshCheckError('environment', `port ${ControlPort.enrol} must have no listener for enrolment (environment.closedPorts)`);
    }
    for (const local of this.environment.enrolledLocals) {
      const family: Family = local.includes(':') ? 'inet6' : 'inet';
      const sock = new VmSock(-1, family, 'tcp', 0xfff);
      const prog = family === 'inet' ? this.progs.connect4 : this.progs.connect6;
      const ctx = family === 'inet' ? this.vm.connect4Ctx : this.vm.connect6Ctx;
      this.vm.runConnectRaw(prog, sock, parseAddress(CONTROL_ADDR[family]), ControlPort.enrol);
      sock.setEnds({ addr: canonicalSockText(family, local), port: this.nextPort++ }, kernelPeer(family, ctx.dest()), TCP_SYN_SENT);
      this.vm.runSockOps(this.progs.sockops, sock, SockOps.TCP_CONNECT_CB);
      for (const m of this.vm.maps.values()) {
        if (m instanceof SkStorageMap) m.drop(sock, true);
        else if (m instanceof SockHashMap) m.dropSocket(sock);
      }
    }
  }

  /**
   * At a tail call during exploration: the state the target starts from is everything that decides
   * what follows (the context, the maps programs wrote, the sockets, the clock, the observations
   * so far); a path that reaches a state seen before is pruned (explore() keeps it complete).
   */
  private atTailCall(target: VmProgram, ctx: Region | null): void {
    if (this.seenStates === null) return;
    const parts: string[] = [String(this.opIndex), JSON.stringify(this.observed), target.name, String(this.vm.machine.tailCalls), ctx ? this.contextKey(ctx) : '-', String(this.vm.now), String(this.nextPort)];
    for (const [name, m] of this.vm.maps) {
      if (m.programWrites > 0 || m.def.internal || m instanceof SkStorageMap || m instanceof SockHashMap) parts.push(`${name}:${m.digest()}`);
    }
    for (const [id, r] of this.socks) {
      const s = r.sock;
      parts.push(`${id}:${r.connected}:${JSON.stringify(r.peer)}:${r.sent}:${toHex(concat(r.received))}:${s.state}:${JSON.stringify(s.local)}:${JSON.stringify(s.remote)}:${s.cbFlags}`);
    }
    const key = parts.join('|');
    const trail = this.vm.choices.trail?.() ?? '';
    const first = this.seenStates.get(key);
    if (first === undefined) this.seenStates.set(key, trail);
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

  async close(): Promise<void> {
    this.closeAll();
    this.closed = true;
  }

  // ---- maps ------------------------------------------------------------------------------------

  private applyState(next: MapState): void {
    let diff;
    try {
      diff = this.tracker.step(next);
    } catch (e) {
      if (e instanceof KmeshCheckError) throw e;
      throw new KmeshCheckError('codec', `the map state cannot be encoded: ${(e as Error).message}`);
    }
    for (const name of ROUTING_MAPS) {
      const d = diff.get(name);
      const map = this.routing.get(name);
      if (!d || !map) continue;
      for (const k of d.deletes) map.delete(fromHex(k));
      for (const [k, v] of d.updates) {
        try {
          map.set(fromHex(k), v);
        } catch (e) {
          throw new KmeshCheckError('codec', `writing ${name} failed: ${(e as Error).message}`);
        }
      }
    }
  }

  // ---- operations --------------------------------------------------------------------------------

  private rec(id: SocketId, op: string): SockState {
    const r = this.socks.get(id);
    if (!r) throw new KmeshCheckError('codec', `${op} on socket ${id}, which no earlier 'socket' operation created`);
    return r;
  }

  private runOp(op: Operation): Observation {
    switch (op.op) {
      case 'socket':
        return this.opSocket(op.sock, op.family, op.protocol);
      case 'connect':
        return this.opConnect(this.rec(op.sock, 'connect'), op.dest);
      case 'send':
        return this.opSend(this.rec(op.sock, 'send'), op.messages);
      case 'close':
        this.rec(op.sock, 'close');
        this.closeSock(op.sock);
        return { op: 'close', sock: op.sock };
      case 'apply':
        this.applyState(op.state);
        return { op: 'apply', sock: null };
      default:
        throw new KmeshCheckError('codec', `unknown operation ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }

  private opSocket(id: SocketId, family: Family, protocol: 'tcp' | 'udp'): Observation {
    if (this.socks.has(id)) throw new KmeshCheckError('codec', `socket ${id} is created twice in one case`);
    if (family !== 'inet' && family !== 'inet6') throw new KmeshCheckError('codec', `socket ${id}: family must be inet or inet6, got ${String(family)}`);
    if (protocol !== 'tcp' && protocol !== 'udp') throw new KmeshCheckError('codec', `socket ${id}: protocol must be tcp or udp, got ${String(protocol)}`);
    const sock = new VmSock(id, family, protocol, 0x1000 + this.socks.size);
    this.socks.set(id, { sock, connected: false, connecting: false, kernel: FRESH_SOCKET, peer: null, sent: 0, expected: [], received: [] });
    return { op: 'socket', sock: id };
  }

  private storageOf(r: SockState): StorageView | null {
    const b = this.storage.get(r.sock);
    return b ? storageView(b, r.sock.family) : null;
  }

  /** What the kernel harness sees: the socket's forward tuple is a key of km_socket. */
  private inSockhashObserved(r: SockState): boolean {
    const { local, remote } = r.sock;
    if (r.sock.protocol !== 'tcp' || !r.connected || !local || !remote) return false;
    const key = encodeSockTuple({ family: r.sock.family, src: local, dst: remote });
    return this.sockhash.lookup(key, 0) !== null;
  }

  private opConnect(r: SockState, given: SockAddr): Observation {
    const sock = r.sock;
    const family = sock.family;
    let addr: Uint8Array;
    try {
      addr = parseAddress(canonicalSockText(family, given.addr));
    } catch (e) {
      if (e instanceof AddressError) throw new KmeshCheckError('codec', `connect on socket ${sock.id}: ${e.message}`);
      throw e;
    }
    if (!Number.isInteger(given.port) || given.port < 0 || given.port > 0xffff) {
      throw new KmeshCheckError('codec', `connect on socket ${sock.id}: port ${given.port} is not an integer in 0..65535`);
    }
    const result = (peer: SockAddr | null, error: string | null): Observation => ({
      op: 'connect', sock: sock.id, peer, error, storage: this.storageOf(r), inSockhash: this.inSockhashObserved(r),
    });
    // The kernel refuses a connected or connecting TCP socket before the cgroup hook runs (measured
    // on 6.18: the program does not run).
    if (sock.protocol === 'tcp' && (r.connected || r.connecting)) return result(null, r.connected ? 'EISCONN' : 'EALREADY');

    const prog = family === 'inet' ? this.progs.connect4 : this.progs.connect6;
    const verdict = this.vm.runConnectRaw(prog, sock, addr, given.port);
    if (verdict !== 1) return result(null, 'EPERM');
    const dest = (family === 'inet' ? this.vm.connect4Ctx : this.vm.connect6Ctx).dest();
    const k = kernelConnect(this.environment, family, sock.protocol, dest, r.kernel);
    r.kernel = k.socket;
    if (sock.protocol === 'udp') {
      if (k.outcome === 'connected') {
        sock.setEnds({ addr: k.local ?? '', port: this.nextPort++ }, k.peer ?? { addr: kernelPeer(family, dest).addr, port: dest.port }, TCP_ESTABLISHED);
        r.connected = true;
        r.peer = k.peer;
      }
      return result(k.peer, k.error);
    }
    if (k.syn) {
      // sockops TCP_CONNECT_CB: the SYN leaves from the route's source towards the final destination.
      sock.setEnds({ addr: k.syn.local, port: this.nextPort++ }, k.syn.remote, TCP_SYN_SENT);
      this.vm.runSockOps(this.progs.sockops, sock, SockOps.TCP_CONNECT_CB);
    }
    if (k.outcome === 'connected' && k.peer) {
      sock.setEnds({ addr: k.local ?? k.syn?.local ?? '', port: sock.local?.port ?? this.nextPort++ }, k.peer, TCP_ESTABLISHED);
      this.vm.runSockOps(this.progs.sockops, sock, SockOps.ACTIVE_ESTABLISHED_CB);
      r.connected = true;
      r.peer = k.peer;
      r.received = [];
    } else if (k.outcome === 'in-progress') {
      r.connecting = true;
    } else {
      sock.setEnds(null, null, TCP_CLOSE);
    }
    return result(k.peer, k.error);
  }

  private opSend(r: SockState, messages: number): Observation {
    if (!Number.isInteger(messages) || messages < 0) throw new KmeshCheckError('codec', `send on socket ${r.sock.id}: messages must be a non-negative integer, got ${messages}`);
    const tcpConnected = r.sock.protocol === 'tcp' && r.connected;
    for (let i = 0; i < messages; i++) {
      // Only a message the socket takes counts (and numbers the next one), as in the harness:
      // an unconnected socket refuses it, and so does an sk_msg verdict of SK_DROP (EACCES).
      if (!r.connected) continue;
      const payload = payloadFor(r.sock.id, r.sent);
      if (tcpConnected && this.sockhash.has(r.sock)) {
        const out = this.vm.runSkMsg(this.progs.sendmsg, r.sock, payload);
        if (out.verdict !== 1) continue;
        r.received.push(out.bytes);
      } else if (tcpConnected) {
        r.received.push(payload);
      }
      r.sent++;
      r.expected.push(payload);
    }
    const stream: StreamView | null = tcpConnected ? this.streamOf(r) : null;
    return { op: 'send', sock: r.sock.id, stream, storage: this.storageOf(r) };
  }

  private streamOf(r: SockState): StreamView {
    const got = concat(r.received);
    const parsed = parseTlv(got);
    const rest = parsed ? got.subarray(parsed.size) : got;
    return { tlv: parsed ? parsed.tlv : null, payloadIntact: sameBytes(rest, concat(r.expected)), hex: toHex(got) };
  }

  private closeSock(id: SocketId): void {
    const r = this.socks.get(id);
    if (!r) return;
    for (const m of this.vm.maps.values()) {
      if (m instanceof SkStorageMap) m.drop(r.sock, true);
      else if (m instanceof SockHashMap) m.dropSocket(r.sock);
    }
    this.socks.delete(id);
  }

  private closeAll(): void {
    for (const id of [...this.socks.keys()]) this.closeSock(id);
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
