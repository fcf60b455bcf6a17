// The VM's UDP datagram layer for section 6 (DNS over UDP sends): sendto through cgroup/sendmsg4,
// the DNS stand-in that answers every query reaching port 53 of an address local to the namespace
// (the environment's local prefixes), each socket's receive queue, recvfrom through
// cgroup/recvmsg4 (AF_INET) or cgroup/recvmsg6 (AF_INET6), datagrams a `deliver` sends, and the
// answers to a connected UDP socket's sends. The hooks are found by ELF section in any loaded
// object; an object set without them is run without them (hooksPresent says which ran).
// Socket-layer facts (autobind, the connected socket's peer filter, the v4-mapped send path) are
// the kernel's, measured on 6.18 (docs/interpretation.md, DNS items).

import { parseAddress, v4Mapped, v4MappedInner, type Family, type SockAddr } from '../../model/address.js';
import { DNS_PORT, dnsAnswerTo } from '../../model/domain.js';
import { datagramPeer, flowAfterConnect, flowSend, hasNativeLocal, routable, udpTakes, type Environment, type KernelSocket, type StaleFlow } from '../../model/environment.js';
import type { DatagramReceived, DatagramSent } from '../runner/socket-layer.js';
import type { VmSock } from './context.js';
import type { VmProgram } from './program.js';
import type { Vm } from './vm.js';

import { DNS_HOOK_SECTIONS, type DnsHook } from '../codec/abi.js';
export { DNS_HOOK_SECTIONS, type DnsHook } from '../codec/abi.js';

interface Datagram {
  /** The real source: IPv4 text for IPv4 traffic. */
  readonly from: SockAddr;
  readonly data: string;
}

interface DnsSock {
  bound: boolean;
  inbox: Datagram[];
  /** What a connected send does after a failed reconnect (environment.ts StaleFlow). */
  flow: StaleFlow;
}

/** What the layer needs of the executor's socket record. */
export interface UdpSocket {
  readonly sock: VmSock;
  /** Where a connected socket is connected to (getpeername), or null. */
  readonly peer: SockAddr | null;
  readonly connected: boolean;
  /** What the kernel keeps of the socket (its local address). */
  readonly kernel: KernelSocket;
}

const text = new TextDecoder();

export class VmDns {
  readonly hooks: Readonly<Record<DnsHook, VmProgram | null>>;
  private readonly socks = new Map<number, DnsSock>();

  constructor(
    private readonly vm: Vm,
    private readonly env: Environment,
  ) {
    this.hooks = {
      sendmsg4: vm.programBySection(DNS_HOOK_SECTIONS.sendmsg4),
      recvmsg4: vm.programBySection(DNS_HOOK_SECTIONS.recvmsg4),
      recvmsg6: vm.programBySection(DNS_HOOK_SECTIONS.recvmsg6),
    };
  }

  /** Which of the three hooks the loaded objects have. */
  hooksPresent(): DnsHook[] {
    return (Object.keys(this.hooks) as DnsHook[]).filter((h) => this.hooks[h] !== null);
  }

  reset(): void {
    // Map.clear allocates a new table even for an empty map, and most cases have no datagrams.
    if (this.socks.size > 0) this.socks.clear();
  }

  /** Queue state, for exploration's state keys. */
  digest(): string {
    return JSON.stringify([...this.socks]);
  }

  private of(r: UdpSocket): DnsSock {
    let d = this.socks.get(r.sock.id);
    if (!d) this.socks.set(r.sock.id, (d = { bound: false, inbox: [], flow: 'ok' }));
    return d;
  }

  dropSocket(id: number): void {
    this.socks.delete(id);
  }

  /** Every UDP connect and send autobinds the socket (inet_dgram_connect, inet_send_prepare: before anything can fail). */
  bind(r: UdpSocket): void {
    if (r.sock.protocol === 'udp') this.of(r).bound = true;
  }

  /** A UDP connect's outcome for the socket's flow (StaleFlow): `error` null when it connected. */
  connected(r: UdpSocket, error: string | null): void {
    const d = this.of(r);
    d.flow = flowAfterConnect(d.flow, r.sock.family, error);
  }

  /** The stand-in answers at port 53 of an address local to the namespace. */
  private answered(at: SockAddr): boolean {
    return at.port === DNS_PORT && routable(this.env, at.addr.includes(':') ? 'inet6' : 'inet', { addr: at.addr, port: 0 });
  }

