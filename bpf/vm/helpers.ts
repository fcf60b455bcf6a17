// BPF helpers of the VM, by their uapi ids (checked against <linux/bpf.h> in the tests). Each
// reads its arguments from r1..r5 and writes r0; misuse (a non-pointer where a pointer is due,
// a map of the wrong type, a context of the wrong kind) is a fault with the program's pc.

import { Access, BIAS, MemoryFault, Region } from './memory.js';
import type { Machine } from './machine.js';
import { SkStorageMap, SockHashMap, RingBufMap, VmMap, Errno } from './maps.js';
import { BPF_F_INGRESS, BPF_SOCK_OPS_ALL_CB_FLAGS, SOCK_OPS, SockOps, TCP_LISTEN, VmSock, MsgState, type CtxInfo } from './context.js';
import type { ChoiceSource } from '../runner/choices.js';

export const HelperId = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  ktime_get_ns: 5,
  trace_printk: 6,
  get_prandom_u32: 7,
  get_smp_processor_id: 8,
  tail_call: 12,
  get_current_pid_tgid: 14,
  get_socket_cookie: 46,
  sock_ops_cb_flags_set: 59,
  msg_pull_data: 63,
  sock_hash_update: 70,
  msg_redirect_hash: 71,
  get_current_cgroup_id: 80,
  msg_push_data: 90,
  sk_fullsock: 95,
  tcp_sock: 96,
  sk_storage_get: 107,
  sk_storage_delete: 108,
  get_netns_cookie: 122,
  ktime_get_boot_ns: 125,
  ringbuf_output: 130,
  ringbuf_reserve: 131,
  ringbuf_submit: 132,
  ringbuf_discard: 133,
  ktime_get_coarse_ns: 160,
  snprintf: 165,
} as const;

export const BPF_SK_STORAGE_GET_F_CREATE = 1;
/** bpf_get_netns_cookie(NULL): the initial namespace's cookie, which no namespace of the VM has (the kernel gave it 3 here). */
export const INIT_NET_COOKIE = 1;

/** What helpers need from the world around the programs. */
export interface HelperHost {
  readonly choices: ChoiceSource;
  /** Monotonic nanoseconds; advances on every call. */
  clock(): number;
  readonly netnsCookie: number;
  readonly cgroupId: number;
  /** bpf_trace_printk output, one line per call. */
  readonly trace: string[];
}

function setU64(m: Machine, r: number, v: number): void {
  m.L[r] = (v % 0x100000000) | 0;
  m.H[r] = Math.floor(v / 0x100000000) | 0;
}

function ret(m: Machine, v: number): void {
  m.L[0] = v | 0;
  m.H[0] = v < 0 ? -1 : 0;
}

function mapArg(m: Machine, r: number, what: string): VmMap {
  const region = m.mem.regionOf(m.H[r] as number);
  const owner = region?.owner;
  if (!region || region.access !== Access.OPAQUE || !(owner instanceof VmMap)) throw new MemoryFault(`${what}: r${r} is not a map`);
  return owner;
}

/** A pointer argument of `size` bytes; returns the region and (via lastOffset) the offset. */
function memArg(m: Machine, r: number, size: number, write: boolean, what: string): { region: Region; off: number } {
  const region = m.resolve(r, size, write, what);
  return { region, off: m.lastOffset };
}

function ctxArg(m: Machine, r: number, what: string): CtxInfo {
  const region = m.mem.regionOf(m.H[r] as number);
  const owner = region?.owner as CtxInfo | undefined;
  if (!region || region.access !== Access.RULES || !owner || typeof owner !== 'object' || !('kind' in owner)) {
    throw new MemoryFault(`${what}: r${r} is not a program context`);
  }
  return owner;
}

/** A socket pointer (bpf_sock, bpf_tcp_sock) or NULL; with allowCtx, a context stands for its socket. */
function sockArg(m: Machine, r: number, what: string, allowCtx = false): VmSock | null {
  if (m.L[r] === 0 && m.H[r] === 0) return null;
  const region = m.mem.regionOf(m.H[r] as number);
  const owner = region?.owner;
  if (owner instanceof VmSock && (region === owner.sockRegion || region === owner.tcpRegion)) return owner;
  if (allowCtx && owner && typeof owner === 'object' && 'kind' in owner) return (owner as CtxInfo).sock;
  throw new MemoryFault(`${what}: r${r} is not a socket`);
}

