// libbpf as an oracle for the linker: with a gen_loader attached, bpf_object__load relocates
// and "loads" every program into a loader blob instead of calling bpf(), so it needs no
// privileges, and leaves the final instructions readable through bpf_program__insns (map
// references as PSEUDO_MAP_IDX / PSEUDO_MAP_IDX_VALUE with map indices).

import koffi from 'koffi';

export interface OracleProgram {
  readonly name: string;
  readonly section: string;
  readonly insns: Uint8Array;
}

export interface OracleObject {
  readonly maps: readonly string[];
  readonly programs: readonly OracleProgram[];
}

interface Libbpf {
  open(path: string): bigint | null;
  genLoader(obj: bigint, opts: object): number;
  load(obj: bigint): number;
  nextProgram(obj: bigint, prev: bigint | null): bigint | null;
  nextMap(obj: bigint, prev: bigint | null): bigint | null;
  programName(p: bigint): string;
  sectionName(p: bigint): string;
  insns(p: bigint): bigint | null;
  insnCount(p: bigint): number | bigint;
  mapName(m: bigint): string;
  close(obj: bigint): void;
}

let cached: Libbpf | null = null;

function libbpf(): Libbpf {
  if (cached) return cached;
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libbpf.so.1');
  } catch (e) {
    throw new Error(`cannot load libbpf.so.1 (${(e as Error).message}); install libbpf (apt-get install libbpf1)`, { cause: e });
  }
  koffi.struct('kc_gen_loader_opts', { sz: 'size_t', data: 'void *', insns: 'void *', data_sz: 'uint32_t', insns_sz: 'uint32_t' });
  cached = {
    open: lib.func('void *bpf_object__open(const char *path)') as Libbpf['open'],
    genLoader: lib.func('int bpf_object__gen_loader(void *obj, kc_gen_loader_opts *opts)') as Libbpf['genLoader'],
    load: lib.func('int bpf_object__load(void *obj)') as Libbpf['load'],
    nextProgram: lib.func('void *bpf_object__next_program(void *obj, void *prev)') as Libbpf['nextProgram'],
    nextMap: lib.func('void *bpf_object__next_map(void *obj, void *prev)') as Libbpf['nextMap'],
    programName: lib.func('const char *bpf_program__name(void *p)') as Libbpf['programName'],
    sectionName: lib.func('const char *bpf_program__section_name(void *p)') as Libbpf['sectionName'],
    insns: lib.func('void *bpf_program__insns(void *p)') as Libbpf['insns'],
    insnCount: lib.func('size_t bpf_program__insn_cnt(void *p)') as Libbpf['insnCount'],
    mapName: lib.func('const char *bpf_map__name(void *m)') as Libbpf['mapName'],
    close: lib.func('void bpf_object__close(void *obj)') as Libbpf['close'],
  };
  return cached;
}

/** Opens `path` with libbpf, links it through the gen_loader, and returns what libbpf produced. */
export function libbpfLink(path: string): OracleObject {
  const l = libbpf();
  const obj = l.open(path);
  if (!obj) throw new Error(`libbpf could not open ${path}`);
  try {
    const g = l.genLoader(obj, { sz: 32, data: null, insns: null, data_sz: 0, insns_sz: 0 });
    if (g !== 0) throw new Error(`bpf_object__gen_loader(${path}) failed: ${g}`);
    const r = l.load(obj);
    if (r !== 0) throw new Error(`libbpf could not link ${path} (bpf_object__load: ${r})`);
    const maps: string[] = [];
    for (let m = l.nextMap(obj, null); m; m = l.nextMap(obj, m)) maps.push(l.mapName(m));
    const programs: OracleProgram[] = [];
    for (let p = l.nextProgram(obj, null); p; p = l.nextProgram(obj, p)) {
      const n = Number(l.insnCount(p));
      const ptr = l.insns(p);
      const bytes = ptr && n > 0 ? Uint8Array.from(koffi.decode(ptr, 'uint8_t', n * 8) as number[]) : new Uint8Array(0);
      programs.push({ name: l.programName(p), section: l.sectionName(p), insns: bytes });
    }
    return { maps, programs };
  } finally {
    l.close(obj);
  }
}
