// The VM's UDP datagram layer for section 6 (DNS over UDP sends): sendto through cgroup/sendmsg4,
// the DNS stand-in that answers every query reaching port 53 of an address local to the namespace
// (the environment's local prefixes), each socket's receive queue, recvfrom through
// cgroup/recvmsg4 (AF_INET) or cgroup/recvmsg6 (AF_INET6), datagrams a `deliver` sends, and the
// answers to a connected UDP socket's sends. The hooks are found by ELF section in any loaded
// object; an object set without them is run without them (hooksPresent says which ran).
// Socket-layer facts (autobind, the connected socket's peer filter, the v4-mapped send path) are
// the kernel's, measured on 6.18 (docs/interpretation.md, DNS items).

import { canonicalSockText, parseAddress, v4Mapped, v4MappedInner, AddressError, type Family, type SockAddr } from '../../model/address.js';
import { DNS_PORT, deliveredFor, dnsAnswerTo, dnsQueryFor, payloadFor, type Observation, type Operation, type StorageView } from '../../model/domain.js';
import { routable, type Environment, type KernelSocket } from '../../model/environment.js';
import { KmeshCheckError } from '../errors.js';
import type { VmSock } from './context.js';
import type { VmProgram } from './interp.js';
import type { Vm } from './vm.js';

/** The section 6 hooks by ELF section. */
export const DNS_HOOK_SECTIONS = { sendmsg4: 'cgroup/sendmsg4', recvmsg4: 'cgroup/recvmsg4', recvmsg6: 'cgroup/recvmsg6' } as const;
export type DnsHook = keyof typeof DNS_HOOK_SECTIONS;

interface Datagram {
  /** The real source: IPv4 text for IPv4 traffic. */
  readonly from: SockAddr;
  readonly data: string;
}

