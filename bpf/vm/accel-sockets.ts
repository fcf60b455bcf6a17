// The VM's socket layer of the acceleration case runner (bpf/runner/accel-runner.ts): TCP over
// loopback reduced to what section 8's programs can see and change, in the kernel's order:
//  - connect: the client's TCP_CONNECT_CB, its state to ESTABLISHED then ACTIVE_ESTABLISHED_CB
//    (tcp_finish_connect), then the server's PASSIVE_ESTABLISHED_CB while still SYN_RECV and its
//    state to ESTABLISHED. Callbacks run only for sockets made inside the cgroup (an accepted
//    socket belongs to its listener's); STATE_CB only once a program asked for it, before the
//    state changes (tcp_set_state).
//  - send: a socket in sock_ops_map (the sockhash ma_redirect is attached to) runs the sk_msg
//    program per message; a redirect with BPF_F_INGRESS queues the bytes at the target without
//    TCP, one without it sends them out of the target to its peer; otherwise TCP carries them to
//    the socket's own peer (counted in its tcpi_bytes_received). SK_DROP fails the send (EACCES).
//  - close: the socket leaves every sockhash (sock_map_close), then FIN_WAIT1 and the peer's
//    CLOSE_WAIT, FIN_WAIT2; a close in CLOSE_WAIT goes to LAST_ACK, the orphaned peer to CLOSE
//    (tcp_time_wait), then CLOSE. An abort goes to CLOSE at once, and its reset takes the peer to
//    CLOSE, out of every sockhash.
// Each namespace has its own cookie, which bpf_get_netns_cookie hands the programs.

import type { AccelFilter, AccelPair, Netns } from '../../model/accel/domain.js';
import { encodeSockParam } from '../codec/accel.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { AccelSocketLayer, MapsRead } from '../runner/accel-runner.js';
import { BPF_SOCK_OPS_STATE_CB_FLAG, SockOps, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_LAST_ACK, TCP_SYN_RECV, TCP_SYN_SENT, VmSock } from './context.js';
import { SockHashMap, type ArrayMap, type HashMap } from './maps.js';
import type { VmProgram } from './program.js';
import type { Vm } from './vm.js';

/** Cookies of the case's two namespaces: NETNS_COOKIE_BASE + netns. */
export const NETNS_COOKIE_BASE = 0x2000;

export interface AccelVmSocket {
  readonly sock: VmSock;
  /** Made inside the cgroup the sockops program is attached to. */
  readonly inside: boolean;
  peer: AccelVmSocket | null;
  /** The receive queue, in arrival order. */
  readonly queue: Uint8Array[];
  /** What TCP delivered to this socket (tcpi_bytes_received). */
  tcpReceived: number;
  open: boolean;
}

export interface AccelVmPrograms {
  readonly ops: VmProgram;
  readonly redirect: VmProgram;
}

export class VmAccelSockets implements AccelSocketLayer<AccelVmSocket> {
  private readonly opsMap: SockHashMap;
  private readonly proxyMap: HashMap;
  private readonly paramMap: ArrayMap;
  private readonly bySock = new Map<VmSock, AccelVmSocket>();
  private readonly tuples = new Set<string>();
  private readonly namespaces = new Set<Netns>();
  private nextId = 1;

  constructor(
    private readonly vm: Vm,
    private readonly progs: AccelVmPrograms,
  ) {
    this.opsMap = vm.map<SockHashMap>('sock_ops_map');
    this.proxyMap = vm.map<HashMap>('sock_proxy_map');
    this.paramMap = vm.map<ArrayMap>('sock_param_map');
  }

  begin(): void {
    this.bySock.clear();
    this.tuples.clear();
    this.namespaces.clear();
  }

  setFilter(f: AccelFilter): void {
    this.paramMap.set(0, encodeSockParam(f));
  }

  connect(pair: AccelPair): { client: AccelVmSocket; server: AccelVmSocket } {
    const mapped = (a: string) => (pair.family === 'mapped' ? `::ffff:${a}` : a);
    const tuple = `${pair.netns}|${pair.clientAddr}:${pair.clientPort}|${pair.serverAddr}:${pair.serverPort}`;
    if (this.tuples.has(tuple)) throw new KmeshCheckError('environment', `connect ${pair.clientAddr}:${pair.clientPort} -> ${pair.serverAddr}:${pair.serverPort} failed (EADDRNOTAVAIL)`);
    this.tuples.add(tuple);
    this.namespaces.add(pair.netns);
    const client = this.socket(pair.family === 'inet' ? 'inet' : 'inet6', pair.netns, pair.outside !== 'client');
    const server = this.socket(pair.family === 'inet6' ? 'inet6' : 'inet', pair.netns, pair.outside !== 'server');
    client.sock.setEnds({ addr: mapped(pair.clientAddr), port: pair.clientPort }, { addr: mapped(pair.serverAddr), port: pair.serverPort }, TCP_SYN_SENT);
    this.ops(client, SockOps.TCP_CONNECT_CB);
    this.setState(client, TCP_ESTABLISHED);
    this.ops(client, SockOps.ACTIVE_ESTABLISHED_CB);
    server.sock.setEnds({ addr: pair.serverAddr, port: pair.serverPort }, { addr: pair.clientAddr, port: pair.clientPort }, TCP_SYN_RECV);
    this.ops(server, SockOps.PASSIVE_ESTABLISHED_CB);
    this.setState(server, TCP_ESTABLISHED);
    client.peer = server;
    server.peer = client;
    return { client, server };
  }

