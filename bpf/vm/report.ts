// Connection-report cases (section 7) in the userspace VM: the routing objects and the cgroup_skb
// object in one VM per case, a TCP connection played as the kernel plays it (connect4/6,
// TCP_CONNECT_CB, the handshake's packets through cgroup_skb, ACTIVE then PASSIVE_ESTABLISHED,
// data and ACK packets, the FIN exchange or a reset with its STATE_CB calls), and the clock an input: it
// reads the same value until the case lets time pass (ReportSend.waitNs, closeWaitNs), so a
// periodic report is generated, not waited for. The rings hand out poisoned memory (maps.ts).
// Records leave as hex, decoded by the same code as the kernel's (bpf/kernel/report/run.ts).

import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { SockAddr } from '../../model/domain.js';
import { CONTROL_ADDR, ControlPort } from '../../model/domain.js';
import { canonicalSockText, parseAddress, v4Mapped, v4MappedInner, type Family } from '../../model/address.js';
import type { ReportCase, ReportConn } from '../../model/report/domain.js';
import { REPORT_MANAGED_LOCALS, REPORT_UNMANAGED_LOCAL, clientLocalAddr } from '../../model/report/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { ENABLE_MONITORING, monitoringBytes } from '../codec/abi.js';
import { encodeState, fromHex, toHex } from '../codec/state.js';
import { REPORT_PROGRAMS, checkReportMap, type RawReportObservation } from '../codec/report.js';
import type { ReportObjectPaths } from '../kernel/report/loader.js';
import { BPF_SOCK_OPS_STATE_CB_FLAG, SockOps, TCP_CLOSE, TCP_ESTABLISHED, TCP_SYN_SENT, TCP_SOCK, VmSock } from './context.js';
import { linkObject, type LinkedObject } from './link.js';
import { ArrayMap, HashMap, RingBufMap } from './maps.js';
import type { VmProgram } from './program.js';
import { Vm } from './vm.js';
import { ElfError } from './elf.js';
import { coverageOf, type CoverageSummary } from './coverage.js';

/** Where the clock stands when a case starts: a machine up for 1000 s (ktime counts from boot). */
export const REPORT_CLOCK_START_NS = 1_000_000_000_000;

const TCP = { SYN_RECV: 3, FIN_WAIT1: 4, FIN_WAIT2: 5, CLOSE_WAIT: 8, LAST_ACK: 9, LISTEN: 10 } as const;
/** A SYN, SYN-ACK, ACK or FIN carries no payload: an IPv4 + TCP header with options. */
const HEADER = 60;
const FIRST_PORT = 40000;

const ROLES = ['connect', 'sockops', 'sendmsg', 'skb'] as const;

interface Programs {
  readonly connect4: VmProgram;
  readonly connect6: VmProgram;
  readonly sockops: VmProgram;
  readonly ingress: VmProgram | null;
  readonly egress: VmProgram | null;
}

const fold = (a: string) => v4MappedInner(a) ?? a;

/** The programs of section 7, whose coverage the report phase shows. */
const VM_REPORT_PROGRAMS = [REPORT_PROGRAMS.sockops[0], ...REPORT_PROGRAMS.skb] as const;

/** One VM for all cases, brought back to its loaded state before each (objects linked once). */
export class VmReportRunner {
  private readonly linked: ReadonlyArray<{ role: (typeof ROLES)[number]; obj: LinkedObject }>;
  private vm: Vm | null = null;

  constructor(objects: ReportObjectPaths) {
    this.linked = ROLES.map((role) => {
      const path = objects[role];
      if (!existsSync(path)) throw new KmeshCheckError('object-file', `${role} object ${path} does not exist: build it (npm run build:bpf) or give the right path`);
      try {
        return { role, obj: linkObject(path) };
      } catch (e) {
        throw new KmeshCheckError(e instanceof ElfError ? 'object-file' : 'load', `the VM cannot load ${path}: ${(e as Error).message}`);
      }
    });
    // Section 7's maps as the kernel loader checks them.
    for (const { role, obj } of this.linked) for (const m of obj.maps) checkReportMap(`map ${m.name} in ${basename(objects[role])}`, m.name, m);
    // Fail early on objects without the report programs, as the kernel loader does.
    const skb = this.linked.find((l) => l.role === 'skb')!.obj;
    for (const name of REPORT_PROGRAMS.skb) {
      if (!skb.programs.some((p) => p.name === name)) throw new KmeshCheckError('object-content', `skb object ${objects.skb} has no program '${name}'`);
    }
  }

