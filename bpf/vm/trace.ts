// Tracing what the compiled programs did on one case, for explaining a finding: every map lookup
// (map, key, hit or miss, the value then available to the program), every other helper call and
// its result, every change the program made to the connect context's destination (address and
// port, as written, before the kernel accepts or refuses it; the source a receive hook reports),
// tail calls, the socket storage a program read and left (the ABI's decoded, any other map's
// bytes: an object's own records), and the source line of each step (BTF line info). The VM executor attaches it for
// one run (VmExecutor.traceCase, on an executor of its own so that the run being explained and its
// statistics are not disturbed) on the reference interpreter, which counts executed instructions:
// how a helper call is tied to its call site. It uses the machine's hooks (context stores, tail
// calls forwarded by the executor), the helper table and the VM's run entry points, and restores
// them when detached: the engines themselves are untouched.

import { formatIPv4, formatIPv6, sockAddrText } from '../../model/address.js';
import { decodeBackend, decodeEndpoint, decodeFrontendKey, decodeFrontendValue, decodeManagerKey, decodeServiceValue, decodeSockStorage, readU32 } from '../codec/structs.js';
import { toHex } from '../codec/state.js';
import { HelperId, INIT_NET_COOKIE } from './helpers.js';
import type { Machine } from './machine.js';
import { HELPER_TAIL_CALL, type VmProgram } from './program.js';
import { SOCK_ADDR, type SockAddrCtx, type VmSock } from './context.js';
import { SkStorageMap, VmMap } from './maps.js';
import { BIAS } from './memory.js';
import type { Vm } from './vm.js';

