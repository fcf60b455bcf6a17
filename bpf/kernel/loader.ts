// Opens the three objects of a data path, checks them against the ABI table, loads them with
// maps shared by name, fills the tail-call slots as production does and attaches everything:
// sk_msg to km_socket first (before any socket exists), then connect4/6 and sockops to the cgroup
// through links (they die with the process).

import { closeSync, openSync, readSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { ObjectPaths } from '../../model/executor.js';
import { checkReportMap } from '../codec/report.js';
import { BPF_MAP_TYPE, MAPS, MAP_BY_NAME, OBJECT_OF_PROGRAM, PROGRAMS, checkMapShape, type MapName, type MapShape, type ProgramRole } from '../codec/abi.js';
import { KmeshCheckError, NEEDS_ROOT } from '../../shared/errors.js';
import { ATTACH, captureLibbpfLog, libbpf, mapsOf, takeLibbpfLog } from './libbpf.js';
import { globalSetter, type SetGlobal } from './globals.js';
import { E, errnoName } from './libc.js';
import { attachDnsHooks } from './dns-attach.js';
import type { DnsHook } from '../codec/abi.js';

export { PROGRAMS, type ProgramRole } from '../codec/abi.js';

/** Which object must hold which program. */
const PROGRAMS_OF = (object: keyof ObjectPaths): ProgramRole[] => (Object.keys(OBJECT_OF_PROGRAM) as ProgramRole[]).filter((r) => OBJECT_OF_PROGRAM[r] === object);

/** A map outside the ABI that the kernel worker puts back before every case (fastpath kf_set_resets). */
export interface ResetMap {
  readonly name: string;
  readonly fd: number;
  /** Emptied (hash, LRU hash, LPM trie), else an array whose entries get their bytes after load back. */
  readonly hash: boolean;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

/**
 * Kernel map types put back when outside the ABI: true hash-like (hash, per-CPU hash, LRU hashes,
 * LPM trie), false array (per-CPU arrays too: a value is one slot per possible CPU, each rounded
 * up to 8 bytes, which is what a syscall reads and writes).
 */
const RESET_KINDS: ReadonlyMap<number, boolean> = new Map([
  [1, true],
  [2, false],
  [5, true],
  [6, false],
  [9, true],
  [10, true],
  [11, true],
]);
const PERCPU_ARRAY = 6;
/** Arrays with more entries are left as they are: putting one back reads every entry, every case. */
export const RESET_ARRAY_MAX = 1024;
/** The largest array value (all CPUs' slots of a per-CPU one) the shim puts back (its buffer). */
const RESET_VALUE_MAX = 64 * 1024;

/**
 * The maps of the loaded objects outside the ABI that programs may write and a case could read
 * later: a map of the data path's own, its global data (.data, .bss; not .rodata or .kconfig,
 * which are frozen). Socket storage, sockhashes, ring buffers and program arrays are left: they
 * hold nothing past a case's sockets, or nothing a program writes.
 */
export function resettableMaps(handles: readonly bigint[]): ResetMap[] {
  const reset: ResetMap[] = [];
  for (const h of handles) {
    for (const m of mapsOf(h)) {
      // A map the objects share (reused by fd) is put back once.
      if (reset.some((r) => r.fd === libbpf.mapFd(m.ptr))) continue;
      const type = libbpf.mapType(m.ptr);
      const hash = RESET_KINDS.get(type);
      if (MAP_BY_NAME.has(m.name as MapName) || hash === undefined || /\.(rodata|kconfig)/.test(m.name)) continue;
      const size = libbpf.mapValueSize(m.ptr);
      const valueSize = type === PERCPU_ARRAY ? ((size + 7) & ~7) * libbpf.possibleCpus() : size;
      const r = { name: m.name, fd: libbpf.mapFd(m.ptr), hash, keySize: libbpf.mapKeySize(m.ptr), valueSize, maxEntries: libbpf.mapMaxEntries(m.ptr) };
      if (hash || (r.maxEntries <= RESET_ARRAY_MAX && valueSize <= RESET_VALUE_MAX)) reset.push(r);
    }
  }
  return reset;
}

export interface LoadedDataPath {
  readonly maps: ReadonlyMap<MapName, number>;
  /** Maps outside the ABI put back before every case (not arrays over RESET_ARRAY_MAX entries, nor ones whose values outgrow the shim's buffer). */
  readonly resettable: readonly ResetMap[];
  readonly progs: Readonly<Record<ProgramRole, number>>;
  /** Link fds of the cgroup attachments. */
  readonly links: readonly number[];
  /** The section 6 hooks found in the objects and attached (the rest are absent). */
  readonly dnsHooks: readonly DnsHook[];
  /** Sets a global variable of the objects (enable_monitoring: Case.monitoringOff). */
  readonly setGlobal: SetGlobal;
  close(): void;
}

export function checkElf(role: string, path: string): void {
  if (!existsSync(path)) throw new KmeshCheckError('object-file', `${role} object ${path} does not exist: build it (npm run build:bpf) or give the right path`);
  const head = Buffer.alloc(4);
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    readSync(fd, head, 0, 4, 0);
  } catch (e) {
    throw new KmeshCheckError('object-file', `cannot read ${role} object ${path}: ${(e as Error).message}`);
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  if (head[0] !== 0x7f || head.toString('latin1', 1, 4) !== 'ELF') {
    throw new KmeshCheckError('object-file', `${role} object ${path} is not an ELF file: give a BPF object compiled with clang -target bpf -g`);
  }
}

export function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/** Turns libbpf's failed-load log into one line: the verifier's message and the last instructions. */
export function summariseVerifierLog(log: string): { program: string | null; message: string; instructions: string[] } | null {
  const begin = log.indexOf('-- BEGIN PROG LOAD LOG --');
  if (begin < 0) return null;
  const end = log.indexOf('-- END PROG LOAD LOG --', begin);
  const body = log.slice(begin + '-- BEGIN PROG LOAD LOG --'.length, end < 0 ? undefined : end);
  const progMatch = /prog '([^']+)': -- BEGIN PROG LOAD LOG --/.exec(log);
  const lines = body
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l && !/^processed \d+ insns/.test(l) && !/^verification time/.test(l) && !/^stack depth/.test(l));
  const message = lines.at(-1) ?? 'no verifier message';
  const instructions = lines
    .filter((l) => /^\d+: \(/.test(l))
    .slice(-3)
    .map((l) => l.replace(/\s+;\s*/, ' ; ').replace(/\s+/g, ' '));
  return { program: progMatch?.[1] ?? null, message, instructions };
}