  /** Whether the kernel queues a datagram from `from` on the socket (environment.ts, udpTakes). */
  private accepts(r: UdpSocket, from: SockAddr): boolean {
    return udpTakes(r.sock.family, r.peer, hasNativeLocal(r.kernel), from);
  }

  private enqueue(r: UdpSocket, at: SockAddr, data: string): void {
    if (this.answered(at) && this.accepts(r, at)) this.of(r).inbox.push({ from: at, data: dnsAnswerTo(data) });
  }

  /** One query datagram to `dest` (canonical in the socket's family; the runner checked it). */
  sendto(r: UdpSocket, dest: SockAddr, query: string): DatagramSent {
    const sock = r.sock;
    this.of(r).bound = true;
    const inner = sock.family === 'inet' ? dest.addr : v4MappedInner(dest.addr);
    let final: SockAddr = inner !== null ? { addr: inner, port: dest.port } : dest;
    const prog = this.hooks.sendmsg4;
    if (inner !== null && prog) {
      const out = this.vm.runUdpHook(this.vm.sendmsg4Ctx, prog, sock, parseAddress(inner), dest.port);
      if (out.verdict !== 1) return { error: 'EPERM', arrivedAt: null };
      final = out.addr;
    }
    // A datagram to the any-address goes to the socket's IPv4 source, or loopback, as the kernel sends it.
    final = datagramPeer(final, r.kernel);
    if (!routable(this.env, final.addr.includes(':') ? 'inet6' : 'inet', { addr: final.addr, port: 0 })) return { error: 'ENETUNREACH', arrivedAt: null };
    // A socket whose local address is v4-mapped cannot send to a routed native IPv6 address.
    if (inner === null && r.kernel.local !== null && v4MappedInner(r.kernel.local) !== null) return { error: 'EAFNOSUPPORT', arrivedAt: null };
    this.enqueue(r, final, query);
    return { error: null, arrivedAt: this.answered(final) ? final : null };
  }

  /** A connected socket's `send` of one datagram: the hook runs for a v4-mapped peer. */
  sent(r: UdpSocket, payload: Uint8Array): void {
    const sock = r.sock;
    if (!r.peer) return;
    // After a failed reconnect, the first datagram reaches the peer and the later ones are lost (StaleFlow).
    const d = this.of(r);
    const { reaching, flow } = flowSend(d.flow, 1);
    d.flow = flow;
    if (reaching === 0) return;
    const inner = sock.family === 'inet' ? r.peer.addr : v4MappedInner(r.peer.addr);
    let final: SockAddr = { addr: inner ?? r.peer.addr, port: r.peer.port };
    const prog = this.hooks.sendmsg4;
    if (sock.family === 'inet6' && inner !== null && prog) {
      // AF_INET6 to a v4-mapped peer: the kernel runs the IPv4 send hook, connected or not.
      const out = this.vm.runUdpHook(this.vm.sendmsg4Ctx, prog, sock, parseAddress(inner), r.peer.port);
      if (out.verdict !== 1) return;
      final = out.addr;
    }
    this.enqueue(r, final, text.decode(payload));
  }

  recvfrom(r: UdpSocket): DatagramReceived {
    const sock = r.sock;
    const head = this.of(r).inbox.shift();
    if (!head) return { from: null, data: null, error: 'EAGAIN' };
    const v4 = !head.from.addr.includes(':');
    let from: SockAddr = sock.family === 'inet6' && v4 ? { addr: v4Mapped(head.from.addr), port: head.from.port } : head.from;
    const hook: { prog: VmProgram | null; family: Family } = sock.family === 'inet' ? { prog: this.hooks.recvmsg4, family: 'inet' } : { prog: this.hooks.recvmsg6, family: 'inet6' };
    if (hook.prog) {
      const ctx = sock.family === 'inet' ? this.vm.recvmsg4Ctx : this.vm.recvmsg6Ctx;
      from = this.vm.runUdpHook(ctx, hook.prog, sock, parseAddress(from.addr), from.port).addr;
    }
    return { from, data: head.data, error: null };
  }

  /** A datagram from `from` (checked by the runner) to the socket; EDESTADDRREQ before it has a port. */
  deliver(r: UdpSocket, from: SockAddr, data: string): string | null {
    const d = this.of(r);
    if (!d.bound) return 'EDESTADDRREQ';
    if (this.accepts(r, from)) d.inbox.push({ from, data });
    return null;
  }
}
