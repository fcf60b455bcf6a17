// The VM's socket layer for the case runner: the compiled programs in the VM behind a socket
// layer that reports what the kernel would (model/environment.ts, kernelConnect: measured on
// 6.18), so that the VM observes what the kernel executor observes, without privileges:
//  - connect: a connected or connecting TCP socket fails with EISCONN / EALREADY before the hook
//    runs (measured: the cgroup program does not run); otherwise connect4/connect6 runs (tail calls
//    included), then kernelConnect decides; a TCP SYN runs sockops TCP_CONNECT_CB, an established
//    connection ACTIVE_ESTABLISHED_CB.
//  - send: each message the socket takes goes through sk_msg when the socket is in the sockhash
//    sendmsg_prog is attached to; the peer's stream is what the program let through, in order.
//  - close: the socket's storage and sockhash entries go away.
// Enrolment happens through the programs (control connects bound to each enrolled local), or by
// km_manage written as a control plane would (Case.enrolmentWrite).

import type { Case, Family, MapState, Protocol, SockAddr, SocketId, StartEnrolment } from '../../model/domain.js';
import { CONTROL_ADDR, ControlPort, writtenEnrolment } from '../../model/domain.js';
import { ANY_ADDRESS, kernelConnect, socketAtCreation, kernelPeer, withoutListener, type Environment, type KernelSocket } from '../../model/environment.js';
import { canonicalSockText, parseAddress } from '../../model/address.js';
import { ENABLE_MONITORING, ROUTING_MAPS, STRUCTS, monitoringBytes, type RoutingMapName } from '../codec/abi.js';
import { keyedTextMemo } from '../../shared/memo.js';
import { SOCKADDR_MAX, writeSockaddr } from '../codec/sockaddr.js';
import { toHex } from '../codec/state.js';
import { encodeSockTuple } from '../codec/structs.js';
import { enrolmentEntries } from '../codec/manage.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { ChoiceSource } from '../runner/choices.js';
import { errnoNumber } from '../runner/errno.js';
import { namesPort, statePorts } from '../runner/listening.js';
import type { ConnectSeen, DatagramReceived, DatagramSent, RunnerSocket, SocketLayer } from '../runner/socket-layer.js';
import { concatBytes } from '../runner/streams.js';
import type { VmProgram } from './program.js';
import { ArrayMap, HashMap, RingBufMap, SkStorageMap, SockHashMap, type VmMap } from './maps.js';
import { SockOps, TCP_CLOSE, TCP_ESTABLISHED, TCP_SYN_SENT, VmSock } from './context.js';
import type { Vm } from './vm.js';
import { VmDns } from './dns.js';
import { EnrolMemo } from './enrol-memo.js';

const FIRST_EPHEMERAL_PORT = 40000;
const MONITORING_ON = monitoringBytes(true);
const MONITORING_OFF = monitoringBytes(false);

/** The bytes of `addr` as a socket of `family` spells it (the runner checked it). */
const destBytes = keyedTextMemo((family: Family, addr: string): Uint8Array => parseAddress(canonicalSockText(family, addr)));

/** The programs the layer runs, by role. */
export interface VmPrograms {
  readonly connect4: VmProgram;
  readonly connect6: VmProgram;
  readonly sockops: VmProgram;
  readonly sendmsg: VmProgram;
}

export interface VmSocket {
  readonly sock: VmSock;
  /** TCP: established; UDP: associated with a peer. */
  connected: boolean;
  /** TCP left in SYN_SENT (kernelConnect's in-progress): further connects fail with EALREADY. */
  connecting: boolean;
  /** What the kernel keeps of the socket between connects (model/environment.ts). */
  kernel: KernelSocket;
  peer: SockAddr | null;
  /** What the peer of a TCP connection received, in order. */
  received: Uint8Array[];
}

/** The loaded maps by what a case's start and a socket's end do to them. */
interface ResetPlan {
  /** Global data, back to its initial bytes. */
  readonly globals: ArrayMap[];
  readonly ringbufs: RingBufMap[];
  /** Other maps, emptied when programs wrote them through helpers (not km_manage nor the routing maps). */
  readonly written: VmMap[];
  /** Other arrays, zeroed every case: programs write their values through lookup pointers, which no count sees. */
  readonly arrays: ArrayMap[];
  readonly storages: SkStorageMap[];
  readonly sockhashes: SockHashMap[];
  readonly routing: HashMap[];
}