/**
 * Capacities the harness lowers before load. Walking a sockhash's keys (the only way to ask from
 * userspace whether a socket is in it: a lookup answers ENOSPC for a u32 value) visits every
 * bucket, 8192 for the ABI's max_entries, about 13 us per walk. The harness never holds more than
 * a case's few sockets, so 256 changes nothing observable and makes the walk cheap.
 */
export const HARNESS_MAX_ENTRIES: Partial<Record<MapName, number>> = { km_socket: 256 };

/**
 * The same for the hash maps outside the ABI (HASH, PERCPU_HASH: the kinds whose walk visits every
 * bucket and whose capacity means nothing else) that are emptied before every case (kf_reset_maps
 * walks them each time: km_auth_res's 8192 buckets cost 7.7 us a case, 256 cost 2.2). A case makes
 * a few dozen connections at most, so a program would have to write more than 256 entries in one
 * case to see a difference (the VM keeps the object's capacity).
 */
export const RESET_HASH_MAX_ENTRIES = 256;
const BUCKETED_HASH = new Set([1, 5]);

/** The capacity the harness loads map `m` with, if it lowers it. */
function harnessMaxEntries(m: { readonly name: string; readonly ptr: bigint }): number | undefined {
  const max = HARNESS_MAX_ENTRIES[m.name as MapName];
  if (max !== undefined) return max;
  if (MAP_BY_NAME.has(m.name as MapName) || !BUCKETED_HASH.has(libbpf.mapType(m.ptr))) return undefined;
  return libbpf.mapMaxEntries(m.ptr) > RESET_HASH_MAX_ENTRIES ? RESET_HASH_MAX_ENTRIES : undefined;
}

interface OpenObject {
  readonly role: keyof ObjectPaths;
  readonly path: string;
  readonly handle: bigint;
}

function programsOf(obj: bigint): string[] {
  const out: string[] = [];
  for (let p = libbpf.nextProgram(obj, null); p; p = libbpf.nextProgram(obj, p)) out.push(libbpf.programName(p));
  return out;
}

