// Program contexts with the kernel's access rules (net/core/filter.c *_is_valid_access), laid
// out as in the uapi <linux/bpf.h> (offsets pinned by test/vm/context.test.ts against the
// header): bpf_sock_addr (connect4/connect6), bpf_sock_ops, sk_msg_md, and the socket views
// bpf_sock and bpf_tcp_sock. Each context's bytes hold exactly what a load returns, including
// the kernel's quirks (sock_ops/sk_msg remote_port is the network-order port shifted into the
// upper 16 bits; user_port stores only 16 bits).

import { formatIPv4, formatIPv6, isV4MappedBytes, parseAddress, type Family, type SockAddr } from '../../model/address.js';
import { Access, Region, buildRules, ptrHi, ptrLo, type AccessRules, type FieldRule, type Memory } from './memory.js';
import type { SockRef } from './maps.js';
import { textMemo } from '../../shared/memo.js';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const TCP_ESTABLISHED = 1;
export const TCP_SYN_SENT = 2;
export const TCP_SYN_RECV = 3;
export const TCP_FIN_WAIT1 = 4;
export const TCP_FIN_WAIT2 = 5;
export const TCP_CLOSE = 7;
export const TCP_CLOSE_WAIT = 8;
export const TCP_LAST_ACK = 9;
export const TCP_LISTEN = 10;

export const SockOps = {
  TCP_CONNECT_CB: 3,
  ACTIVE_ESTABLISHED_CB: 4,
  PASSIVE_ESTABLISHED_CB: 5,
  STATE_CB: 10,
} as const;
export const BPF_SOCK_OPS_ALL_CB_FLAGS = 0x7f;
/** bpf_sock_ops_cb_flags bit that asks for STATE_CB on every TCP state change. */
export const BPF_SOCK_OPS_STATE_CB_FLAG = 0x4;
/** sk_msg redirect flag: into the target's receive queue instead of out of it. */
export const BPF_F_INGRESS = 1;

export const SOCK_ADDR = { size: 72, user_family: 0, user_ip4: 4, user_ip6: 8, user_port: 24, family: 28, type: 32, protocol: 36, msg_src_ip4: 40, msg_src_ip6: 44, sk: 64 } as const;
export const SOCK_OPS = {
  size: 216,
  op: 0,
  args: 4,
  reply: 4,
  family: 20,
  remote_ip4: 24,
  local_ip4: 28,
  remote_ip6: 32,
  local_ip6: 48,
  remote_port: 64,
  local_port: 68,
  is_fullsock: 72,
  snd_cwnd: 76,
  bpf_sock_ops_cb_flags: 84,
  state: 88,
  sk_txhash: 164,
  bytes_received: 168,
  bytes_acked: 176,
  sk: 184,
  skb_data: 192,
  skb_data_end: 200,
  skb_len: 208,
  skb_tcp_flags: 212,
} as const;
export const SK_MSG = { size: 80, data: 0, data_end: 8, family: 16, remote_ip4: 20, local_ip4: 24, remote_ip6: 28, local_ip6: 44, remote_port: 60, local_port: 64, size_field: 68, sk: 72 } as const;
export const BPF_SOCK = {
  size: 80,
  bound_dev_if: 0,
  family: 4,
  type: 8,
  protocol: 12,
  mark: 16,
  priority: 20,
  src_ip4: 24,
  src_ip6: 28,
  src_port: 44,
  dst_port: 48,
  dst_ip4: 52,
  dst_ip6: 56,
  state: 72,
  rx_queue_mapping: 76,
} as const;
export const TCP_SOCK = { size: 112, snd_cwnd: 0, bytes_received: 80, bytes_acked: 88 } as const;

export const N = [1, 2, 4] as const;

/** The cgroup sock_addr hooks the VM runs (connect, and the UDP send/receive hooks of section 6). */
export type SockAddrAttach = 'connect4' | 'connect6' | 'sendmsg4' | 'recvmsg4' | 'recvmsg6';