export interface SourceLine {
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

interface Base {
  /** 0-based operation of the case (-1: enrolment before the first operation). */
  readonly op: number;
  readonly program: string;
  readonly line: SourceLine | null;
}

export type TraceEvent =
  | (Base & { readonly kind: 'run'; readonly dest: string | null; readonly field?: AddressField })
  | (Base & { readonly kind: 'lookup'; readonly map: string; readonly key: string; readonly hit: boolean; readonly value: string | null })
  | (Base & { readonly kind: 'map-write'; readonly helper: string; readonly map: string; readonly key: string; readonly result: number })
  | (Base & { readonly kind: 'helper'; readonly helper: string; readonly result: string })
  | (Base & { readonly kind: 'ctx-write'; readonly dest: string; readonly field?: AddressField })
  | (Base & { readonly kind: 'tail-call'; readonly target: string })
  | (Base & { readonly kind: 'tail-call-missed'; readonly slot: number; readonly why: string })
  | (Base & {
      readonly kind: 'exit';
      readonly verdict: number;
      readonly dest: string | null;
      readonly field?: AddressField;
      readonly storage: string | null;
      /** The socket's storage in maps other than km_sockstorage, as "map bytes". */
      readonly other?: readonly string[];
    });

/** What a context's address is: a connect's or send's destination, or the source a receive reports. */
export type AddressField = 'destination' | 'source';

/** An event before the tracer stamps its operation on it. */
type WithoutOp<T> = T extends unknown ? Omit<T, 'op'> : never;

const HELPER_NAMES = new Map<number, string>(Object.entries(HelperId).map(([k, v]) => [v, `bpf_${k}`]));

function lineOf(prog: VmProgram | null, pc: number): SourceLine | null {
  const l = prog?.linked.lineOf[pc];
  return l ? { file: l.file.split('/').pop() ?? l.file, line: l.line, text: l.text.trim() } : null;
}

/** A key or value of a map, in domain terms where the map is one of the ABI's. */
/** `netnsCookie`: the VM's namespace, the one cookie a km_manage key can name (the union's two readings overlap for IPv4). */
function describe(map: string, key: Uint8Array, value: Uint8Array | null, netnsCookie: number): { key: string; value: string | null } {
  try {
    switch (map) {
      case 'km_frontend':
        return { key: decodeFrontendKey(key), value: value ? `upstream_id ${decodeFrontendValue(value)}` : null };
      case 'km_service': {
        const id = readU32(key, 0);
        if (!value) return { key: String(id), value: null };
        const s = decodeServiceValue(id, value);
        const wp = s.waypoint.port ? ` waypoint ${sockAddrText(s.waypoint)}` : ' no waypoint';
        return { key: String(id), value: `lb_policy ${s.lbPolicy} count [${s.endpointCounts.join(',')}]${wp}` };
      }
      case 'km_endpoint': {
        const e = decodeEndpoint(key, value ?? new Uint8Array(4));
        return { key: `service ${e.serviceId} prio ${e.prio} index ${e.index}`, value: value ? `backend_uid ${e.backendUid}` : null };
      }
      case 'km_backend': {
        const uid = readU32(key, 0);
        if (!value) return { key: String(uid), value: null };
        const b = decodeBackend(key, value);
        const wp = b.waypoint.port ? ` waypoint ${sockAddrText(b.waypoint)}` : '';
        return { key: String(uid), value: `addr ${b.addr} services [${b.services.join(',')}]${wp}` };
      }
      case 'km_manage': {
        const k = decodeManagerKey(key);
        const name = k.cookie === BigInt(netnsCookie) ? `netns cookie ${k.cookie}` : k.cookie === BigInt(INIT_NET_COOKIE) ? `netns cookie ${k.cookie} (the initial namespace's)` : `ip ${k.addr}`;
        const v = value && value.length === 4 ? readU32(value, 0) : 0;
        return { key: name, value: value ? (v === 0 ? 'present' : `present, value 0x${v.toString(16)}`) : null };
      }
    }
  } catch {
    // fall through to bytes
  }
  return { key: toHex(key), value: value ? toHex(value) : null };
}

function storageText(b: Uint8Array | null): string | null {
  if (!b) return null;
  const s = decodeSockStorage(b);
  return `via_waypoint=${s.viaWaypoint ? 1 : 0} has_set_ip=${s.hasSetIp ? 1 : 0} has_encoded=${s.hasEncoded ? 1 : 0}`;
}

/** An address given to a run as bytes (4: IPv4, 16: IPv6) and its port, as the trace writes it. */
function rawAddrText(addr: Uint8Array, port: number): string {
  return `${addr.length === 4 ? formatIPv4(addr) : `[${formatIPv6(addr)}]`}:${port}`;
}

function ctxDest(ctx: SockAddrCtx): string {
  const b = ctx.region.bytes;
  const port = ctx.port();
  return ctx.attach.endsWith('4') ? `${formatIPv4(b, SOCK_ADDR.user_ip4)}:${port}` : `[${formatIPv6(b, SOCK_ADDR.user_ip6)}]:${port}`;
}

/** Bytes shown of a map value that has no decoding here; longer ones end in "...". */
const SHOWN_BYTES = 32;

/** A value's bytes in groups of four (hex), at most SHOWN_BYTES of them. */
export function bytesText(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < Math.min(b.length, SHOWN_BYTES); i += 4) groups.push(toHex(b.subarray(i, Math.min(i + 4, b.length, SHOWN_BYTES))));
  return `${groups.join(' ')}${b.length > SHOWN_BYTES ? ` ... (${b.length} bytes)` : ''}`;
}

/** A socket storage value as the trace shows it: the ABI's decoded, another map's bytes. */
function skStorageText(map: string, b: Uint8Array): string {
  return map === 'km_sockstorage' ? (storageText(b) ?? '') : bytesText(b);
}

/**
 * Call sites of each helper in a program, with the instruction counts last seen: between two
 * calls of one helper exactly one of its call sites ran, the one whose count went up.
 */
class CallSites {
  private readonly seen = new Map<VmProgram, Map<number, number>>();
  at(prog: VmProgram, helper: number): number {
    let m = this.seen.get(prog);
    if (!m) {
      m = new Map();
      for (let pc = 0; pc < prog.n; pc++) if (prog.op[pc] === 0x85 && prog.src[pc] === 0) m.set(pc, prog.hits[pc] as number);
      this.seen.set(prog, m);
    }
    let found = -1;
    for (const [pc, n] of m) {
      if (prog.imm[pc] !== helper) continue;
      const now = prog.hits[pc] as number;
      if (now !== n) {
        found = pc;
        m.set(pc, now);
      }
    }
    return found;
  }
}

