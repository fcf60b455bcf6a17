// The C shim through which the worker makes its socket operations (bpf/user/fastpath.c,
// setup-ops.c for map writes and enrolment, settle.c for bounded waits on loopback):
// one koffi call per socket operation, one per map diff, one per run of whole cases, instead of
// one per syscall. Built lazily with gcc into build/shim/libkmeshfast.so (again only when the
// source is newer); the kernel executor does not start without it and says why. Beside it, the
// map writer (bpf/user/map-writer.bpf.c, built with clang into build/shim/), through which the
// shim makes a batch of map writes in one program run; without it they go by syscalls.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { machine } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { KmeshCheckError } from '../../shared/errors.js';
import { packageRoot } from './paths.js';
import { errnoName } from './libc.js';
import { captureLibbpfLog, takeLibbpfLog } from './libbpf.js';
import type { ResetMap } from './loader.js';

/** Offsets in the connect/observe output (mirrors the enum in fastpath.c). */
export const OUT = {
  rc: 0,
  err: 4,
  connected: 8,
  server: 12,
  inSockhash: 16,
  storageRc: 20,
  others: 24,
  deferred: 28,
  peer: 32,
  local: 32 + 128,
  storage: 32 + 256,
  other: 32 + 256 + 256,
  otherStride: 4 + 128,
} as const;

export const KF_TCP = 1;
export const KF_INET6 = 2;
export const KF_ACCEPT = 4;
export const KF_DEFER = 8;
/** bpf/user/shim.h KF_ABI: bumped whenever a layout here or in whole-run.c changes. */
const KF_ABI = 7;

/** Opcodes of a kf_run program (mirrors the enum in whole-run.c; whole-cases.ts writes them). */
export const PROG = { mapOps: 1, socket: 2, connect: 3, close: 4, end: 5, enrol: 6, send: 7, apply: 8, manage: 9, continue: 10 } as const;

/** kf_run's status words and the values of its first (mirrors whole-run.c). */
export const RUN_STATUS = {
  words: 5,
  /** [0] how the run ended, [1] the case it stopped in, [2] and [3] details, [4] bytes of stream records (kf_streams). */
  code: 0,
  caseIndex: 1,
  detail: 2,
  rc: 3,
  streamBytes: 4,
  ok: 0,
  map: 1,
  socket: 2,
  storage: 3,
  bug: 4,
  control: 5,
  reset: 6,
  /** km_manage could not be emptied (detail 0) or written (detail 1). */
  manage: 7,
} as const;

/** The error of a map outside the ABI that could not be put back before a case. */
export function resetError(rc: number): KmeshCheckError {
  return new KmeshCheckError('worker', `putting a map outside the ABI back before a case failed (${errnoName(rc)})`);
}

/** Registers `maps` with the shim (kf_set_resets), to be put back before every case; throws when it cannot. */
export function registerResets(fast: FastPath, maps: readonly ResetMap[]): void {
  const spec = new Int32Array(maps.flatMap((m) => [m.fd, m.hash ? 1 : 0, m.keySize, m.valueSize, m.maxEntries]));
  const rc = fast.setResets(spec, maps.length);
  if (rc < 0) throw new KmeshCheckError('load', `cannot register the maps outside the ABI (${maps.map((m) => m.name).join(', ')}) to be put back before each case (${errnoName(rc)})`);
}

/** kf_reset_maps, or its error. */
export function resetMaps(fast: FastPath): void {
  const rc = fast.resetMaps();
  if (rc < 0) throw resetError(rc);
}