export class VmSockets implements SocketLayer<VmSocket> {
  readonly keepsEnrolment = false;
  private readonly routing: ReadonlyMap<string, HashMap>;
  private readonly manage: HashMap;
  private readonly storageMap: SkStorageMap;
  private readonly sockhash: SockHashMap;
  /** The running case: the ports it names listen (bpf/runner/listening.ts). */
  private running: Case | null = null;
  /**
   * During bounded-exhaustive exploration the case's state is decided while it runs: the entries
   * decided so far, whose ports listen too (the policy the concrete case will get).
   */
  lazyState: (() => MapState) | null = null;
  private live = 0;
  nextPort = FIRST_EPHEMERAL_PORT;
  private readonly peerBytes = new Uint8Array(SOCKADDR_MAX);
  private readonly tuple = new Uint8Array(STRUCTS.bpf_sock_tuple.size);
  private readonly seen: { error: number; peer: Uint8Array | null; storage: Uint8Array | null; inSockhash: boolean } = { error: -1, peer: null, storage: null, inSockhash: false };
  /** UDP datagrams, the DNS stand-in and the section 6 hooks (dns.ts). */
  readonly dns: VmDns;
  /** Sockets of earlier cases, by family and protocol, for open() to reuse; those closed in this case join at its end. */
  private readonly pool = new Map<string, VmSock[]>();
  private readonly closed: VmSock[] = [];
  /**
   * Whether enrolment may be replayed from a recording (enrol-memo.ts): on for the executor's
   * plain runs, off while exploring or tracing, where every program run is a step to see.
   */
  memoEnrolment = false;
  private enrolMemo: EnrolMemo | null = null;
  /** The enrolment's control sockets, by family (forgotten by every map after each use). */
  private readonly control = new Map<Family, VmSock>();

  constructor(
    private readonly vm: Vm,
    private readonly progs: VmPrograms,
    private readonly env: Environment,
  ) {
    this.routing = new Map(ROUTING_MAPS.map((n) => [n, vm.map<HashMap>(n)]));
    this.manage = vm.map<HashMap>('km_manage');
    this.storageMap = vm.map<SkStorageMap>('km_sockstorage');
    this.sockhash = vm.map<SockHashMap>('km_socket');
    this.dns = new VmDns(vm, env);
  }

  /**
   * Every case starts from the same VM state, so that a case's outcome does not depend on the
   * cases before it (and exploration can replay it): global data back to its initial bytes, ring
   * buffers emptied, arrays zeroed, and maps that programs wrote (other than km_manage, rebuilt
   * by enrolment) emptied; routing maps a program wrote are emptied (true: the runner writes them again whole).
   */
  beginCase(): boolean {
    this.nextPort = FIRST_EPHEMERAL_PORT;
    this.dns.reset();
    this.vm.resetClock();
    // Indexed loops over lists made once: this runs for every case.
    const r = (this.resets ??= this.resetPlan());
    for (let i = 0; i < r.globals.length; i++) {
      const g = r.globals[i]!;
      g.values[0]?.bytes.set(g.def.internal!.initial);
    }
    this.applyMonitoring();
    for (let i = 0; i < r.ringbufs.length; i++) r.ringbufs[i]!.clear();
    for (let i = 0; i < r.arrays.length; i++) r.arrays[i]!.clear();
    for (let i = 0; i < r.written.length; i++) {
      const m = r.written[i]!;
      if (m.programWrites > 0) {
        m.clear();
        m.programWrites = 0;
      }
    }
    for (let i = 0; i < r.routing.length; i++) {
      if (r.routing[i]!.programWrites > 0) {
        this.resetMaps();
        return true;
      }
    }
    return false;
  }

  /** enable_monitoring as the runner set it; beginCase sets it again over the objects' initial bytes. */
  private monitoring = true;
  private monitoringVars: Uint8Array[] | null = null;

  setMonitoring(on: boolean): void {
    this.monitoring = on;
    this.applyMonitoring();
  }