function cString(m: Machine, r: number, what: string, max = 1024): string {
  const region = m.resolve(r, 1, false, what);
  const start = m.lastOffset;
  const b = region.bytes;
  let end = start;
  while (end < b.length && end - start < max && b[end] !== 0) end++;
  if (end >= b.length) throw new MemoryFault(`${what}: string in ${region.name} is not NUL-terminated`);
  return Buffer.from(b.subarray(start, end)).toString('latin1');
}

function u64Of(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/**
 * printf-style formatting of BPF's subset (%d %i %u %x %X %p %s %c %%, with l/ll/h/hh and a
 * width). `arg(i)` gives the i-th argument as u64; %s arguments are pointers read by `str`.
 */
export function formatBpf(fmt: string, arg: (i: number) => bigint, str: (i: number) => string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i] as string;
    if (c !== '%') {
      out += c;
      continue;
    }
    const m = /^(-?0?)(\d*)(ll|l|hh|h|z)?([diuxXpsc%])/.exec(fmt.slice(i + 1));
    if (!m) throw new MemoryFault(`format string ${JSON.stringify(fmt)}: unsupported conversion at ${i}`);
    i += m[0].length;
    const [, flags = '', widthText = '', len = '', conv] = m;
    if (conv === '%') {
      out += '%';
      continue;
    }
    const idx = n++;
    let text: string;
    const raw = arg(idx);
    const bits = len === 'll' || len === 'l' || len === 'z' || conv === 'p' ? 64 : len === 'h' ? 16 : len === 'hh' ? 8 : 32;
    const unsigned = BigInt.asUintN(bits, raw);
    switch (conv) {
      case 'd':
      case 'i':
        text = BigInt.asIntN(bits, raw).toString();
        break;
      case 'u':
        text = unsigned.toString();
        break;
      case 'x':
      case 'p':
        text = unsigned.toString(16);
        if (conv === 'p') text = `0x${text}`;
        break;
      case 'X':
        text = unsigned.toString(16).toUpperCase();
        break;
      case 'c':
        text = String.fromCharCode(Number(raw & 0xffn));
        break;
      default:
        text = str(idx);
        break;
    }
    const width = widthText ? Number(widthText) : 0;
    if (text.length < width) {
      if (flags.startsWith('-')) text = text.padEnd(width);
      else text = text.padStart(width, flags.includes('0') && conv !== 's' ? '0' : ' ');
    }
    out += text;
  }
  return out;
}

