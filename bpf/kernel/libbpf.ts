// libbpf.so.1 through koffi. Object handles and pointers are BigInt (koffi 3); functions that
// return int give a negative errno on failure (libbpf 1.x), pointer functions give null and set
// errno. libbpf's log goes through one printer that callers can capture (the verifier log).

import koffi, { type LibraryHandle } from 'koffi';
import { libc } from './libc.js';
import { KmeshCheckError } from '../../shared/errors.js';

type Ptr = bigint | null;

function loadLibbpf(): LibraryHandle {
  try {
    return koffi.load('libbpf.so.1');
  } catch (e) {
    throw new KmeshCheckError('environment', `cannot load libbpf.so.1 (${(e as Error).message.split('\n')[0]}): install it with apt-get install libbpf1`);
  }
}

const lib = loadLibbpf();

export const libbpf = {
  objectOpenFile: lib.func('void *bpf_object__open_file(const char *path, void *opts)') as (path: string, opts: Ptr) => Ptr,
  objectLoad: lib.func('int bpf_object__load(void *obj)') as (obj: bigint) => number,
  objectClose: lib.func('void bpf_object__close(void *obj)') as (obj: bigint) => void,
  findProgram: lib.func('void *bpf_object__find_program_by_name(void *obj, const char *name)') as (obj: bigint, name: string) => Ptr,
  findMap: lib.func('void *bpf_object__find_map_by_name(void *obj, const char *name)') as (obj: bigint, name: string) => Ptr,
  nextMap: lib.func('void *bpf_object__next_map(void *obj, void *prev)') as (obj: bigint, prev: Ptr) => Ptr,
  nextProgram: lib.func('void *bpf_object__next_program(void *obj, void *prev)') as (obj: bigint, prev: Ptr) => Ptr,
  mapName: lib.func('const char *bpf_map__name(void *map)') as (map: bigint) => string,
  mapType: lib.func('int bpf_map__type(void *map)') as (map: bigint) => number,
  mapKeySize: lib.func('uint32_t bpf_map__key_size(void *map)') as (map: bigint) => number,
  mapValueSize: lib.func('uint32_t bpf_map__value_size(void *map)') as (map: bigint) => number,
  mapMaxEntries: lib.func('uint32_t bpf_map__max_entries(void *map)') as (map: bigint) => number,
  mapFlags: lib.func('uint32_t bpf_map__map_flags(void *map)') as (map: bigint) => number,
  mapSetMaxEntries: lib.func('int bpf_map__set_max_entries(void *map, uint32_t max)') as (map: bigint, max: number) => number,
  mapReuseFd: lib.func('int bpf_map__reuse_fd(void *map, int fd)') as (map: bigint, fd: number) => number,
  mapFd: lib.func('int bpf_map__fd(void *map)') as (map: bigint) => number,
  mapSetPinPath: lib.func('int bpf_map__set_pin_path(void *map, const char *path)') as (map: bigint, path: string | null) => number,
  possibleCpus: lib.func('int libbpf_num_possible_cpus(void)') as () => number,
  programFd: lib.func('int bpf_program__fd(void *prog)') as (prog: bigint) => number,
  programName: lib.func('const char *bpf_program__name(void *prog)') as (prog: bigint) => string,
  mapUpdate: lib.func('int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)') as (fd: number, key: Uint8Array, value: Uint8Array, flags: number) => number,
  mapLookup: lib.func('int bpf_map_lookup_elem(int fd, void *key, void *value)') as (fd: number, key: Uint8Array, value: Uint8Array) => number,
  mapNextKey: lib.func('int bpf_map_get_next_key(int fd, void *key, void *next)') as (fd: number, key: Uint8Array | null, next: Uint8Array) => number,
  mapDelete: lib.func('int bpf_map_delete_elem(int fd, void *key)') as (fd: number, key: Uint8Array) => number,
  progAttach: lib.func('int bpf_prog_attach(int prog_fd, int target_fd, int type, unsigned int flags)') as (prog: number, target: number, type: number, flags: number) => number,
  progDetach2: lib.func('int bpf_prog_detach2(int prog_fd, int target_fd, int type)') as (prog: number, target: number, type: number) => number,
  linkCreate: lib.func('int bpf_link_create(int prog_fd, int target_fd, int type, void *opts)') as (prog: number, target: number, type: number, opts: Ptr) => number,
  progTestRun: lib.func('int bpf_prog_test_run_opts(int prog_fd, void *opts)') as (prog: number, opts: Uint8Array) => number,
  mapCreate: lib.func('int bpf_map_create(int type, const char *name, uint32_t key, uint32_t value, uint32_t max, void *opts)') as (
    type: number,
    name: string,
    key: number,
    value: number,
    max: number,
    opts: Ptr,
  ) => number,
  objGetInfoByFd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, void *len)') as (fd: number, info: Uint8Array, len: Uint32Array) => number,
  progGetFdById: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)') as (id: number) => number,
  linkGetFdById: lib.func('int bpf_link_get_fd_by_id(uint32_t id)') as (id: number) => number,
  setPrint: lib.func('void *libbpf_set_print(void *fn)') as (fn: Ptr) => Ptr,
};

/** An opened object's maps, in order: name and libbpf map pointer. */
export function mapsOf(obj: bigint): Array<{ name: string; ptr: bigint }> {
  const out: Array<{ name: string; ptr: bigint }> = [];
  for (let m = libbpf.nextMap(obj, null); m; m = libbpf.nextMap(obj, m)) out.push({ name: libbpf.mapName(m), ptr: m });
  return out;
}

/** enum bpf_attach_type values used here. */
export const ATTACH = {
  sockOps: 3,
  skMsgVerdict: 7,
  inet4Connect: 10,
  inet6Connect: 11,
} as const;

// ---- log capture ------------------------------------------------------------------------------

const PrintFn = koffi.proto('int kmesh_libbpf_print(int level, void *fmt, void *args)');
const printBuf = new Uint8Array(64 * 1024);
let captured: string[] = [];
let registered: bigint | null = null;

/**
 * Routes libbpf's log into memory (formatted with vsnprintf, since the callback gets a va_list).
 * Warn and info lines are kept (the verifier log arrives at warn level); debug lines are dropped.
 */
export function captureLibbpfLog(): void {
  if (registered !== null) return;
  registered = koffi.register((level: number, fmt: bigint, args: bigint): number => {
    const n = libc.vsnprintf(printBuf, printBuf.length, fmt, args);
    const text = Buffer.from(printBuf.buffer, 0, Math.max(0, Math.min(n, printBuf.length - 1))).toString('utf8');
    if (level <= 1) captured.push(text);
    return 0;
  }, koffi.pointer(PrintFn)) as bigint;
  libbpf.setPrint(registered);
}

/** Returns what libbpf printed since the last call and forgets it. */
export function takeLibbpfLog(): string {
  const s = captured.join('');
  captured = [];
  return s;
}