/** Hooks whose context holds an IPv4 address (user_ip4). */
function isV4Attach(attach: SockAddrAttach): boolean {
  return attach === 'connect4' || attach === 'sendmsg4' || attach === 'recvmsg4';
}

function sockAddrRules(attach: SockAddrAttach): AccessRules {
  const f: FieldRule[] = [
    { name: 'user_family', offset: 0, size: 4, read: [4] },
    { name: 'user_port', offset: 24, size: 4, read: N, write: [4], storeWidth: 2 },
    { name: 'family', offset: 28, size: 4, read: [4] },
    { name: 'type', offset: 32, size: 4, read: [4] },
    { name: 'protocol', offset: 36, size: 4, read: [4] },
    { name: 'sk', offset: 64, size: 8, read: [8] },
  ];
  if (isV4Attach(attach)) f.push({ name: 'user_ip4', offset: 4, size: 4, read: N, write: [4] });
  else f.push({ name: 'user_ip6', offset: 8, size: 16, read: [1, 2, 4, 8], write: [4, 8] });
  // The source address a send may choose: UDP4_SENDMSG only (filter.c).
  if (attach === 'sendmsg4') f.push({ name: 'msg_src_ip4', offset: 40, size: 4, read: N, write: [4] });
  return buildRules(SOCK_ADDR.size, f);
}

const RULES = {
  connect4: sockAddrRules('connect4'),
  connect6: sockAddrRules('connect6'),
  sendmsg4: sockAddrRules('sendmsg4'),
  recvmsg4: sockAddrRules('recvmsg4'),
  recvmsg6: sockAddrRules('recvmsg6'),
  sockOps: (() => {
    const f: FieldRule[] = [];
    const names: Record<number, string> = {
      0: 'op',
      4: 'args/reply',
      20: 'family',
      24: 'remote_ip4',
      28: 'local_ip4',
      64: 'remote_port',
      68: 'local_port',
      72: 'is_fullsock',
      76: 'snd_cwnd',
      84: 'bpf_sock_ops_cb_flags',
      88: 'state',
      164: 'sk_txhash',
      208: 'skb_len',
    };
    for (let o = 0; o < 168; o += 4) {
      const name = names[o] ?? (o >= 32 && o < 48 ? 'remote_ip6' : o >= 48 && o < 64 ? 'local_ip6' : `field at ${o}`);
      f.push({ name, offset: o, size: 4, read: [4], ...(o === 4 || o === 164 ? { write: [4] } : {}) });
    }
    for (const [name, o] of [
      ['bytes_received', 168],
      ['bytes_acked', 176],
      ['sk', 184],
      ['skb_data', 192],
      ['skb_data_end', 200],
    ] as const) {
      f.push({ name, offset: o, size: 8, read: [8] });
    }
    f.push({ name: 'skb_len', offset: 208, size: 4, read: [4] });
    f.push({ name: 'skb_tcp_flags', offset: 212, size: 4, read: N });
    return buildRules(SOCK_OPS.size, f);
  })(),
  skMsg: buildRules(SK_MSG.size, [
    { name: 'data', offset: 0, size: 8, read: [8] },
    { name: 'data_end', offset: 8, size: 8, read: [8] },
    { name: 'family', offset: 16, size: 4, read: [4] },
    { name: 'remote_ip4', offset: 20, size: 4, read: [4] },
    { name: 'local_ip4', offset: 24, size: 4, read: [4] },
    { name: 'remote_ip6', offset: 28, size: 16, read: [4] },
    { name: 'local_ip6', offset: 44, size: 16, read: [4] },
    { name: 'remote_port', offset: 60, size: 4, read: [4] },
    { name: 'local_port', offset: 64, size: 4, read: [4] },
    { name: 'size', offset: 68, size: 4, read: [4] },
    { name: 'sk', offset: 72, size: 8, read: [8] },
  ]),
  bpfSock: buildRules(BPF_SOCK.size, [
    { name: 'bound_dev_if', offset: 0, size: 4, read: [4] },
    { name: 'family', offset: 4, size: 4, read: N },
    { name: 'type', offset: 8, size: 4, read: N },
    { name: 'protocol', offset: 12, size: 4, read: N },
    { name: 'mark', offset: 16, size: 4, read: [4] },
    { name: 'priority', offset: 20, size: 4, read: [4] },
    { name: 'src_ip4', offset: 24, size: 4, read: N },
    { name: 'src_ip6', offset: 28, size: 16, read: N },
    { name: 'src_port', offset: 44, size: 4, read: N },
    { name: 'dst_port', offset: 48, size: 4, read: N },
    { name: 'dst_ip4', offset: 52, size: 4, read: N },
    { name: 'dst_ip6', offset: 56, size: 16, read: N },
    { name: 'state', offset: 72, size: 4, read: N },
    { name: 'rx_queue_mapping', offset: 76, size: 4, read: N },
  ]),
  tcpSock: (() => {
    const f: FieldRule[] = [];
    for (let o = 0; o < 80; o += 4) f.push({ name: `field at ${o}`, offset: o, size: 4, read: [4] });
    f.push({ name: 'bytes_received', offset: 80, size: 8, read: [8] });
    f.push({ name: 'bytes_acked', offset: 88, size: 8, read: [8] });
    for (let o = 96; o < 112; o += 4) f.push({ name: `field at ${o}`, offset: o, size: 4, read: [4] });
    return buildRules(TCP_SOCK.size, f);
  })(),
};