interface DnsSock {
  bound: boolean;
  queries: number;
  inbox: Datagram[];
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
    private readonly storageOf: (r: UdpSocket) => StorageView | null,
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
    this.socks.clear();
  }

  /** Queue state, for exploration's state keys. */
  digest(): string {
    return JSON.stringify([...this.socks]);
  }

  private of(r: UdpSocket): DnsSock {
    let d = this.socks.get(r.sock.id);
    if (!d) this.socks.set(r.sock.id, (d = { bound: false, queries: 0, inbox: [] }));
    return d;
  }

  dropSocket(id: number): void {
    this.socks.delete(id);
  }

  /** Every UDP connect and send autobinds the socket (inet_dgram_connect, inet_send_prepare: before anything can fail). */
  bind(r: UdpSocket): void {
    if (r.sock.protocol === 'udp') this.of(r).bound = true;
  }

  /** The stand-in answers at port 53 of an address local to the namespace. */
  private answered(at: SockAddr): boolean {
    return at.port === DNS_PORT && routable(this.env, at.addr.includes(':') ? 'inet6' : 'inet', { addr: at.addr, port: 0 });
  }

  /** A connected socket takes only datagrams from its peer. */
  private accepts(r: UdpSocket, from: SockAddr): boolean {
    if (!r.peer) return true;
    const peer = r.sock.family === 'inet' ? r.peer.addr : (v4MappedInner(r.peer.addr) ?? r.peer.addr);
    return peer === from.addr && r.peer.port === from.port;
  }

  private enqueue(r: UdpSocket, at: SockAddr, data: string): void {
    if (this.answered(at) && this.accepts(r, at)) this.of(r).inbox.push({ from: at, data: dnsAnswerTo(data) });
  }

  sendto(r: UdpSocket, op: Extract<Operation, { op: 'sendto' }>): Observation {
    const sock = r.sock;
    if (sock.protocol !== 'udp') throw new KmeshCheckError('codec', `sendto on socket ${sock.id}, which is TCP: sendto needs a UDP socket`);
    if (!Number.isInteger(op.n) || op.n < 0) throw new KmeshCheckError('codec', `sendto on socket ${sock.id}: n must be a non-negative integer, got ${op.n}`);
    let dest: SockAddr;
    try {
      dest = { addr: canonicalSockText(sock.family, op.dest.addr), port: op.dest.port };
    } catch (e) {
      if (e instanceof AddressError) throw new KmeshCheckError('codec', `sendto on socket ${sock.id}: ${e.message}`);
      throw e;
    }
    if (!Number.isInteger(dest.port) || dest.port < 1 || dest.port > 0xffff) throw new KmeshCheckError('codec', `sendto on socket ${sock.id}: port ${dest.port} is not an integer in 1..65535`);
    const d = this.of(r);
    let arrivedAt: SockAddr | null = null;
    let error: string | null = null;
    for (let i = 0; i < op.n; i++) {
      d.bound = true;
      const query = dnsQueryFor(sock.id, d.queries++);
      const inner = sock.family === 'inet' ? dest.addr : v4MappedInner(dest.addr);
      let final: SockAddr = inner !== null ? { addr: inner, port: dest.port } : dest;
      const prog = this.hooks.sendmsg4;
      if (inner !== null && prog) {
        const out = this.vm.runUdpHook(this.vm.sendmsg4Ctx, prog, sock, parseAddress(inner), dest.port);
        if (out.verdict !== 1) { error = 'EPERM'; arrivedAt = null; continue; }
        final = out.addr;
      }
      if (!routable(this.env, final.addr.includes(':') ? 'inet6' : 'inet', { addr: final.addr, port: 0 })) {
        error = 'ENETUNREACH';
        arrivedAt = null;
        continue;
      }
      // A socket whose local address is v4-mapped cannot send to a routed native IPv6 address.
      if (inner === null && r.kernel.local !== null && v4MappedInner(r.kernel.local) !== null) {
        error = 'EAFNOSUPPORT';
        arrivedAt = null;
        continue;
      }
      error = null;
      arrivedAt = this.answered(final) ? final : null;
      this.enqueue(r, final, query);
    }
    return { op: 'sendto', sock: sock.id, arrivedAt, error, storage: this.storageOf(r) };
  }

  /** A connected socket's `send` of one datagram (payload `seq`): the hook runs for a v4-mapped peer. */
  sent(r: UdpSocket, seq: number): void {
    const sock = r.sock;
    if (!r.peer) return;
    const inner = sock.family === 'inet' ? r.peer.addr : v4MappedInner(r.peer.addr);
    let final: SockAddr = { addr: inner ?? r.peer.addr, port: r.peer.port };
    const prog = this.hooks.sendmsg4;
    if (sock.family === 'inet6' && inner !== null && prog) {
      // AF_INET6 to a v4-mapped peer: the kernel runs the IPv4 send hook, connected or not.
      const out = this.vm.runUdpHook(this.vm.sendmsg4Ctx, prog, sock, parseAddress(inner), r.peer.port);
      if (out.verdict !== 1) return;
      final = out.addr;
    }
    this.enqueue(r, final, text.decode(payloadFor(sock.id, seq)));
  }

  recvfrom(r: UdpSocket): Observation {
    const sock = r.sock;
    if (sock.protocol !== 'udp') throw new KmeshCheckError('codec', `recvfrom on socket ${sock.id}, which is TCP: recvfrom needs a UDP socket`);
    const head = this.of(r).inbox.shift();
    if (!head) return { op: 'recvfrom', sock: sock.id, from: null, data: null, error: 'EAGAIN', storage: this.storageOf(r) };
    const v4 = !head.from.addr.includes(':');
    let from: SockAddr = sock.family === 'inet6' && v4 ? { addr: v4Mapped(head.from.addr), port: head.from.port } : head.from;
    const hook: { prog: VmProgram | null; family: Family } = sock.family === 'inet' ? { prog: this.hooks.recvmsg4, family: 'inet' } : { prog: this.hooks.recvmsg6, family: 'inet6' };
    if (hook.prog) {
      const ctx = sock.family === 'inet' ? this.vm.recvmsg4Ctx : this.vm.recvmsg6Ctx;
      from = this.vm.runUdpHook(ctx, hook.prog, sock, parseAddress(from.addr), from.port).addr;
    }
    return { op: 'recvfrom', sock: sock.id, from, data: head.data, error: null, storage: this.storageOf(r) };
  }

  deliver(r: UdpSocket, op: Extract<Operation, { op: 'deliver' }>): Observation {
    const sock = r.sock;
    if (sock.protocol !== 'udp') throw new KmeshCheckError('codec', `deliver on socket ${sock.id}, which is TCP: deliver needs a UDP socket`);
    if (op.from.addr.includes(':') || op.from.port !== DNS_PORT) {
      throw new KmeshCheckError('codec', `deliver on socket ${sock.id}: the source must be an IPv4 address with port ${DNS_PORT}, got ${op.from.addr}:${op.from.port}`);
    }
    const d = this.of(r);
    if (!d.bound) return { op: 'deliver', sock: sock.id, error: 'EDESTADDRREQ' };
    if (this.accepts(r, op.from)) d.inbox.push({ from: op.from, data: deliveredFor(sock.id) });
    return { op: 'deliver', sock: sock.id, error: null };
  }
}