  run(cases: readonly ReportCase[]): RawReportObservation[] {
    return cases.map((c) => new VmReportCase(this.freshVm(), c).run());
  }

  /**
   * Instruction and branch coverage of the section's programs (sockops and cgroup_skb: the connect
   * programs' own are the routing phases') over the cases run so far; null before the first.
   */
  coverage(): CoverageSummary | null {
    const vm = this.vm;
    return vm
      ? coverageOf(
          vm.machine,
          VM_REPORT_PROGRAMS.map((name) => vm.program(name)),
        )
      : null;
  }

  /**
   * The VM as just loaded: every map emptied (ring buffers back to the poison), global data back
   * to its initial bytes, the clock back to its default; the compiled programs are kept.
   */
  private freshVm(): Vm {
    if (!this.vm) {
      this.vm = new Vm({ netnsCookie: 9 });
      for (const l of this.linked) this.vm.load(l.obj);
      return this.vm;
    }
    for (const m of this.vm.maps.values()) {
      if (m.def.internal && m instanceof ArrayMap) m.values[0]?.bytes.set(m.def.internal.initial);
      else m.clear();
      m.programWrites = 0;
    }
    this.vm.resetClock();
    return this.vm;
  }
}

/** One case in a VM as just loaded. */
class VmReportCase {
  private readonly progs: Programs;
  private nextPort = FIRST_PORT;
  /** Socket ids (socket storage is keyed by them): one per socket of the case. */
  private nextId = 1;
  private readonly probe: RingBufMap;
  private readonly authReq: RingBufMap;
  private readonly authRes: HashMap;

  constructor(
    private readonly vm: Vm,
    private readonly c: ReportCase,
  ) {
    const prog = (name: string) => this.vm.program(name);
    this.progs = {
      connect4: prog('cgroup_connect4_prog'),
      connect6: prog('cgroup_connect6_prog'),
      sockops: prog(VM_REPORT_PROGRAMS[0]),
      ingress: prog(VM_REPORT_PROGRAMS[1]),
      egress: prog(VM_REPORT_PROGRAMS[2]),
    };
    this.vm.setTailCall('km_cgr_tailcall', 0, this.progs.connect4);
    this.vm.setTailCall('km_cgr_tail6', 1, this.progs.connect6);
    const map = <T>(name: string, kind: abstract new (...a: never[]) => T): T => {
      const m = this.vm.maps.get(name);
      if (!(m instanceof kind)) throw new KmeshCheckError('object-content', `no object defines map ${name} of the right type (kmesh-dataplane.md section 7)`);
      return m;
    };
    this.probe = map('km_tcp_probe', RingBufMap);
    this.authReq = map('km_auth_req', RingBufMap);
    this.authRes = map('km_auth_res', HashMap);
    this.vm.clockStep = 0;
    this.vm.setClock(REPORT_CLOCK_START_NS);
  }

  /** Sets a global in every object that has it (as user space writes each object's data map). */
  private setGlobal(name: string, bytes: Uint8Array): void {
    for (const v of this.vm.globals(name)) v.set(bytes);
  }

  private setup(): void {
    const c = this.c;
    const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
    const mapped = (ip?: string) => (ip ? parseAddress(`::ffff:${ip}`) : new Uint8Array(16));
    // As loaded (freshVm put the initial bytes back), or as user space sets them.
    if (!c.globalsAsLoaded) {
      this.setGlobal(ENABLE_MONITORING, monitoringBytes(c.monitoring));
      this.setGlobal('enable_periodic_report', u32(c.periodic ? 1 : 0));
    }
    this.setGlobal('node_ip', mapped(c.nodeIp));
    this.setGlobal('pod_gateway', mapped(c.podGateway));
    for (const [name, entries] of encodeState(c.state)) {
      const m = this.vm.maps.get(name);
      if (!(m instanceof HashMap)) throw new KmeshCheckError('object-content', `no object defines map ${name}`);
      for (const [k, v] of entries) m.set(fromHex(k), v);
    }
    // Enrolment as the kernel harness does it: a refused control connect from each managed local;
    // outside, the namespace then withdraws from the unmanaged one (its IP was never enrolled).
    for (const local of REPORT_MANAGED_LOCALS) this.controlConnect(local, ControlPort.enrol);
    if (c.namespaceOutside) this.controlConnect(REPORT_UNMANAGED_LOCAL, ControlPort.withdraw);
  }