export interface FastPath {
  readonly outSize: number;
  init(sockhashFd: number, tupleSize: number, storageFd: number, storageSize: number): number;
  setListener(port: number, fd: number): void;
  socket(domain: number, type: number, sndTimeoutUs: number, err: Int32Array): number;
  connect(fd: number, addr: Uint8Array, len: number, flags: number, out: Uint8Array): void;
  observe(fd: number, flags: number, out: Uint8Array): void;
  close(server: number, fd: number, tcp: number): void;
  mapOps(buf: Uint8Array, count: number, rc: Int32Array): number;
  /** One enrolment control connect; 0, or the failed stage with its errno in err[0]. */
  control(domain: number, local: Uint8Array, localLen: number, dest: Uint8Array, destLen: number, err: Int32Array): number;
  /** Runs a program of whole cases; returns the observation bytes written to `out`. */
  run(prog: Uint8Array, len: number, out: Uint8Array, outLen: number, status: Int32Array): number;
  /**
   * Registers the maps outside the ABI to put back before every case (five int32 each: fd, 1
   * hash-like or 0 array, key size, value size, max entries); arrays are snapshotted now. 0 or a
   * negative errno.
   */
  setResets(spec: Int32Array, count: number): number;
  /** Puts the registered maps back as they were registered (kf_run does so before each case). 0 or a negative errno. */
  resetMaps(): number;
  /** Deletes a hash map's entries (keys of `keySize` bytes), whatever wrote them; 0 or the first failed delete's negative errno. */
  emptyMap(fd: number, keySize: number): number;
  /** Copies the last run's stream records (status[RUN_STATUS.streamBytes] bytes) to `dst`. */
  streams(dst: Uint8Array, len: number): void;
  /**
   * poll() on `n` pollfds for up to `maxMs`, ending early (0) once no packet is in flight in the
   * namespace: for waits on what loopback should already have delivered.
   */
  settle(fds: Uint8Array, n: number, maxMs: number): number;
  /** Loads the map writer program from its object (kf_writer_open); 0 or a negative errno. */
  writerOpen(path: string): number;
  /** Registers the maps the map writer may write (kf_writer_maps): how many it took, or a negative errno. */
  writerMaps(fds: Int32Array, count: number): number;
  /** Runs of the map writer program so far (kf_writer_runs). */
  writerRuns(): number;
  /** Tries the loaded map writer on a map of its own (kf_writer_check); 0 or a negative errno. */
  writerCheck(): number;
}

/** The shim's sources: the socket operations, whole cases, a case's set-up (map writes, enrolment), bounded waits, and what they share. */
const SHIM_SOURCES = ['bpf/user/fastpath.c', 'bpf/user/whole-run.c', 'bpf/user/setup-ops.c', 'bpf/user/settle.c', 'bpf/user/map-writer.c', 'bpf/user/shim.h', 'bpf/user/map-writer.h'];
/** The map writer program's sources. */
const WRITER_SOURCES = ['bpf/user/map-writer.bpf.c', 'bpf/user/map-writer.h'];

/** Whether `out` exists and is newer than every one of `srcs`. */
function upToDate(out: string, srcs: readonly string[]): boolean {
  return existsSync(out) && srcs.every((s) => existsSync(s) && statSync(out).mtimeMs >= statSync(s).mtimeMs);
}