  private applyMonitoring(): void {
    const vars = (this.monitoringVars ??= this.vm.globals(ENABLE_MONITORING));
    const bytes = this.monitoring ? MONITORING_ON : MONITORING_OFF;
    for (let i = 0; i < vars.length; i++) vars[i]!.set(bytes);
  }

  /** What beginCase resets and forget() drops sockets from, by kind, from the loaded maps (worked out once: the objects are loaded first). */
  private resets: ResetPlan | null = null;
  private resetPlan(): ResetPlan {
    const plan: ResetPlan = { globals: [], ringbufs: [], written: [], arrays: [], storages: [], sockhashes: [], routing: [...this.routing.values()] };
    for (const m of this.vm.maps.values()) {
      if (m.def.internal && m instanceof ArrayMap) plan.globals.push(m);
      else if (m instanceof ArrayMap && !this.routing.has(m.name)) plan.arrays.push(m);
      else if (m instanceof RingBufMap) plan.ringbufs.push(m);
      else if (m instanceof SkStorageMap) plan.storages.push(m);
      else if (m instanceof SockHashMap) plan.sockhashes.push(m);
      else if (m !== this.manage && !this.routing.has(m.name)) plan.written.push(m);
    }
    return plan;
  }

  readonly writeMap = (name: RoutingMapName, key: Uint8Array, value: Uint8Array | null): void => {
    const map = this.routing.get(name)!;
    if (value === null) {
      map.delete(key);
      return;
    }
    try {
      map.setBetweenRuns(key, value);
    } catch (e) {
      throw new KmeshCheckError('codec', `writing ${name} failed: ${(e as Error).message}`);
    }
  };

  mapsWritten(): void {}

  resetMaps(): void {
    for (const m of this.routing.values()) {
      m.clear();
      m.programWrites = 0;
    }
  }

  useChoices(choices: ChoiceSource): void {
    this.vm.choices = choices;
  }

  /**
   * Enrols the way the kernel executor does: one TCP control connect to 0.0.0.2:929 or [::2]:929
   * bound to each of the environment's enrolled locals, through the programs (connect records the
   * netns cookie, sockops TCP_CONNECT_CB the local IP); no listener, so refused. Withdrawing from
   * a fresh km_manage is emptying it. With memoEnrolment, a recorded enrolment may stand in for
   * the control connects (enrol-memo.ts); the control sockets' ports are taken either way. A
   * written enrolment writes the entries instead, as a control plane would (codec/manage.ts).
   */
  setEnrolment(want: StartEnrolment): void {
    if (want === false) return this.manage.clear();
    const written = writtenEnrolment(want);
    if (written) {
      this.manage.clear();
      for (const [k, v] of enrolmentEntries(BigInt(this.vm.netnsCookie), this.env, written)) this.manage.set(k, v);
      return;
    }
    if (!this.memoEnrolment) return this.enrol();
    const first = this.nextPort;
    (this.enrolMemo ??= new EnrolMemo(this.vm, this.manage)).enrol(first, () => this.enrol());
    this.nextPort = first + this.env.enrolledLocals.length;
  }

  private enrol(): void {
    this.manage.clear();
    for (const local of this.env.enrolledLocals) {
      const family: Family = local.includes(':') ? 'inet6' : 'inet';
      let sock = this.control.get(family);
      if (sock) sock.reuse(-1, 0xfff);
      else this.control.set(family, (sock = new VmSock(-1, family, 'tcp', 0xfff)));
      const prog = family === 'inet' ? this.progs.connect4 : this.progs.connect6;
      const ctx = family === 'inet' ? this.vm.connect4Ctx : this.vm.connect6Ctx;
      this.vm.runConnectRaw(prog, sock, destBytes(family, CONTROL_ADDR[family]), ControlPort.enrol);
      sock.setEnds({ addr: canonicalSockText(family, local), port: this.nextPort++ }, kernelPeer(family, ctx.dest()), TCP_SYN_SENT);
      this.vm.runSockOps(this.progs.sockops, sock, SockOps.TCP_CONNECT_CB);
      this.forget(sock);
    }
  }

  listen(c: Case): void {
    this.running = c;
  }