  /** A refused TCP control connect bound to `local`: connect4/6, then sockops' TCP_CONNECT_CB. */
  private controlConnect(local: string, port: number): void {
    const family: Family = local.includes(':') ? 'inet6' : 'inet';
    const sock = new VmSock(this.nextId++, family, 'tcp', this.vm.netnsCookie);
    sock.setEnds({ addr: local, port: 0 }, null, TCP_CLOSE);
    const r = this.vm.runConnect(family === 'inet' ? this.progs.connect4 : this.progs.connect6, sock, { addr: CONTROL_ADDR[family], port });
    sock.setEnds({ addr: local, port: this.nextPort++ }, r.dest, TCP_SYN_SENT);
    this.vm.runSockOps(this.progs.sockops, sock, SockOps.TCP_CONNECT_CB);
  }

  private packet(dir: 'ingress' | 'egress', sock: VmSock, len: number): void {
    const prog = dir === 'ingress' ? this.progs.ingress : this.progs.egress;
    if (prog) this.vm.runSkb(prog, sock, len);
  }

  /** A TCP state change; STATE_CB runs when the socket asked for it. */
  private setState(sock: VmSock, state: number): void {
    const old = sock.state;
    sock.setEnds(sock.local, sock.remote, state);
    if (sock.cbFlags & BPF_SOCK_OPS_STATE_CB_FLAG) this.vm.runSockOps(this.progs.sockops, sock, SockOps.STATE_CB, [old, state]);
  }

  private addBytes(sock: VmSock, field: 'bytes_received' | 'bytes_acked', n: number): void {
    const v = sock.tcpRegion!.view;
    v.setBigUint64(TCP_SOCK[field], v.getBigUint64(TCP_SOCK[field], true) + BigInt(n), true);
  }

  /** Connection `conn` made and its sends sent; `close` closes it (now, or after the later connections: ReportConn.closeLast). */
  private connection(conn: ReportConn, auth: string[]): { client: SockAddr; server: SockAddr; at: { client: string; server: string }; close: () => void } {
    const clientFamily = conn.clientFamily ?? 'inet';
    const listenFamily: Family = conn.listen.addr.includes(':') ? 'inet6' : 'inet';
    const localIp = clientLocalAddr(conn);
    const client = new VmSock(this.nextId++, clientFamily, 'tcp', this.vm.netnsCookie);
    client.setEnds({ addr: canonicalSockText(clientFamily, localIp), port: 0 }, null, TCP_CLOSE);
    const r = this.vm.runConnect(clientFamily === 'inet' ? this.progs.connect4 : this.progs.connect6, client, conn.connectTo);
    if (r.verdict !== 1) throw new KmeshCheckError('environment', `connect to ${conn.connectTo.addr}:${conn.connectTo.port} failed (EPERM: the connect program refused it)`);
    if (fold(r.dest.addr) !== fold(conn.listen.addr) || r.dest.port !== conn.listen.port) {
      throw new KmeshCheckError('environment', `connect to ${conn.connectTo.addr}:${conn.connectTo.port} failed (ECONNREFUSED: routed to ${r.dest.addr}:${r.dest.port}, nothing listens there)`);
    }
    const clientAt = String(this.vm.now);
    const clientLocal = { addr: canonicalSockText(clientFamily, localIp), port: this.nextPort++ };
    client.setEnds(clientLocal, r.dest, TCP_SYN_SENT);
    this.vm.runSockOps(this.progs.sockops, client, SockOps.TCP_CONNECT_CB);
    const listener = new VmSock(this.nextId++, listenFamily, 'tcp', this.vm.netnsCookie);
    listener.setEnds(conn.listen, null, TCP.LISTEN);
    // The server end in the listener's family: an AF_INET6 listener sees an IPv4 client v4-mapped.
    const clientIp = fold(clientLocal.addr);
    const serverRemote = { addr: listenFamily === 'inet' || clientIp.includes(':') ? clientIp : v4Mapped(clientIp), port: clientLocal.port };
    const server = new VmSock(this.nextId++, listenFamily, 'tcp', this.vm.netnsCookie);
    server.setEnds(conn.listen, serverRemote, TCP.SYN_RECV);
    // SYN out and in (the listener filters it); the SYN-ACK leaves from a request socket (no full
    // socket for the program); the client takes it, is established, and ACKs; the listener
    // filters the ACK and the child runs PASSIVE_ESTABLISHED before it is marked established.
    this.packet('egress', client, HEADER);
    this.packet('ingress', listener, HEADER);
    // The handshake's time passes before the SYN-ACK reaches the client.
    this.vm.advanceClock(conn.handshakeNs ?? 0);
    this.packet('ingress', client, HEADER);
    client.setEnds(client.local, client.remote, TCP_ESTABLISHED);
    this.vm.runSockOps(this.progs.sockops, client, SockOps.ACTIVE_ESTABLISHED_CB);
    this.packet('egress', client, HEADER);
    this.packet('ingress', listener, HEADER);
    const serverAt = String(this.vm.now);
    this.vm.runSockOps(this.progs.sockops, server, SockOps.PASSIVE_ESTABLISHED_CB);
    this.setState(server, TCP_ESTABLISHED);
    for (const rec of this.authReq.drain()) {
      auth.push(toHex(rec));
      if (conn.storeVerdict) this.authRes.set(rec.slice(4, 40), new Uint8Array([1, 0, 0, 0]));
    }
    if (conn.monitoringOff) this.setGlobal(ENABLE_MONITORING, monitoringBytes(false));
    if (conn.monitoringOn) this.setGlobal(ENABLE_MONITORING, monitoringBytes(true));
    if (conn.withdraw) for (const local of REPORT_MANAGED_LOCALS) this.controlConnect(local, ControlPort.withdraw);
    for (const s of conn.sends) {
      this.vm.advanceClock(s.waitNs ?? 0);
      const [from, to] = s.from === 'client' ? [client, server] : [server, client];
      this.packet('egress', from, HEADER + s.size);
      this.packet('ingress', to, HEADER + s.size);
      this.addBytes(to, 'bytes_received', s.size);
      this.packet('egress', to, HEADER);
      this.packet('ingress', from, HEADER);
      this.addBytes(from, 'bytes_acked', s.size);
    }
    this.vm.advanceClock(conn.closeWaitNs ?? 0);
    const [first, second] = conn.firstClose === 'client' ? [client, server] : [server, client];
    return {
      client: clientLocal,
      server: conn.listen,
      // When each end's connect_ns was stamped: the client's connect4/6 pass, the server's establishment.
      at: { client: clientAt, server: serverAt },
      close: () => (conn.abort ? this.abortConnection(first, second) : this.closeConnection(first, second)),
    };
  }