/** One-line ABI check of a map before load. */
function checkMapAbi(o: OpenObject, name: MapName, ptr: bigint): void {
  const abi = MAP_BY_NAME.get(name)!;
  checkMapShape(`map ${name} in ${basename(o.path)}`, 2, { ...abi, type: BPF_MAP_TYPE[abi.type] }, mapShape(ptr));
}

/** A map's type and key and value sizes as libbpf opened it. */
export function mapShape(ptr: bigint): MapShape {
  return { type: libbpf.mapType(ptr), keySize: libbpf.mapKeySize(ptr), valueSize: libbpf.mapValueSize(ptr), maxEntries: libbpf.mapMaxEntries(ptr), flags: libbpf.mapFlags(ptr) };
}

export function loadError(o: Pick<OpenObject, 'path'>, rc: number, log: string): KmeshCheckError {
  if (-rc === E.EPERM) return new KmeshCheckError('privileges', `loading ${basename(o.path)}: bpf() says EPERM: ${NEEDS_ROOT}`);
  // The verifier gives up with EAGAIN when signals keep arriving, e.g. a profiler's sampling of the
  // worker (KMESH_CHECK_WORKER_NODE_ARGS=--cpu-prof): its log then ends at an arbitrary instruction.
  if (-rc === E.EAGAIN) {
    return new KmeshCheckError('load', `loading ${o.path} was interrupted (EAGAIN): the verifier stops when the process receives signals; retry, or profile with --cpu-prof-interval=20000`);
  }
  // The verifier gives up on a program it cannot finish: its log, cut at libbpf's buffer, ends mid-state.
  if (-rc === E.E2BIG) {
    const prog = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(log)?.[1] ?? '?';
    return new KmeshCheckError(
      'verifier',
      `verifier rejected program '${prog}' in ${o.path}: too complex to verify (E2BIG: the verifier reached its limit of 1,000,000 instructions processed, or of states)`,
    );
  }
  const v = summariseVerifierLog(log);
  if (v) {
    const at = v.instructions.length ? ` (last instructions: ${v.instructions.join(' | ')})` : '';
    return new KmeshCheckError('verifier', `verifier rejected program '${v.program ?? '?'}' in ${o.path}: ${v.message}${at}`);
  }
  return new KmeshCheckError('load', `loading ${o.path} failed (${errnoName(rc)}): ${lastLines(log, 3) || 'no libbpf log'}`);
}

/**
 * Opens, checks, loads and attaches. On any error everything created so far is released.
 * `cgroupFd` is an open fd of the cgroup directory to attach to.
 */