/** Address bytes by text, shared by the sockets (never written: they are copied into contexts). */
const sockAddrBytes = textMemo(parseAddress);

/** A socket as the VM's programs see it. */
export class VmSock implements SockRef {
  /** struct bpf_sock: what ctx->sk points at. */
  readonly sockRegion: Region;
  /** struct bpf_tcp_sock for TCP sockets (bpf_tcp_sock()). */
  readonly tcpRegion: Region | null;
  cbFlags = 0;
  state = TCP_CLOSE;
  /** The socket's network namespace cookie; null: the VM's one namespace (Vm.netnsCookie). */
  netnsCookie: number | null = null;
  private localAddr: SockAddr | null = null;
  private remoteAddr: SockAddr | null = null;
  /** Address bytes (4 or 16, the socket family's form) of local and remote. */
  localBytes: Uint8Array | null = null;
  remoteBytes: Uint8Array | null = null;

  constructor(
    /** Changes only when a closed socket is reused (reuse()). */
    public id: number,
    readonly family: Family,
    readonly protocol: 'tcp' | 'udp',
    public cookie: number,
  ) {
    this.sockRegion = new Region(`bpf_sock of socket ${id}`, new Uint8Array(BPF_SOCK.size), Access.RULES, RULES.bpfSock, this);
    this.tcpRegion = protocol === 'tcp' ? new Region(`bpf_tcp_sock of socket ${id}`, new Uint8Array(TCP_SOCK.size), Access.RULES, RULES.tcpSock, this) : null;
    this.tcpRegion?.view.setUint32(TCP_SOCK.snd_cwnd, 10, true);
    this.refresh();
  }

  /**
   * Makes a socket no one refers to any more (closed, forgotten by every map) the fresh socket
   * `new VmSock(id, family, protocol, cookie)` would be: a socket costs no allocation.
   */
  reuse(id: number, cookie: number): void {
    if (id !== this.id) {
      this.sockRegion.name = `bpf_sock of socket ${id}`;
      if (this.tcpRegion) this.tcpRegion.name = `bpf_tcp_sock of socket ${id}`;
    }
    this.id = id;
    this.cookie = cookie;
    this.cbFlags = 0;
    this.state = TCP_CLOSE;
    this.netnsCookie = null;
    this.localAddr = null;
    this.remoteAddr = null;
    this.localBytes = null;
    this.remoteBytes = null;
    if (this.tcpRegion) {
      this.tcpRegion.bytes.fill(0);
      this.tcpRegion.view.setUint32(TCP_SOCK.snd_cwnd, 10, true);
    }
    this.refresh();
  }