  private listens(port: number): boolean {
    if (this.running !== null && namesPort(this.running, port)) return true;
    if (this.lazyState === null) return false;
    const decided = new Set<number>();
    statePorts(this.lazyState(), decided);
    return decided.has(port);
  }

  open(id: SocketId, family: Family, protocol: Protocol, bindTo?: string): VmSocket {
    const cookie = 0x1000 + this.live++;
    let sock = this.pool.get(`${family}|${protocol}`)?.pop();
    if (sock) sock.reuse(id, cookie);
    else sock = new VmSock(id, family, protocol, cookie);
    const s: VmSocket = { sock, connected: false, connecting: false, kernel: socketAtCreation({ bindTo }), peer: null, received: [] };
    // bind(addr, port 0): the address and an ephemeral port at once, seen by every program after.
    if (bindTo !== undefined) this.bind(s, bindTo);
    return s;
  }

  connect(r: RunnerSocket<VmSocket>, given: SockAddr): ConnectSeen {
    const s = r.handle;
    const sock = s.sock;
    const family = sock.family;
    const addr = destBytes(family, given.addr);
    // The kernel refuses a connected or connecting TCP socket before the cgroup hook runs (measured
    // on 6.18: the program does not run).
    if (sock.protocol === 'tcp' && (s.connected || s.connecting)) return this.result(s, null, s.connected ? 'EISCONN' : 'EALREADY');

    const prog = family === 'inet' ? this.progs.connect4 : this.progs.connect6;
    const verdict = this.vm.runConnectRaw(prog, sock, addr, given.port);
    if (verdict !== 1) return this.result(s, null, 'EPERM');
    const dest = (family === 'inet' ? this.vm.connect4Ctx : this.vm.connect6Ctx).dest();
    let k = kernelConnect(this.env, family, sock.protocol, dest, s.kernel);
    if (sock.protocol === 'tcp' && !this.listens(dest.port)) k = withoutListener(k, family);
    s.kernel = k.socket;
    if (sock.protocol === 'udp') {
      // Every UDP connect autobinds the socket once its hook has run (it ran without a port).
      this.bind(s);
      this.dns.connected(s, k.outcome === 'connected' ? null : k.error);
      if (k.outcome === 'connected') {
        sock.setEnds({ addr: k.local ?? '', port: sock.local!.port }, k.peer ?? { addr: kernelPeer(family, dest).addr, port: dest.port }, TCP_ESTABLISHED);
        s.connected = true;
        s.peer = k.peer;
      }
      return this.result(s, k.peer, k.error);
    }
    if (k.syn) {
      // sockops TCP_CONNECT_CB: the SYN leaves from the route's source towards the final destination.
      sock.setEnds({ addr: k.syn.local, port: this.nextPort++ }, k.syn.remote, TCP_SYN_SENT);
      this.vm.runSockOps(this.progs.sockops, sock, SockOps.TCP_CONNECT_CB);
    }
    if (k.outcome === 'connected' && k.peer) {
      sock.setEnds({ addr: k.local ?? k.syn?.local ?? '', port: sock.local?.port ?? this.nextPort++ }, k.peer, TCP_ESTABLISHED);
      this.vm.runSockOps(this.progs.sockops, sock, SockOps.ACTIVE_ESTABLISHED_CB);
      s.connected = true;
      s.peer = k.peer;
      s.received = [];
    } else if (k.outcome === 'in-progress') {
      s.connecting = true;
    } else {
      sock.setEnds(null, null, TCP_CLOSE);
    }
    return this.result(s, k.peer, k.error);
  }

  private result(s: VmSocket, peer: SockAddr | null, error: string | null): ConnectSeen {
    const seen = this.seen;
    seen.error = error === null ? -1 : errnoNumber(error);
    seen.peer = null;
    if (peer) {
      writeSockaddr(this.peerBytes, s.sock.family, peer);
      seen.peer = this.peerBytes;
    }
    // The region's own bytes: ConnectSeen's buffers are read before the next call.
    seen.storage = this.storageMap.storageOf(s.sock)?.bytes ?? null;
    seen.inSockhash = this.inSockhash(s);
    return seen;
  }