/** Runs a compiler into `out` through a temporary file (a concurrent build never loads half of one); `what` names it in errors. */
function compile(compiler: string, args: readonly string[], out: string, what: string): void {
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync(compiler, [...args, '-o', tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { code?: string; stderr?: Buffer };
    if (err.code === 'ENOENT') throw new Error(`${compiler} is missing (apt-get install ${compiler})`, { cause: e });
    throw new Error(`compiling ${what} failed: ${(err.stderr?.toString() ?? '').trim().split('\n')[0]} (is libbpf-dev installed?)`, { cause: e });
  }
  renameSync(tmp, out);
}

/** Compiles the shim into build/shim/ unless it is newer than its sources; returns its path. */
export function buildShim(root = packageRoot()): string {
  const srcs = SHIM_SOURCES.map((s) => join(root, s));
  const out = join(root, 'build/shim/libkmeshfast.so');
  if (upToDate(out, srcs)) return out;
  mkdirSync(join(root, 'build/shim'), { recursive: true });
  compile('gcc', ['-O2', '-Wall', '-shared', '-fPIC', ...srcs.filter((s) => s.endsWith('.c')), '-lbpf'], out, srcs[0]!);
  return out;
}

/** Compiles the map writer program into build/shim/ unless it is newer than its sources; returns its path. */
export function buildMapWriter(root = packageRoot()): string {
  const srcs = WRITER_SOURCES.map((s) => join(root, s));
  const out = join(root, 'build/shim/map-writer.bpf.o');
  if (upToDate(out, srcs)) return out;
  mkdirSync(join(root, 'build/shim'), { recursive: true });
  compile('clang', ['-O2', '-g', '-target', 'bpf', '-mcpu=v3', '-Wall', '-Werror', `-I/usr/include/${machine()}-linux-gnu`, '-I', join(root, 'bpf/user'), '-c', srcs[0]!], out, srcs[0]!);
  return out;
}

let loaded: { fast: FastPath | null; why: string | null } | null = null;

/** The shim, built and loaded on first use; null (with the reason in `fastPathUnavailable`) when it cannot be. */
export function fastPath(): FastPath | null {
  if (loaded) return loaded.fast;
  try {
    const lib = koffi.load(buildShim());
    const outSize = (lib.func('int kf_out_size(void)') as () => number)();
    const fast: FastPath = {
      outSize,
      init: lib.func('int kf_init(int sockhash, int tuple, int storage, int ssize)') as FastPath['init'],
      setListener: lib.func('void kf_set_listener(int port, int fd)') as FastPath['setListener'],
      socket: lib.func('int kf_socket(int domain, int type, int us, void *err)') as FastPath['socket'],
      connect: lib.func('void kf_connect(int fd, void *addr, uint32_t len, int flags, void *out)') as FastPath['connect'],
      observe: lib.func('void kf_observe(int fd, int flags, void *out)') as FastPath['observe'],
      close: lib.func('void kf_close(int server, int fd, int tcp)') as FastPath['close'],
      mapOps: lib.func('int kf_map_ops(void *buf, int count, void *rc)') as FastPath['mapOps'],
      control: lib.func('int kf_control(int domain, void *local, uint32_t llen, void *dest, uint32_t dlen, void *err)') as FastPath['control'],
      run: lib.func('int kf_run(void *prog, int len, void *out, int out_len, void *status)') as FastPath['run'],
      setResets: lib.func('int kf_set_resets(void *spec, int count)') as FastPath['setResets'],
      resetMaps: lib.func('int kf_reset_maps(void)') as FastPath['resetMaps'],
      emptyMap: lib.func('int kf_empty_map(int fd, int klen)') as FastPath['emptyMap'],
      settle: lib.func('int kf_settle(void *fds, int n, int max_ms)') as FastPath['settle'],
      streams: lib.func('void kf_streams(void *dst, int len)') as FastPath['streams'],
      writerOpen: lib.func('int kf_writer_open(const char *path)') as FastPath['writerOpen'],
      writerMaps: lib.func('int kf_writer_maps(void *fds, int count)') as FastPath['writerMaps'],
      writerRuns: lib.func('long kf_writer_runs(void)') as FastPath['writerRuns'],
      writerCheck: lib.func('int kf_writer_check(void)') as FastPath['writerCheck'],
    };
    loaded = { fast, why: null };
  } catch (e) {
    const why = (e as Error).message.split('\n')[0] ?? 'unknown error';
    // A library built from other sources than these (copied with a newer time): as an ABI mismatch.
    loaded = { fast: null, why: /^Cannot find function/.test(why) ? `${why}: the built shim is stale, delete build/shim/ and retry` : why };
  }
  return loaded.fast;
}

/** Why the shim is not in use (null when it is, or when fastPath() was not called yet). */
export function fastPathUnavailable(): string | null {
  return loaded?.why ?? null;
}

/**
 * Loads the map writer into the shim: 'program' when the shim's map writes go through it, else
 * why they go by syscalls (no clang, a kernel without syscall programs or bpf_sys_bpf, no
 * CAP_PERFMON for the pointers it hands the kernel).
 */
export function openMapWriter(fast: FastPath): string {
  let path: string;
  try {
    path = buildMapWriter();
  } catch (e) {
    return `unavailable: ${(e as Error).message}`;
  }
  // libbpf's log (the verifier's, say) is kept, not printed: its last line says why.
  captureLibbpfLog();
  takeLibbpfLog();
  const rc = fast.writerOpen(path);
  const why = takeLibbpfLog().trim().split('\n').at(-1);
  if (rc !== 0) return `unavailable: loading ${path} failed (${errnoName(rc)}${why ? `: ${why}` : ''})`;
  // The commands it needs of bpf_sys_bpf, tried on this kernel (older ones take fewer).
  const checked = fast.writerCheck();
  return checked === 0 ? 'program' : `unavailable: its trial writes failed on this kernel (${errnoName(checked)})`;
}

export function checkAbi(rc: number): void {
  if (rc !== KF_ABI) throw new KmeshCheckError('build', `the fast-path shim answers ABI ${rc}, expected ${KF_ABI}: delete build/shim/ and retry`);
}