  get local(): SockAddr | null {
    return this.localAddr;
  }
  get remote(): SockAddr | null {
    return this.remoteAddr;
  }

  /** Sets (or clears) the socket's two ends and state; keeps the bpf_sock view in step. */
  setEnds(local: SockAddr | null, remote: SockAddr | null, state: number): void {
    this.localAddr = local;
    this.remoteAddr = remote;
    this.localBytes = local ? sockAddrBytes(local.addr) : null;
    this.remoteBytes = remote ? sockAddrBytes(remote.addr) : null;
    this.state = state;
    this.refresh();
  }

  /** Rewrites the bpf_sock view from the socket's current addresses and state. */
  refresh(): void {
    const b = this.sockRegion.bytes;
    const v = this.sockRegion.view;
    b.fill(0);
    v.setUint32(BPF_SOCK.family, this.family === 'inet' ? AF_INET : AF_INET6, true);
    v.setUint32(BPF_SOCK.type, this.protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM, true);
    v.setUint32(BPF_SOCK.protocol, this.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP, true);
    v.setUint32(BPF_SOCK.state, this.state, true);
    v.setUint32(BPF_SOCK.rx_queue_mapping, 0xffffffff, true);
    if (this.localAddr && this.localBytes) {
      writeAddrPair(b, this.localBytes, BPF_SOCK.src_ip4, BPF_SOCK.src_ip6, true);
      v.setUint32(BPF_SOCK.src_port, this.localAddr.port, true);
    }
    if (this.remoteAddr && this.remoteBytes) {
      writeAddrPair(b, this.remoteBytes, BPF_SOCK.dst_ip4, BPF_SOCK.dst_ip6);
      b[BPF_SOCK.dst_port] = this.remoteAddr.port >>> 8;
      b[BPF_SOCK.dst_port + 1] = this.remoteAddr.port & 0xff;
    }
  }
}

/** LOOPBACK4_IPV6: what the kernel keeps as the IPv4 view of a native IPv6 local address. */
const LOOPBACK4_IPV6 = Uint8Array.of(127, 0, 0, 6);