  /**
   * The first closer aborts (tcp_disconnect): it goes to CLOSE, then its reset leaves; the reset
   * reaches the peer, which goes to CLOSE (tcp_reset). No ACK follows.
   */
  private abortConnection(first: VmSock, second: VmSock): void {
    this.setState(first, TCP_CLOSE);
    this.packet('egress', first, HEADER);
    this.packet('ingress', second, HEADER);
    this.setState(second, TCP_CLOSE);
  }

  /**
   * The first closer's FIN and its ACK; the second's FIN, after which the first is done (its ACK
   * leaves from a time-wait socket), and the final ACK that closes the second.
   */
  private closeConnection(first: VmSock, second: VmSock): void {
    this.setState(first, TCP.FIN_WAIT1);
    this.packet('egress', first, HEADER);
    this.packet('ingress', second, HEADER);
    this.setState(second, TCP.CLOSE_WAIT);
    this.packet('egress', second, HEADER);
    this.packet('ingress', first, HEADER);
    this.setState(first, TCP.FIN_WAIT2);
    this.setState(second, TCP.LAST_ACK);
    this.packet('egress', second, HEADER);
    this.packet('ingress', first, HEADER);
    this.setState(first, TCP_CLOSE);
    this.packet('ingress', second, HEADER);
    this.setState(second, TCP_CLOSE);
  }

  run(): RawReportObservation {
    this.setup();
    this.probe.drain();
    this.authReq.drain();
    const conns: RawReportObservation['conns'][number][] = [];
    const auth: string[] = [];
    const deferred: Array<() => void> = [];
    for (const conn of this.c.conns) {
      // The clock stands still but for the waits: each end's connect_ns is known exactly.
      const from = String(this.vm.now);
      const { close, at, client, server } = this.connection(conn, auth);
      conns.push({ client, server, window: [from, at.server], ends: { client: [at.client, at.client], server: [at.server, at.server] } });
      if (conn.closeLast) deferred.push(close);
      else close();
    }
    for (const close of deferred) close();
    for (const rec of this.authReq.drain()) auth.push(toHex(rec));
    return { conns, probe: this.probe.drain().map(toHex), auth, verdictsLeft: this.authRes.keys().map(toHex), exactClock: true };
  }
}