/** Records what the programs do while attached to a VM (attach, run the case, detach). */
export class VmTracer {
  readonly events: TraceEvent[] = [];
  private ctx: SockAddrCtx | null = null;
  private dest: string | null = null;
  private field: AddressField = 'destination';
  private readonly sites = new CallSites();
  private readonly m: Machine;
  private restore: (() => void) | null = null;

  /** `opIndex` says which operation of the case is running (-1: before the first). */
  constructor(
    private readonly vm: Vm,
    private readonly opIndex: () => number,
  ) {
    this.m = vm.machine;
  }

  private get op(): number {
    return this.opIndex();
  }

  /** Starts recording: the interpreter runs, helpers and run entry points report here. */
  attach(): void {
    if (this.restore) return;
    const vm = this.vm;
    const m = this.m;
    const engine = m.engine;
    const helpers = [...m.helpers];
    const { runConnectRaw, runUdpHook, runSockOps, runSkMsg } = vm;
    m.engine = 'interp';
    this.wrapHelpers();
    // Every store into a context field: each write to the destination is seen as it happens, also
    // those a later store overwrites.
    m.onContextStore = (region) => {
      if (this.ctx && region === this.ctx.region) this.noteCtx(m.current, null, true);
    };
    // A tail call that falls through: the caller goes on where it made the call.
    m.onTailCallMiss = (slot, why) => {
      const from = m.current;
      this.push({ kind: 'tail-call-missed', program: from?.name ?? '?', line: from ? lineOf(from, this.sites.at(from, HELPER_TAIL_CALL)) : null, slot, why });
    };
    // Program runs: which hook, where the destination started, what the program left.
    vm.runConnectRaw = (prog, sock, addr, port) => {
      this.ctx = sock.family === 'inet' ? vm.connect4Ctx : vm.connect6Ctx;
      this.dest = rawAddrText(addr, port);
      this.push({ kind: 'run', program: prog.name, line: null, dest: this.dest });
      const verdict = runConnectRaw.call(vm, prog, sock, addr, port);
      this.noteCtx(m.current);
      this.exit(prog, verdict, sock);
      this.ctx = null;
      return verdict;
    };
    vm.runUdpHook = (ctx, prog, sock, addr, port) => {
      this.ctx = ctx;
      this.field = ctx.attach.startsWith('recvmsg') ? 'source' : 'destination';
      this.dest = rawAddrText(addr, port);
      this.push({ kind: 'run', program: prog.name, line: null, dest: this.dest, field: this.field });
      const out = runUdpHook.call(vm, ctx, prog, sock, addr, port);
      this.noteCtx(m.current);
      this.exit(prog, out.verdict, sock);
      this.ctx = null;
      this.field = 'destination';
      return out;
    };
    vm.runSockOps = (prog, sock, op, args) => {
      this.push({ kind: 'run', program: `${prog.name} (op ${op})`, line: null, dest: null });
      const verdict = runSockOps.call(vm, prog, sock, op, args);
      this.exit(prog, verdict, sock);
      return verdict;
    };
    vm.runSkMsg = (prog, sock, payload) => {
      this.push({ kind: 'run', program: prog.name, line: null, dest: null });
      const out = runSkMsg.call(vm, prog, sock, payload);
      this.exit(prog, out.verdict, sock);
      return out;
    };
    this.restore = () => {
      m.engine = engine;
      m.helpers.splice(0, m.helpers.length, ...helpers);
      m.onContextStore = null;
      m.onTailCallMiss = null;
      // The instance's own properties go; the class's methods show through again.
      delete (vm as { runConnectRaw?: unknown }).runConnectRaw;
      delete (vm as { runUdpHook?: unknown }).runUdpHook;
      delete (vm as { runSockOps?: unknown }).runSockOps;
      delete (vm as { runSkMsg?: unknown }).runSkMsg;
    };
  }

  /** Stops recording and gives the VM back as it was. */
  detach(): void {
    this.restore?.();
    this.restore = null;
    this.ctx = null;
  }

  /** A tail call the machine is about to make (the executor forwards its onTailCall). */
  tailCall(target: VmProgram): void {
    if (!this.restore) return;
    const from = this.m.current;
    this.noteCtx(from);
    this.push({ kind: 'tail-call', program: from?.name ?? '?', line: from ? lineOf(from, this.sites.at(from, HELPER_TAIL_CALL)) : null, target: target.name });
  }