  /**
   * Gives a UDP socket without one a port on `addr`, which ctx->sk shows the programs from then on.
   * Its first connect or send does so on the wildcard address (inet_autobind): measured on 6.18,
   * sendmsg4 and recvmsg4 see the port with src_ip4 0, and a first connect's connect4 sees
   * neither (it runs before the bind).
   */
  private bind(s: VmSocket, addr: string = ANY_ADDRESS[s.sock.family]): void {
    if (s.sock.protocol !== 'udp') return;
    this.dns.bind(s);
    if (s.sock.local === null) s.sock.setEnds({ addr, port: this.nextPort++ }, null, s.sock.state);
  }

  /** What the kernel executor sees: the socket's forward tuple is a key of km_socket. */
  private inSockhash(s: VmSocket): boolean {
    const { local, remote } = s.sock;
    if (s.sock.protocol !== 'tcp' || !s.connected || !local || !remote) return false;
    const key = encodeSockTuple({ family: s.sock.family, src: local, dst: remote }, this.tuple);
    return this.sockhash.lookup(key, 0) !== null;
  }

  send(r: RunnerSocket<VmSocket>, payload: Uint8Array): number {
    const s = r.handle;
    // Every UDP send autobinds, even one refused for want of a destination.
    this.bind(s);
    // An unconnected socket refuses the message, and so does an sk_msg verdict of SK_DROP (EACCES).
    if (!s.connected) return 0;
    if (s.sock.protocol !== 'tcp') {
      // A connected UDP socket's datagram: the DNS stand-in at its peer answers it.
      this.dns.sent(s, payload);
      return payload.length;
    }
    if (this.sockhash.has(s.sock)) {
      const out = this.vm.runSkMsg(this.progs.sendmsg, s.sock, payload);
      if (out.verdict !== 1) return 0;
      s.received.push(out.bytes);
    } else {
      s.received.push(payload);
    }
    return payload.length;
  }

  received(r: RunnerSocket<VmSocket>): Uint8Array | null {
    const s = r.handle;
    return s.sock.protocol === 'tcp' && s.connected ? concatBytes(s.received) : null;
  }

  storage(r: RunnerSocket<VmSocket>): Uint8Array | null {
    return this.storageMap.get(r.handle.sock) ?? null;
  }

  close(r: RunnerSocket<VmSocket>): void {
    this.forget(r.handle.sock);
    this.dns.dropSocket(r.id);
    this.live--;
    this.closed.push(r.handle.sock);
  }

  sendto(r: RunnerSocket<VmSocket>, dest: SockAddr, query: string): DatagramSent {
    this.bind(r.handle);
    return this.dns.sendto(r.handle, { addr: canonicalSockText(r.family, dest.addr), port: dest.port }, query);
  }

  recvfrom(r: RunnerSocket<VmSocket>): DatagramReceived {
    return this.dns.recvfrom(r.handle);
  }

  deliver(r: RunnerSocket<VmSocket>, from: SockAddr, data: string): string | null {
    return this.dns.deliver(r.handle, from, data);
  }

  private forget(sock: VmSock): void {
    const r = (this.resets ??= this.resetPlan());
    for (const m of r.storages) m.drop(sock, true);
    for (const m of r.sockhashes) m.dropSocket(sock);
  }

  /** The case's sockets are closed: open() may reuse them from the next case on. */
  endCase(): void {
    for (const sock of this.closed) {
      const key = `${sock.family}|${sock.protocol}`;
      const free = this.pool.get(key);
      if (!free) this.pool.set(key, [sock]);
      else if (free.length < 64) free.push(sock);
    }
    this.closed.length = 0;
  }

  /** The sockets' state, for the exploration's state keys. */
  socketsKey(sockets: ReadonlyMap<SocketId, RunnerSocket<VmSocket>>): string[] {
    const parts: string[] = [this.dns.digest()];
    for (const [id, r] of sockets) {
      const s = r.handle;
      const k = s.sock;
      parts.push(`${id}:${s.connected}:${JSON.stringify(s.peer)}:${r.sent}:${toHex(concatBytes(s.received))}:${k.state}:${JSON.stringify(k.local)}:${JSON.stringify(k.remote)}:${k.cbFlags}`);
    }
    return parts;
  }
}