function isAnyAddress(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Writes address bytes into the (ip4, ip6) pair of fields the kernel exposes: 4 bytes fill ip4;
 * 16 bytes fill ip6, and ip4 too when the address is v4-mapped (the kernel keeps both). A `local`
 * native IPv6 address other than :: shows ip4 127.0.0.6: the kernel sets a socket's IPv4 receive
 * address so when it binds or connects it to one (measured on 6.18: bpf_sock src_ip4 in sendmsg4,
 * sock_ops local_ip4 at TCP_CONNECT_CB and ACTIVE_ESTABLISHED); a remote one shows ip4 0.
 */
export function writeAddrPair(b: Uint8Array, bytes: Uint8Array, off4: number, off6: number, local = false): void {
  if (bytes.length === 4) {
    b.set(bytes, off4);
    return;
  }
  b.set(bytes, off6);
  if (isV4MappedBytes(bytes)) b.set(bytes.subarray(12, 16), off4);
  else if (local && !isAnyAddress(bytes)) b.set(LOOPBACK4_IPV6, off4);
}

export function writePtr(v: DataView, off: number, mem: Memory, r: Region, offset = 0): void {
  mem.attach(r);
  v.setInt32(off, ptrLo(offset), true);
  v.setInt32(off + 4, ptrHi(r), true);
}

/** What a context region's owner says about it, for helpers that take the context. */
export type CtxInfo = { readonly kind: 'sock_addr'; sock: VmSock } | { readonly kind: 'sock_ops'; sock: VmSock; op: number } | { readonly kind: 'sk_buff'; sock: VmSock } | MsgState;

/**
 * The bpf_sock_addr of a sock_addr hook, reused from run to run (a connect costs no allocation):
 * prepare() fills it for a socket and an address (the destination; for recvmsg, the source).
 * sendmsg4 also runs for AF_INET6 sockets sending to a v4-mapped address: `family` is then
 * AF_INET6 and the address the 4-byte inner one (measured on 6.18, docs/interpretation.md).
 */
export class SockAddrCtx {
  readonly region: Region;
  private readonly info: { readonly kind: 'sock_addr'; sock: VmSock };
  constructor(readonly attach: SockAddrAttach) {
    this.info = { kind: 'sock_addr', sock: null as unknown as VmSock };
    this.region = new Region(`bpf_sock_addr (${attach})`, new Uint8Array(SOCK_ADDR.size), Access.RULES, RULES[attach], this.info, true);
  }
  /** Fills the context: `addr` is 4 bytes (connect4) or 16 (connect6), `port` host order. */
  prepare(mem: Memory, sock: VmSock, addr: Uint8Array, port: number): Region {
    const v4 = isV4Attach(this.attach);
    const want = v4 ? 4 : 16;
    const familyOk = this.attach === 'sendmsg4' || (sock.family === 'inet') === v4;
    if (addr.length !== want || !familyOk) {
      throw new Error(`${this.attach} takes ${want}-byte addresses on ${v4 ? 'AF_INET' : 'AF_INET6'} sockets`);
    }
    this.info.sock = sock;
    const r = this.region;
    const b = r.bytes;
    const v = r.view;
    b.fill(0);
    const fam = want === 4 ? AF_INET : AF_INET6;
    v.setUint32(SOCK_ADDR.user_family, fam, true);
    v.setUint32(SOCK_ADDR.family, sock.family === 'inet' ? AF_INET : AF_INET6, true);
    v.setUint32(SOCK_ADDR.type, sock.protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM, true);
    v.setUint32(SOCK_ADDR.protocol, sock.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP, true);
    b.set(addr, want === 4 ? SOCK_ADDR.user_ip4 : SOCK_ADDR.user_ip6);
    b[SOCK_ADDR.user_port] = port >>> 8;
    b[SOCK_ADDR.user_port + 1] = port & 0xff;
    mem.attach(r);
    writePtr(v, SOCK_ADDR.sk, mem, sock.sockRegion);
    return r;
  }
  /** The destination the context holds (after the program ran), as socket-family text. */
  dest(): SockAddr {
    const b = this.region.bytes;
    const addr = isV4Attach(this.attach) ? formatIPv4(b, SOCK_ADDR.user_ip4) : formatIPv6(b, SOCK_ADDR.user_ip6);
    return { addr, port: this.port() };
  }
  port(): number {
    const b = this.region.bytes;
    return ((b[SOCK_ADDR.user_port] as number) << 8) | (b[SOCK_ADDR.user_port + 1] as number);
  }
}

/** The bpf_sock_ops of sockops callbacks, reused from run to run. */
export class SockOpsCtx {
  readonly region: Region;
  private readonly info: { readonly kind: 'sock_ops'; sock: VmSock; op: number };
  constructor() {
    this.info = { kind: 'sock_ops', sock: null as unknown as VmSock, op: 0 };
    this.region = new Region('bpf_sock_ops', new Uint8Array(SOCK_OPS.size), Access.RULES, RULES.sockOps, this.info, true);
  }
  /** Fills the context for callback `op` on a socket whose ends and state are set; `args` are args[0..]. */
  prepare(mem: Memory, sock: VmSock, op: number, args: readonly number[] = []): Region {
    this.info.sock = sock;
    this.info.op = op;
    const r = this.region;
    const v = r.view;
    const b = r.bytes;
    b.fill(0);
    v.setUint32(SOCK_OPS.op, op, true);
    args.forEach((a, i) => v.setUint32(SOCK_OPS.args + 4 * i, a >>> 0, true));
    v.setUint32(SOCK_OPS.family, sock.family === 'inet' ? AF_INET : AF_INET6, true);
    if (sock.remote && sock.remoteBytes) {
      writeAddrPair(b, sock.remoteBytes, SOCK_OPS.remote_ip4, SOCK_OPS.remote_ip6);
      b[SOCK_OPS.remote_port + 2] = sock.remote.port >>> 8; // (network-order u16) << 16
      b[SOCK_OPS.remote_port + 3] = sock.remote.port & 0xff;
    }
    if (sock.local && sock.localBytes) {
      writeAddrPair(b, sock.localBytes, SOCK_OPS.local_ip4, SOCK_OPS.local_ip6, true);
      v.setUint32(SOCK_OPS.local_port, sock.local.port, true);
    }
    v.setUint32(SOCK_OPS.is_fullsock, 1, true);
    v.setUint32(SOCK_OPS.snd_cwnd, 10, true);
    v.setUint32(SOCK_OPS.bpf_sock_ops_cb_flags, sock.cbFlags, true);
    v.setUint32(SOCK_OPS.state, sock.state, true);
    mem.attach(r);
    writePtr(v, SOCK_OPS.sk, mem, sock.sockRegion);
    return r;
  }
}

/** The message an sk_msg program sees and may grow (bpf_msg_push_data). */
export class MsgState {
  readonly kind = 'sk_msg' as const;
  data: Region;
  /** Set by bpf_msg_redirect_hash: where a passed message goes instead of the socket's own peer. */
  redirect: { readonly sock: VmSock; readonly ingress: boolean } | null = null;
  constructor(
    readonly mem: Memory,
    readonly ctx: Region,
    readonly sock: VmSock,
    payload: Uint8Array,
  ) {
    this.data = this.newData(payload);
    this.publish();
  }
  private newData(bytes: Uint8Array): Region {
    return new Region('sk_msg data', bytes, Access.RW, null, this);
  }
  /** Inserts `len` zero bytes at `start`; old data pointers stop being valid (a new region). */
  push(start: number, len: number): void {
    const old = this.data.bytes;
    const next = new Uint8Array(old.length + len);
    next.set(old.subarray(0, start), 0);
    next.set(old.subarray(start), start + len);
    this.data.access = Access.OPAQUE;
    this.data = this.newData(next);
    this.publish();
  }
  /** bpf_msg_pull_data: data and data_end frame bytes [start, end) of the message. */
  window(start: number, end: number): void {
    const v = this.ctx.view;
    writePtr(v, SK_MSG.data, this.mem, this.data, start);
    writePtr(v, SK_MSG.data_end, this.mem, this.data, end);
  }
  private publish(): void {
    this.window(0, this.data.bytes.length);
    this.ctx.view.setUint32(SK_MSG.size_field, this.data.bytes.length, true);
  }
  get bytes(): Uint8Array {
    return this.data.bytes;
  }
}

/** An sk_msg_md for one message of a socket; the MsgState is reachable as the region's owner. */
export function skMsgContext(mem: Memory, sock: VmSock, payload: Uint8Array): MsgState {
  const r = new Region('sk_msg_md', new Uint8Array(SK_MSG.size), Access.RULES, RULES.skMsg, null, true);
  const v = r.view;
  const b = r.bytes;
  v.setUint32(SK_MSG.family, sock.family === 'inet' ? AF_INET : AF_INET6, true);
  if (sock.remote && sock.remoteBytes) {
    writeAddrPair(b, sock.remoteBytes, SK_MSG.remote_ip4, SK_MSG.remote_ip6);
    b[SK_MSG.remote_port + 2] = sock.remote.port >>> 8;
    b[SK_MSG.remote_port + 3] = sock.remote.port & 0xff;
  }
  if (sock.local && sock.localBytes) {
    writeAddrPair(b, sock.localBytes, SK_MSG.local_ip4, SK_MSG.local_ip6, true);
    v.setUint32(SK_MSG.local_port, sock.local.port, true);
  }
  writePtr(v, SK_MSG.sk, mem, sock.sockRegion);
  const msg = new MsgState(mem, r, sock, payload.slice());
  r.owner = msg;
  return msg;
}