  private push(e: WithoutOp<TraceEvent>): void {
    this.events.push({ ...e, op: this.op } as TraceEvent);
  }

  private exit(prog: VmProgram, verdict: number, sock: VmSock): void {
    let storage: string | null = null;
    const other: string[] = [];
    for (const m of this.vm.maps.values()) {
      if (!(m instanceof SkStorageMap)) continue;
      const b = m.get(sock);
      if (m.name === 'km_sockstorage') storage = storageText(b);
      else if (b) other.push(`${m.name} ${bytesText(b)}`);
    }
    const dest = this.ctx ? ctxDest(this.ctx) : null;
    this.push({ kind: 'exit', program: prog.name, line: null, verdict, dest, ...(dest && this.field !== 'destination' ? { field: this.field } : {}), storage, ...(other.length ? { other } : {}) });
  }

  /**
   * A change of the context's destination: the program wrote it. Consecutive stores (the four
   * words of an IPv6 address, then the port) make one write, the destination after the last.
   */
  private noteCtx(prog: VmProgram | null, line: SourceLine | null = null, store = false): void {
    if (!this.ctx) return;
    const now = ctxDest(this.ctx);
    if (now === this.dest) return;
    this.dest = now;
    const last = this.events[this.events.length - 1];
    if (store && last?.kind === 'ctx-write' && last.op === this.op) {
      this.events[this.events.length - 1] = { ...last, dest: now };
      return;
    }
    this.push({ kind: 'ctx-write', program: prog?.name ?? '?', line, dest: now, ...(this.field !== 'destination' ? { field: this.field } : {}) });
  }

  private wrapHelpers(): void {
    const h = this.m.helpers;
    for (let id = 0; id < h.length; id++) {
      const orig = h[id];
      if (!orig) continue;
      const name = HELPER_NAMES.get(id) ?? `helper ${id}`;
      h[id] = (m: Machine) => {
        const prog = m.current;
        const line = prog ? lineOf(prog, this.sites.at(prog, id)) : null;
        this.noteCtx(prog, line);
        const isMapOp = id === HelperId.map_lookup_elem || id === HelperId.map_update_elem || id === HelperId.map_delete_elem;
        let map: VmMap | null = null;
        let key: Uint8Array | null = null;
        if (isMapOp) {
          const owner = m.mem.regionOf(m.H[1] as number)?.owner;
          if (owner instanceof VmMap) {
            map = owner;
            try {
              const r = m.resolve(2, owner.def.keySize, false, 'trace');
              key = r.bytes.slice(m.lastOffset, m.lastOffset + owner.def.keySize);
            } catch {
              key = null;
            }
          }
        }
        orig(m);
        const program = prog?.name ?? '?';
        if (map && key && id === HelperId.map_lookup_elem) {
          const r = m.H[0] !== 0 || m.L[0] !== 0 ? m.mem.regionOf(m.H[0] as number) : null;
          const off = ((m.L[0] as number) - BIAS) | 0;
          const value = r ? r.bytes.slice(off, off + map.def.valueSize) : null;
          const d = describe(map.name, key, value, this.vm.netnsCookie);
          this.push({ kind: 'lookup', program, line, map: map.name, key: d.key, hit: value !== null, value: d.value });
        } else if (map && key) {
          this.push({ kind: 'map-write', program, line, helper: name, map: map.name, key: describe(map.name, key, null, this.vm.netnsCookie).key, result: m.L[0] as number });
        } else if (id !== HelperId.trace_printk) {
          const ptr = m.mem.regionOf(m.H[0] as number);
          const returnsPointer = id === HelperId.sk_storage_get || id === HelperId.ringbuf_reserve || id === HelperId.sk_fullsock || id === HelperId.tcp_sock;
          const isNull = m.L[0] === 0 && m.H[0] === 0;
          // What a socket storage holds when the program gets it: what it reads next.
          const held = ptr?.owner instanceof SkStorageMap ? `, holding ${skStorageText(ptr.owner.name, ptr.bytes)}` : '';
          this.push({ kind: 'helper', program, line, helper: name, result: ptr ? `pointer to ${ptr.name}${held}` : returnsPointer && isNull ? 'NULL' : String(m.L[0] as number) });
        }
      };
    }
  }
}