/** Installs every helper into the machine. */
export function installHelpers(m: Machine, host: HelperHost): void {
  const h = m.helpers;
  h[HelperId.map_lookup_elem] = (m) => {
    const map = mapArg(m, 1, 'bpf_map_lookup_elem');
    if (map instanceof SkStorageMap) throw new MemoryFault('bpf_map_lookup_elem: sk_storage maps are read with bpf_sk_storage_get');
    const key = m.resolve(2, map.def.keySize, false, 'bpf_map_lookup_elem key');
    const v = map.lookup(key.bytes, m.lastOffset);
    if (v) m.setPointer(0, v, 0);
    else ret(m, 0);
  };
  h[HelperId.map_update_elem] = (m) => {
    const map = mapArg(m, 1, 'bpf_map_update_elem');
    const key = memArg(m, 2, map.def.keySize, false, 'bpf_map_update_elem key');
    const value = memArg(m, 3, map.def.valueSize, false, 'bpf_map_update_elem value');
    const flags = (m.L[4] as number) >>> 0;
    if (host.choices.fail('map-update')) {
      ret(m, -Errno.ENOMEM);
      return;
    }
    map.programWrites++;
    ret(m, map.update(key.region.bytes, key.off, value.region.bytes, value.off, flags));
  };
  h[HelperId.map_delete_elem] = (m) => {
    const map = mapArg(m, 1, 'bpf_map_delete_elem');
    const key = memArg(m, 2, map.def.keySize, false, 'bpf_map_delete_elem key');
    map.programWrites++;
    ret(m, map.remove(key.region.bytes, key.off));
  };
  const clock = (m: Machine) => setU64(m, 0, host.clock());
  h[HelperId.ktime_get_ns] = clock;
  h[HelperId.ktime_get_boot_ns] = clock;
  h[HelperId.ktime_get_coarse_ns] = clock;
  h[HelperId.get_prandom_u32] = (m) => {
    m.L[0] = host.choices.prandom() | 0;
    m.H[0] = 0;
  };
  h[HelperId.get_smp_processor_id] = (m) => ret(m, 0);
  h[HelperId.get_current_pid_tgid] = (m) => {
    m.L[0] = 4242;
    m.H[0] = 4242;
  };
  h[HelperId.get_current_cgroup_id] = (m) => setU64(m, 0, host.cgroupId);
  h[HelperId.get_netns_cookie] = (m) => {
    // A context names its socket's namespace (the VM's one namespace, unless the socket says
    // another); NULL names the initial namespace, which is never the case's (the kernel
    // executor's is a private one).
    if (m.L[1] === 0 && m.H[1] === 0) return setU64(m, 0, INIT_NET_COOKIE);
    setU64(m, 0, ctxArg(m, 1, 'bpf_get_netns_cookie').sock?.netnsCookie ?? host.netnsCookie);
  };
  h[HelperId.get_socket_cookie] = (m) => {
    const sock = sockArg(m, 1, 'bpf_get_socket_cookie', true);
    setU64(m, 0, sock ? sock.cookie : 0);
  };
  h[HelperId.trace_printk] = (m) => {
    const size = (m.L[2] as number) >>> 0;
    const fmtRegion = memArg(m, 1, size, false, 'bpf_trace_printk fmt');
    const fmtBytes = fmtRegion.region.bytes.subarray(fmtRegion.off, fmtRegion.off + size);
    const z = fmtBytes.indexOf(0);
    const fmt = Buffer.from(fmtBytes.subarray(0, z < 0 ? size : z)).toString('latin1');
    const args = [3, 4, 5];
    const line = formatBpf(
      fmt,
      (i) => {
        const r = args[i];
        return r === undefined ? 0n : u64Of(m.L[r] as number, m.H[r] as number);
      },
      (i) => {
        const r = args[i];
        return r === undefined ? '' : cString(m, r, 'bpf_trace_printk %s');
      },
    );
    host.trace.push(line);
    ret(m, line.length + 1);
  };
  h[HelperId.snprintf] = (m) => {
    const size = (m.L[2] as number) >>> 0;
    const fmt = cString(m, 3, 'bpf_snprintf fmt');
    const dataLen = (m.L[5] as number) >>> 0;
    const args: bigint[] = [];
    if (dataLen > 0) {
      const d = memArg(m, 4, dataLen, false, 'bpf_snprintf data');
      const v = new DataView(d.region.bytes.buffer, d.region.bytes.byteOffset + d.off, dataLen);
      for (let i = 0; i + 8 <= dataLen; i += 8) args.push(v.getBigUint64(i, true));
    }
    const argsCopy = [...args];
    const text = formatBpf(
      fmt,
      (i) => argsCopy[i] ?? 0n,
      (i) => {
        const p = argsCopy[i] ?? 0n;
        const save = [m.L[5] as number, m.H[5] as number];
        m.L[5] = Number(p & 0xffffffffn) | 0;
        m.H[5] = Number(p >> 32n) | 0;
        try {
          return cString(m, 5, 'bpf_snprintf %s');
        } finally {
          m.L[5] = save[0] as number;
          m.H[5] = save[1] as number;
        }
      },
    );
    const bytes = Buffer.from(text, 'latin1');
    if (size > 0) {
      const out = memArg(m, 1, size, true, 'bpf_snprintf str');
      const n = Math.min(bytes.length, size - 1);
      out.region.bytes.set(bytes.subarray(0, n), out.off);
      out.region.bytes[out.off + n] = 0;
    }
    ret(m, bytes.length + 1);
  };
  h[HelperId.sk_fullsock] = (m) => {
    const sock = sockArg(m, 1, 'bpf_sk_fullsock');
    if (sock) m.setPointer(0, sock.sockRegion, 0);
    else ret(m, 0);
  };
  h[HelperId.tcp_sock] = (m) => {
    const sock = sockArg(m, 1, 'bpf_tcp_sock');
    if (sock && sock.tcpRegion) m.setPointer(0, sock.tcpRegion, 0);
    else ret(m, 0);
  };
  h[HelperId.sk_storage_get] = (m) => {
    const map = mapArg(m, 1, 'bpf_sk_storage_get');
    if (!(map instanceof SkStorageMap)) throw new MemoryFault(`bpf_sk_storage_get: map ${map.name} is not an sk_storage map`);
    const sock = sockArg(m, 2, 'bpf_sk_storage_get');
    const flags = (m.L[4] as number) >>> 0;
    if (!sock || flags & ~BPF_SK_STORAGE_GET_F_CREATE) {
      ret(m, 0);
      return;
    }
    const have = map.storageOf(sock);
    if (have) {
      m.setPointer(0, have, 0);
      return;
    }
    if (!(flags & BPF_SK_STORAGE_GET_F_CREATE) || host.choices.fail('storage-create')) {
      ret(m, 0);
      return;
    }
    let init: Uint8Array | null = null;
    if (m.L[3] !== 0 || m.H[3] !== 0) {
      const v = memArg(m, 3, map.def.valueSize, false, 'bpf_sk_storage_get value');
      init = v.region.bytes.subarray(v.off, v.off + map.def.valueSize);
    }
    m.setPointer(0, map.create(sock, init), 0);
  };
  h[HelperId.sk_storage_delete] = (m) => {
    const map = mapArg(m, 1, 'bpf_sk_storage_delete');
    if (!(map instanceof SkStorageMap)) throw new MemoryFault(`bpf_sk_storage_delete: map ${map.name} is not an sk_storage map`);
    const sock = sockArg(m, 2, 'bpf_sk_storage_delete');
    ret(m, sock && map.drop(sock) ? 0 : -Errno.ENOENT);
  };
  h[HelperId.sock_ops_cb_flags_set] = (m) => {
    const ctx = ctxArg(m, 1, 'bpf_sock_ops_cb_flags_set');
    if (ctx.kind !== 'sock_ops') throw new MemoryFault('bpf_sock_ops_cb_flags_set: r1 is not a bpf_sock_ops context');
    const flags = (m.L[2] as number) >>> 0;
    ctx.sock.cbFlags = flags & BPF_SOCK_OPS_ALL_CB_FLAGS;
    const region = m.mem.regionOf(m.H[1] as number) as Region;
    region.view.setUint32(SOCK_OPS.bpf_sock_ops_cb_flags, ctx.sock.cbFlags, true);
    ret(m, flags & ~BPF_SOCK_OPS_ALL_CB_FLAGS);
  };
  h[HelperId.sock_hash_update] = (m) => {
    const ctx = ctxArg(m, 1, 'bpf_sock_hash_update');
    if (ctx.kind !== 'sock_ops') throw new MemoryFault('bpf_sock_hash_update: r1 is not a bpf_sock_ops context');
    const map = mapArg(m, 2, 'bpf_sock_hash_update');
    if (!(map instanceof SockHashMap)) throw new MemoryFault(`bpf_sock_hash_update: map ${map.name} is not a sockhash`);
    const key = memArg(m, 3, map.def.keySize, false, 'bpf_sock_hash_update key');
    const flags = (m.L[4] as number) >>> 0;
    // The kernel only inserts established TCP sockets.
    if (ctx.op !== SockOps.ACTIVE_ESTABLISHED_CB && ctx.op !== SockOps.PASSIVE_ESTABLISHED_CB) {
      ret(m, -Errno.EOPNOTSUPP);
      return;
    }
    ret(m, map.insert(key.region.bytes, key.off, ctx.sock, flags));
  };
  h[HelperId.msg_redirect_hash] = (m) => {
    // net/core/sock_map.c: unknown flags, no socket under the key, or a listener: SK_DROP;
    // otherwise the message is marked for the socket and SK_PASS returned.
    const ctx = ctxArg(m, 1, 'bpf_msg_redirect_hash');
    if (!(ctx instanceof MsgState)) throw new MemoryFault('bpf_msg_redirect_hash: r1 is not an sk_msg context');
    const map = mapArg(m, 2, 'bpf_msg_redirect_hash');
    if (!(map instanceof SockHashMap)) throw new MemoryFault(`bpf_msg_redirect_hash: map ${map.name} is not a sockhash`);
    const key = memArg(m, 3, map.def.keySize, false, 'bpf_msg_redirect_hash key');
    const flagsLo = (m.L[4] as number) >>> 0;
    const target = map.sockAt(key.region.bytes, key.off);
    if ((flagsLo & ~BPF_F_INGRESS) !== 0 || m.H[4] !== 0 || !(target instanceof VmSock) || target.state === TCP_LISTEN) {
      ret(m, 0);
      return;
    }
    ctx.redirect = { sock: target, ingress: (flagsLo & BPF_F_INGRESS) !== 0 };
    ret(m, 1);
  };
  h[HelperId.msg_pull_data] = (m) => {
    const ctx = ctxArg(m, 1, 'bpf_msg_pull_data');
    if (!(ctx instanceof MsgState)) throw new MemoryFault('bpf_msg_pull_data: r1 is not an sk_msg context');
    const start = (m.L[2] as number) >>> 0;
    const end = (m.L[3] as number) >>> 0;
    // The kernel's checks: no flags, a non-empty range, inside the message. The VM's message is
    // one linear element already, so nothing is copied and nothing can fail to be allocated.
    if (m.L[4] !== 0 || m.H[4] !== 0 || end <= start || end > ctx.bytes.length) {
      ret(m, -Errno.EINVAL);
      return;
    }
    ctx.window(start, end);
    ret(m, 0);
  };
  h[HelperId.msg_push_data] = (m) => {
    const ctx = ctxArg(m, 1, 'bpf_msg_push_data');
    if (!(ctx instanceof MsgState)) throw new MemoryFault('bpf_msg_push_data: r1 is not an sk_msg context');
    const start = (m.L[2] as number) >>> 0;
    const len = (m.L[3] as number) >>> 0;
    const flags = (m.L[4] as number) >>> 0;
    if (flags !== 0) {
      ret(m, -Errno.EINVAL);
      return;
    }
    if (len === 0) {
      ret(m, 0);
      return;
    }
    if (start > ctx.bytes.length) {
      ret(m, -Errno.EINVAL);
      return;
    }
    if (host.choices.fail('push-data')) {
      ret(m, -Errno.ENOMEM);
      return;
    }
    ctx.push(start, len);
    ret(m, 0);
  };
  h[HelperId.ringbuf_reserve] = (m) => {
    const map = mapArg(m, 1, 'bpf_ringbuf_reserve');
    if (!(map instanceof RingBufMap)) throw new MemoryFault(`bpf_ringbuf_reserve: map ${map.name} is not a ring buffer`);
    const r = map.reserve((m.L[2] as number) >>> 0);
    if (r) m.setPointer(0, r, 0);
    else ret(m, 0);
  };
  const commit = (discard: boolean) => (m: Machine) => {
    const region = m.mem.regionOf(m.H[1] as number);
    if (!region || !(region.owner instanceof RingBufMap) || (m.L[1] as number) !== BIAS) {
      throw new MemoryFault(`bpf_ringbuf_${discard ? 'discard' : 'submit'}: r1 is not a reserved record`);
    }
    region.owner.commit(region, discard);
    region.access = Access.OPAQUE; // the record is no longer the program's
    ret(m, 0);
  };
  h[HelperId.ringbuf_submit] = commit(false);
  h[HelperId.ringbuf_discard] = commit(true);
  h[HelperId.ringbuf_output] = (m) => {
    const map = mapArg(m, 1, 'bpf_ringbuf_output');
    if (!(map instanceof RingBufMap)) throw new MemoryFault(`bpf_ringbuf_output: map ${map.name} is not a ring buffer`);
    const size = (m.L[3] as number) >>> 0;
    const d = memArg(m, 2, size, false, 'bpf_ringbuf_output data');
    ret(m, map.output(d.region.bytes.subarray(d.off, d.off + size)) ? 0 : -11 /* EAGAIN */);
  };
}
