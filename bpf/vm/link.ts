// Links a BPF object the way libbpf 1.x does before BPF_PROG_LOAD, so that the VM executes the
// very instructions the kernel would get:
//  - programs: every STT_FUNC symbol of an executable section other than .text (several can
//    share a section); functions in .text are subprograms;
//  - bpf-to-bpf calls: a used subprogram is appended after the main program at its first use,
//    depth first (a subprogram's own callees are appended before the caller continues), and each
//    call's imm is rewritten to the new relative position;
//  - maps: ld_imm64 against a `.maps` variable becomes src_reg PSEUDO_MAP_IDX (5), imm = map
//    index; against .data/.rodata/.bss becomes PSEUDO_MAP_IDX_VALUE (6), imm = map index,
//    next imm = offset. Map indices: BTF-defined maps in DATASEC order, then one internal
//    array map per non-empty data section in section order.
// libbpf's own gen_loader output is the oracle for this (test/vm/link.test.ts).
// Unsupported features (CO-RE, kfuncs, externs, map-in-map initialisers) are refused by name.

import {
  parseElf,
  loadElf,
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  SHF_EXECINSTR,
  SHT_PROGBITS,
  SHT_NOBITS,
  STT_FUNC,
  STT_OBJECT,
  STT_SECTION,
  STB_LOCAL,
  SHN_UNDEF,
  SHN_LORESERVE,
  R_BPF_64_64,
  R_BPF_64_32,
} from './elf.js';
import { parseBtf, parseBtfExt, btfMapDefinitions, type Btf, type BtfExt, type LineInfo } from './btf.js';

export const BPF_PSEUDO_MAP_FD = 1;
export const BPF_PSEUDO_MAP_VALUE = 2;
export const BPF_PSEUDO_CALL = 1;
export const BPF_PSEUDO_KFUNC_CALL = 2;
export const BPF_PSEUDO_FUNC = 4;
export const BPF_PSEUDO_MAP_IDX = 5;
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;

export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERF_EVENT_ARRAY: 4,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  SOCKMAP: 15,
  SOCKHASH: 18,
  SK_STORAGE: 24,
  RINGBUF: 27,
} as const;

export const BPF_F_NO_PREALLOC = 0x1;
export const BPF_F_RDONLY_PROG = 0x80;
export const BPF_F_MMAPABLE = 0x400;

export class LinkError extends Error {}

export interface MapDef {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  /** For global data: the section it stands for, its initial bytes, and whether programs may write it. */
  readonly internal: { readonly section: string; readonly initial: Uint8Array; readonly readonly: boolean } | null;
}

export interface LinkedProgram {
  readonly name: string;
  /** ELF section, e.g. "cgroup/connect4": decides the hook. */
  readonly section: string;
  readonly insnCount: number;
  /** Final instructions, 8 bytes each, as libbpf would hand them to BPF_PROG_LOAD. */
  readonly insns: Uint8Array;
  /** Per instruction: the function it came from (the program or an appended subprogram). */
  readonly funcOf: readonly string[];
  /** Per instruction: source line from BTF line info, or null when none precedes it. */
  readonly lineOf: readonly (LineInfo | null)[];
}

/** A named variable in global data (.data/.rodata/.bss), for reading results out of a VM. */
export interface GlobalVar {
  readonly name: string;
  readonly section: string;
  readonly offset: number;
  readonly size: number;
}

export interface LinkedObject {
  readonly path: string;
  readonly license: string;
  readonly maps: readonly MapDef[];
  readonly globals: readonly GlobalVar[];
  readonly programs: readonly LinkedProgram[];
  program(name: string): LinkedProgram;
}

interface Func {
  readonly name: string;
  readonly section: ElfSection;
  /** First instruction inside the section. */
  readonly start: number;
  readonly count: number;
  readonly isSub: boolean;
}

type Reloc =
  | { kind: 'call'; insn: number; target: number }
  | { kind: 'subprog-addr'; insn: number; target: number }
  | { kind: 'map'; insn: number; map: number }
  | { kind: 'data'; insn: number; map: number; symOffset: number };

function sectionLines(ext: BtfExt | null, section: ElfSection): (LineInfo | null)[] {
  const out: (LineInfo | null)[] = new Array<LineInfo | null>(section.size / 8).fill(null);
  const lines = ext?.lineInfo.get(section.name);
  if (!lines) return out;
  // Line 0 marks compiler-made code: such instructions keep the line before them.
  const sorted = lines.filter((l) => l.line !== 0).sort((a, b) => a.insn - b.insn);
  let j = 0;
  let cur: LineInfo | null = null;
  for (let i = 0; i < out.length; i++) {
    while (j < sorted.length && (sorted[j]?.insn ?? Infinity) <= i) cur = sorted[j++] ?? cur;
    out[i] = cur;
  }
  return out;
}