  send(s: AccelVmSocket, bytes: Uint8Array): string | null {
    if (!this.opsMap.has(s.sock)) {
      this.tcp(s, bytes);
      return null;
    }
    const out = this.vm.runSkMsg(this.progs.redirect, s.sock, bytes);
    // SK_DROP: the kernel fails the send with EACCES and delivers nothing.
    if (out.verdict !== 1) return 'EACCES';
    const target = out.redirect ? this.bySock.get(out.redirect.sock) : undefined;
    if (!out.redirect || !target) this.tcp(s, out.bytes);
    else if (out.redirect.ingress) target.queue.push(out.bytes);
    else this.tcp(target, out.bytes);
    return null;
  }

  read(s: AccelVmSocket, want: number): Uint8Array {
    const have = s.queue.reduce((n, b) => n + b.length, 0);
    const n = want === 0 ? have : Math.min(want, have);
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = s.queue[0]!;
      const take = Math.min(head.length, n - at);
      out.set(head.subarray(0, take), at);
      at += take;
      if (take === head.length) s.queue.shift();
      else s.queue[0] = head.subarray(take);
    }
    return out;
  }

  tcpReceived(s: AccelVmSocket): number {
    return s.tcpReceived;
  }

  /** Takes a socket out of every sockhash (sock_map_close, or sock_map_unhash at CLOSE). */
  private unhash(s: AccelVmSocket): void {
    for (const m of this.vm.maps.values()) if (m instanceof SockHashMap) m.dropSocket(s.sock);
  }

  close(s: AccelVmSocket, resetPeer?: AccelVmSocket): void {
    this.unhash(s);
    s.open = false;
    const peer = s.peer && s.peer.sock.state !== TCP_CLOSE ? s.peer : null;
    if (resetPeer !== undefined) {
      // tcp_disconnect: this end to CLOSE, then its reset; the peer takes it (tcp_reset) to CLOSE,
      // which unhashes it from every sockhash (sock_map_unhash).
      if (s.sock.state === TCP_ESTABLISHED) this.setState(s, TCP_CLOSE);
      if (peer?.sock.state === TCP_ESTABLISHED) {
        this.setState(peer, TCP_CLOSE);
        this.unhash(peer);
      }
    } else if (s.sock.state === TCP_ESTABLISHED) {
      this.setState(s, TCP_FIN_WAIT1);
      if (peer?.sock.state === TCP_ESTABLISHED) this.setState(peer, TCP_CLOSE_WAIT);
      this.setState(s, TCP_FIN_WAIT2);
    } else if (s.sock.state === TCP_CLOSE_WAIT) {
      this.setState(s, TCP_LAST_ACK);
      if (peer?.sock.state === TCP_FIN_WAIT2) this.setState(peer, TCP_CLOSE);
      this.setState(s, TCP_CLOSE);
    }
  }

  release(): void {}

  readMaps(empty: boolean): MapsRead {
    const opsKeys = [...this.opsMap.socks.values()].map((e) => e.key.slice());
    const proxy = this.proxyMap.keys().map((key) => ({ key, value: this.proxyMap.get(key)!.slice() }));
    if (empty) {
      this.opsMap.clear();
      this.proxyMap.clear();
    }
    const namespaces = new Set(this.namespaces);
    return {
      opsKeys,
      proxy,
      netnsOf: (cookie) => {
        const n = Number(cookie) - NETNS_COOKIE_BASE;
        return (n === 0 || n === 1) && namespaces.has(n) ? n : null;
      },
    };
  }

  private socket(family: 'inet' | 'inet6', netns: Netns, inside: boolean): AccelVmSocket {
    const id = this.nextId++;
    const sock = new VmSock(id, family, 'tcp', 0x1000 + id);
    sock.netnsCookie = NETNS_COOKIE_BASE + netns;
    const s: AccelVmSocket = { sock, inside, peer: null, queue: [], tcpReceived: 0, open: true };
    this.bySock.set(sock, s);
    return s;
  }

  /** A sockops callback, for sockets inside the cgroup only. */
  private ops(s: AccelVmSocket, op: number, args: readonly number[] = []): void {
    if (s.inside) this.vm.runSockOps(this.progs.ops, s.sock, op, args);
  }

  /** tcp_set_state: STATE_CB (old, new) first when asked for, then the new state. */
  private setState(s: AccelVmSocket, state: number): void {
    const old = s.sock.state;
    if (s.sock.cbFlags & BPF_SOCK_OPS_STATE_CB_FLAG) this.ops(s, SockOps.STATE_CB, [old, state]);
    s.sock.state = state;
    s.sock.refresh();
  }

  /** TCP carries `bytes` from `s` to its peer. */
  private tcp(s: AccelVmSocket, bytes: Uint8Array): void {
    const to = s.peer;
    if (!to?.open) return;
    to.queue.push(bytes);
    to.tcpReceived += bytes.length;
  }
}