export function loadDataPath(paths: ObjectPaths, cgroupFd: number): LoadedDataPath {
  captureLibbpfLog();
  const objects: OpenObject[] = [];
  const links: number[] = [];
  let skMsgAttached: { prog: number; map: number } | null = null;
  const release = () => {
    for (const l of links.splice(0)) closeSync(l);
    if (skMsgAttached) libbpf.progDetach2(skMsgAttached.prog, skMsgAttached.map, ATTACH.skMsgVerdict);
    skMsgAttached = null;
    for (const o of objects.splice(0)) libbpf.objectClose(o.handle);
  };
  try {
    const roles: Array<keyof ObjectPaths> = ['connect', 'sockops', 'sendmsg'];
    for (const role of roles) checkElf(role, paths[role]);
    for (const role of roles) {
      takeLibbpfLog();
      const handle = libbpf.objectOpenFile(paths[role], null);
      if (!handle) {
        throw new KmeshCheckError('load', `libbpf cannot open ${role} object ${paths[role]}: ${lastLines(takeLibbpfLog(), 2) || 'no libbpf log'}`);
      }
      objects.push({ role, path: paths[role], handle });
    }

    // Content and ABI checks, all before any load.
    const defined = new Set<string>();
    for (const o of objects) {
      for (const role of PROGRAMS_OF(o.role)) {
        if (!libbpf.findProgram(o.handle, PROGRAMS[role])) {
          const have = programsOf(o.handle);
          throw new KmeshCheckError('object-content', `${o.role} object ${o.path} has no program '${PROGRAMS[role]}' (it has: ${have.join(', ') || 'none'})`);
        }
      }
      for (const m of mapsOf(o.handle)) {
        // Section 7's maps too, where an object defines them: its report check would refuse them later.
        checkReportMap(`map ${m.name} in ${basename(o.path)}`, m.name, mapShape(m.ptr));
        if (!MAP_BY_NAME.has(m.name as MapName)) continue;
        checkMapAbi(o, m.name as MapName, m.ptr);
        defined.add(m.name);
      }
    }
    for (const m of MAPS) {
      if (!defined.has(m.name))
        throw new KmeshCheckError('object-content', `no object defines map ${m.name}: the three objects ${roles.map((r) => basename(paths[r])).join(', ')} must define every ABI map`);
    }
    const connect = objects[0]!;
    for (const name of ['km_cgr_tailcall', 'km_cgr_tail6'] as const) {
      if (!libbpf.findMap(connect.handle, name)) throw new KmeshCheckError('object-content', `connect object ${connect.path} has no map ${name} (its tail-call array)`);
    }

    // Load, sharing every ABI map by name with the objects loaded before.
    const shared = new Map<MapName, number>();
    for (const o of objects) {
      for (const m of mapsOf(o.handle)) {
        const max = harnessMaxEntries(m);
        if (max !== undefined) libbpf.mapSetMaxEntries(m.ptr, max);
      }
      for (const m of mapsOf(o.handle)) {
        const fd = shared.get(m.name as MapName);
        if (fd === undefined) continue;
        const rc = libbpf.mapReuseFd(m.ptr, fd);
        if (rc < 0) throw new KmeshCheckError('load', `cannot share map ${m.name} with ${basename(o.path)} (${errnoName(rc)})`);
      }
      takeLibbpfLog();
      const rc = libbpf.objectLoad(o.handle);
      if (rc < 0) throw loadError(o, rc, takeLibbpfLog());
      for (const m of mapsOf(o.handle)) {
        if (MAP_BY_NAME.has(m.name as MapName) && !shared.has(m.name as MapName)) shared.set(m.name as MapName, libbpf.mapFd(m.ptr));
      }
    }

    const progFd = (o: OpenObject, role: ProgramRole) => libbpf.programFd(libbpf.findProgram(o.handle, PROGRAMS[role])!);
    const progs: Record<ProgramRole, number> = {
      connect4: progFd(objects[0]!, 'connect4'),
      connect6: progFd(objects[0]!, 'connect6'),
      sockops: progFd(objects[1]!, 'sockops'),
      sendmsg: progFd(objects[2]!, 'sendmsg'),
    };

    // Tail-call slots as production fills them: each connect program calls itself.
    const slot = (map: MapName, index: number, prog: number) => {
      const key = new Uint8Array(new Uint32Array([index]).buffer);
      const value = new Uint8Array(new Uint32Array([prog]).buffer);
      const rc = libbpf.mapUpdate(shared.get(map)!, key, value, 0);
      if (rc < 0) throw new KmeshCheckError('attach', `cannot put ${map}[${index}] (${errnoName(rc)}): the program's attach type must match the array's owner`);
    };
    slot('km_cgr_tailcall', 0, progs.connect4);
    slot('km_cgr_tail6', 1, progs.connect6);

    const sockhash = shared.get('km_socket')!;
    let rc = libbpf.progAttach(progs.sendmsg, sockhash, ATTACH.skMsgVerdict, 0);
    if (rc < 0) throw new KmeshCheckError('attach', `cannot attach ${PROGRAMS.sendmsg} to km_socket as msg_verdict (${errnoName(rc)})`);
    skMsgAttached = { prog: progs.sendmsg, map: sockhash };

    for (const [role, type] of [
      ['connect4', ATTACH.inet4Connect],
      ['connect6', ATTACH.inet6Connect],
      ['sockops', ATTACH.sockOps],
    ] as const) {
      rc = libbpf.linkCreate(progs[role], cgroupFd, type, null);
      if (rc < 0) {
        if (-rc === E.EPERM) throw new KmeshCheckError('privileges', `attaching ${PROGRAMS[role]} to the cgroup: EPERM: ${NEEDS_ROOT}`);
        throw new KmeshCheckError('attach', `cannot attach ${PROGRAMS[role]} to the cgroup (${errnoName(rc)}): is the cgroup on a cgroup2 mount?`);
      }
      links.push(rc);
    }

    const dnsHooks = attachDnsHooks(
      objects.map((o) => o.handle),
      cgroupFd,
      links,
    );

    return { maps: shared, resettable: resettableMaps(objects.map((o) => o.handle)), progs, links: [...links], dnsHooks, setGlobal: globalSetter(objects), close: release };
  } catch (e) {
    release();
    throw e;
  }
}