export function linkObject(source: string | { path: string; bytes: Uint8Array }): LinkedObject {
  const elf: ElfFile = typeof source === 'string' ? loadElf(source) : parseElf(source.bytes, source.path);
  const path = elf.path;
  const fail = (msg: string): never => {
    throw new LinkError(`${path}: ${msg}`);
  };

  const btfSec = elf.section('.BTF');
  const btf: Btf | null = btfSec ? parseBtf(btfSec.data) : null;
  const extSec = elf.section('.BTF.ext');
  const ext: BtfExt | null = btf && extSec ? parseBtfExt(extSec.data, btf) : null;

  if (elf.section('maps')) fail('legacy "maps" section is not supported; declare maps in SEC(".maps") with BTF');

  // ---- functions ---------------------------------------------------------------------------
  const text = elf.sections.find((s) => s.name === '.text' && s.type === SHT_PROGBITS && s.size > 0) ?? null;
  const funcs: Func[] = [];
  for (const sec of elf.sections) {
    if (sec.type !== SHT_PROGBITS || !(sec.flags & SHF_EXECINSTR) || sec.size === 0) continue;
    const syms = elf.symbols.filter((s) => s.shndx === sec.index && s.type === STT_FUNC);
    for (const s of syms) {
      if (s.value % 8 || s.size % 8 || s.value + s.size > sec.size) fail(`function ${s.name} in ${sec.name} is misaligned or out of its section`);
      const isSub = sec === text;
      if (!isSub && s.bind === STB_LOCAL) fail(`program ${s.name} in section ${sec.name} is static; programs must be global`);
      funcs.push({ name: s.name, section: sec, start: s.value / 8, count: s.size / 8, isSub });
    }
  }
  funcs.sort((a, b) => a.section.index - b.section.index || a.start - b.start);
  const funcAt = (sec: ElfSection, insn: number) => funcs.find((f) => f.section === sec && insn >= f.start && insn < f.start + f.count);

  // ---- maps ----------------------------------------------------------------------------------
  const maps: MapDef[] = [];
  const mapsSec = elf.section('.maps');
  const btfMaps = btf && mapsSec ? btfMapDefinitions(btf) : [];
  if (mapsSec && !btf) fail('.maps needs BTF; build with -g');
  const mapOffsets: number[] = [];
  for (const d of btfMaps) {
    // Clang leaves DATASEC offsets at 0 in objects; like libbpf, take them from the symbol table.
    const sym = elf.symbols.find((s) => s.name === d.name && s.shndx === mapsSec?.index);
    if (!sym) fail(`map ${d.name} has no symbol in .maps`);
    mapOffsets.push((sym as ElfSymbol).value);
    maps.push({ index: maps.length, name: d.name, type: d.type, keySize: d.keySize, valueSize: d.valueSize, maxEntries: d.maxEntries, flags: d.flags, internal: null });
  }
  const mapRelocs = mapsSec ? (elf.relocations.get(mapsSec.index) ?? []) : [];
  if (mapRelocs.length > 0) {
    // Relocations inside .maps are the initialisers of map-in-map and prog-array `.values`.
    const at = (mapRelocs[0] as { offset: number }).offset;
    let owner = -1;
    mapOffsets.forEach((o, i) => {
      if (o <= at && (owner < 0 || o > (mapOffsets[owner] as number))) owner = i;
    });
    fail(`map ${maps[owner]?.name ?? '?'} has a map-in-map or prog-array initialiser (.values), which is not supported`);
  }
  const dataMapOf = new Map<number, number>();
  for (const sec of elf.sections) {
    const isData = sec.type === SHT_PROGBITS && !(sec.flags & SHF_EXECINSTR) && (sec.name === '.data' || sec.name.startsWith('.data.'));
    const isRodata = sec.type === SHT_PROGBITS && !(sec.flags & SHF_EXECINSTR) && (sec.name === '.rodata' || sec.name.startsWith('.rodata.'));
    const isBss = sec.type === SHT_NOBITS && (sec.name === '.bss' || sec.name.startsWith('.bss.'));
    if (!(isData || isRodata || isBss) || sec.size === 0) continue;
    dataMapOf.set(sec.index, maps.length);
    maps.push({
      index: maps.length,
      name: sec.name,
      type: MapType.ARRAY,
      keySize: 4,
      valueSize: sec.size,
      maxEntries: 1,
      flags: isRodata ? BPF_F_RDONLY_PROG | BPF_F_MMAPABLE : BPF_F_MMAPABLE,
      internal: { section: sec.name, initial: sec.data.slice(), readonly: isRodata },
    });
  }

  // ---- relocations, per function -------------------------------------------------------------
  const relocsOf = new Map<Func, Reloc[]>();
  for (const f of funcs) relocsOf.set(f, []);
  for (const [secIndex, rels] of elf.relocations) {
    const sec = elf.sections[secIndex];
    if (!sec || sec.type !== SHT_PROGBITS || !(sec.flags & SHF_EXECINSTR)) continue;
    const view = new DataView(sec.data.buffer, sec.data.byteOffset, sec.data.byteLength);
    for (const r of rels) {
      if (r.offset % 8) fail(`relocation at ${sec.name}+${r.offset} is not on an instruction boundary`);
      const insnIdx = r.offset / 8;
      const f = funcAt(sec, insnIdx);
      if (!f) continue; // libbpf ignores relocations outside any function
      const sym: ElfSymbol | undefined = elf.symbols[r.symbol];
      if (!sym) fail(`relocation in ${sec.name} names symbol ${r.symbol}, which does not exist`);
      const s = sym as ElfSymbol;
      const code = view.getUint8(r.offset);
      const src = view.getUint8(r.offset + 1) >> 4;
      const imm = view.getInt32(r.offset + 4, true);
      const isCall = code === 0x85;
      const isLd64 = code === 0x18;
      const local = insnIdx - f.start;
      if (s.shndx === SHN_UNDEF && s.type !== STT_SECTION) {
        if (isCall) fail(`program ${f.name} calls kfunc ${s.name}, which is not supported`);
        fail(`program ${f.name} references extern ${s.name}, which is not supported`);
      }
      if (!isCall && !isLd64) fail(`program ${f.name}: relocation against ${s.name} on instruction ${local}, which is neither a call nor ld_imm64`);
      if (r.type !== R_BPF_64_64 && r.type !== R_BPF_64_32) fail(`program ${f.name}: relocation type ${r.type} is not supported`);
      if (isCall) {
        if (src !== BPF_PSEUDO_CALL) fail(`program ${f.name}: relocated call on instruction ${local} is not a bpf-to-bpf call`);
        if (!text || s.shndx !== text.index) fail(`program ${f.name}: call to ${s.name}, which is not in .text`);
        if (s.value % 8) fail(`program ${f.name}: call target ${s.name} is misaligned`);
        relocsOf.get(f)?.push({ kind: 'call', insn: local, target: s.value / 8 + imm + 1 });
        continue;
      }
      if (!s.shndx || s.shndx >= SHN_LORESERVE) fail(`program ${f.name}: relocation against ${s.name} in a special section`);
      if (text && s.shndx === text.index && (s.type === STT_FUNC || s.type === STT_SECTION)) {
        if (s.value % 8 || imm % 8) fail(`program ${f.name}: function address of ${s.name} is misaligned`);
        relocsOf.get(f)?.push({ kind: 'subprog-addr', insn: local, target: (s.value + imm) / 8 });
        continue;
      }
      if (mapsSec && s.shndx === mapsSec.index) {
        const mi = mapOffsets.indexOf(s.value);
        if (mi < 0) fail(`program ${f.name}: reference to ${s.name} in .maps matches no map definition`);
        relocsOf.get(f)?.push({ kind: 'map', insn: local, map: mi });
        continue;
      }
      const dm = dataMapOf.get(s.shndx);
      if (dm === undefined) {
        fail(`program ${f.name}: reference to ${s.name} in section ${elf.sections[s.shndx]?.name ?? s.shndx}, which is not a map or global data section`);
      }
      relocsOf.get(f)?.push({ kind: 'data', insn: local, map: dm as number, symOffset: s.value });
    }
  }

  if (ext) {
    for (const [secName, relos] of ext.coreRelos) {
      if (relos.length === 0) continue;
      const sec = elf.section(secName);
      const f = sec ? funcAt(sec, relos[0]?.insn ?? 0) : undefined;
      fail(`program ${f?.name ?? secName} uses CO-RE relocations (${relos.length} in ${secName}), which are not supported`);
    }
  }

  const license = (() => {
    const l = elf.section('license');
    if (!l) return '';
    const z = l.data.indexOf(0);
    return Buffer.from(l.data.subarray(0, z < 0 ? l.data.length : z)).toString('latin1');
  })();

  const linesBySection = new Map<ElfSection, (LineInfo | null)[]>();
  const linesOf = (sec: ElfSection) => {
    let l = linesBySection.get(sec);
    if (!l) {
      l = sectionLines(ext, sec);
      linesBySection.set(sec, l);
    }
    return l;
  };

  // ---- per main program ----------------------------------------------------------------------
  const programs: LinkedProgram[] = [];
  for (const main of funcs) {
    if (main.isSub) continue;
    const chunks: Uint8Array[] = [];
    let total = 0;
    const placed = new Map<Func, number>();
    const funcOf: string[] = [];
    const lineOf: (LineInfo | null)[] = [];
    const pending: { f: Func; at: number; r: Reloc & { kind: 'map' | 'data' } }[] = [];
    const append = (f: Func): number => {
      const at = total;
      placed.set(f, at);
      chunks.push(f.section.data.slice(f.start * 8, (f.start + f.count) * 8));
      total += f.count;
      const lines = linesOf(f.section);
      for (let i = 0; i < f.count; i++) {
        funcOf.push(f.name);
        lineOf.push(lines[f.start + i] ?? null);
      }
      return at;
    };
    const buffer = () => {
      if (chunks.length > 1) {
        const all = new Uint8Array(total * 8);
        let o = 0;
        for (const c of chunks) {
          all.set(c, o);
          o += c.length;
        }
        chunks.length = 0;
        chunks.push(all);
      }
      return chunks[0] as Uint8Array;
    };
    const relocateCalls = (f: Func) => {
      const rels = relocsOf.get(f) ?? [];
      const at = placed.get(f) as number;
      for (let i = 0; i < f.count; i++) {
        const view0 = new DataView(buffer().buffer);
        const off = (at + i) * 8;
        const code = view0.getUint8(off);
        const src = view0.getUint8(off + 1) >> 4;
        const isSubCall = code === 0x85 && src === BPF_PSEUDO_CALL;
        const rel = rels.find((r) => r.insn === i);
        const isFuncAddr = code === 0x18 && rel?.kind === 'subprog-addr';
        if (code === 0x18 && src === BPF_PSEUDO_FUNC && !isFuncAddr) fail(`program ${main.name}: function pointer on instruction ${i} of ${f.name} has no relocation`);
        if (!isSubCall && !isFuncAddr) continue;
        let targetIdx: number;
        if (rel && (rel.kind === 'call' || rel.kind === 'subprog-addr')) {
          targetIdx = rel.target;
        } else if (rel) {
          fail(`program ${f.name}: unexpected relocation on call instruction ${i}`);
          continue;
        } else {
          if (f.section !== text) fail(`program ${f.name}: call on instruction ${i} stays inside ${f.section.name}; subprograms must be in .text`);
          targetIdx = f.start + i + view0.getInt32(off + 4, true) + 1;
        }
        const sub = text ? funcAt(text, targetIdx) : undefined;
        if (!sub || !sub.isSub) fail(`program ${main.name}: call from ${f.name} to .text instruction ${targetIdx}, where no subprogram is`);
        const target = sub as Func;
        if (target.start !== targetIdx) fail(`program ${main.name}: call from ${f.name} lands inside subprogram ${target.name}`);
        if (!placed.has(target)) {
          append(target);
          relocateCalls(target);
        }
        const view = new DataView(buffer().buffer);
        if (isFuncAddr) view.setUint8(off + 1, (view.getUint8(off + 1) & 0x0f) | (BPF_PSEUDO_FUNC << 4));
        view.setInt32(off + 4, (placed.get(target) as number) - (at + i) - 1, true);
      }
      for (const r of rels) if (r.kind === 'map' || r.kind === 'data') pending.push({ f, at, r });
    };
    append(main);
    relocateCalls(main);
    const insns = buffer().slice();
    const view = new DataView(insns.buffer);
    for (const { at, r } of pending) {
      const off = (at + r.insn) * 8;
      const regs = view.getUint8(off + 1);
      if (r.kind === 'map') {
        view.setUint8(off + 1, (regs & 0x0f) | (BPF_PSEUDO_MAP_IDX << 4));
        view.setInt32(off + 4, r.map, true);
      } else {
        view.setInt32(off + 12, (view.getInt32(off + 4, true) + r.symOffset) | 0, true);
        view.setUint8(off + 1, (regs & 0x0f) | (BPF_PSEUDO_MAP_IDX_VALUE << 4));
        view.setInt32(off + 4, r.map, true);
      }
    }
    programs.push({ name: main.name, section: main.section.name, insnCount: total, insns, funcOf, lineOf });
  }

  const globals: GlobalVar[] = elf.symbols
    .filter((sym) => sym.type === STT_OBJECT && dataMapOf.has(sym.shndx))
    .map((sym) => ({ name: sym.name, section: elf.sections[sym.shndx]?.name ?? '', offset: sym.value, size: sym.size }));

  return {
    path,
    license,
    maps,
    globals,
    programs,
    program(name: string): LinkedProgram {
      const p = programs.find((q) => q.name === name);
      if (!p) throw new LinkError(`${path}: no program named ${name} (has: ${programs.map((q) => q.name).join(', ') || 'none'})`);
      return p;
    },
  };
}
