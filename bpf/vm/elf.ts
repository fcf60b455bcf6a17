// ELF64 little-endian reader for BPF relocatable objects: sections, symbols, REL relocations.
// Section bytes are copied out of the file buffer, because the linker patches them and
// Node's Buffer#slice/subarray would alias (and corrupt) the original.

import { readFileSync } from 'node:fs';

export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;

export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;

export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;

/** BPF relocation types (llvm's ELFRelocs/BPF.def). */
export const R_BPF_64_64 = 1;
export const R_BPF_64_ABS64 = 2;
export const R_BPF_64_ABS32 = 3;
export const R_BPF_64_NODYLD32 = 4;
export const R_BPF_64_32 = 10;

const EM_BPF = 247;

export class ElfError extends Error {}

export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly entsize: number;
  /** A private copy of the section's bytes (zeros for NOBITS). */
  readonly data: Uint8Array;
}

export interface ElfSymbol {
  readonly index: number;
  readonly name: string;
  readonly value: number;
  readonly size: number;
  readonly bind: number;
  readonly type: number;
  readonly visibility: number;
  readonly shndx: number;
}

export interface ElfRelocation {
  /** Byte offset inside the target section. */
  readonly offset: number;
  readonly symbol: number;
  readonly type: number;
}

export interface ElfFile {
  readonly path: string;
  readonly sections: readonly ElfSection[];
  readonly symbols: readonly ElfSymbol[];
  /** REL entries by the index of the section they patch. */
  readonly relocations: ReadonlyMap<number, readonly ElfRelocation[]>;
  section(name: string): ElfSection | undefined;
}

function u64(view: DataView, off: number, what: string, path: string): number {
  const v = view.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${path}: ${what} ${v} is out of range; the file is corrupt`);
  return Number(v);
}

function cString(bytes: Uint8Array, off: number): string {
  let end = off;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return Buffer.from(bytes.buffer, bytes.byteOffset + off, end - off).toString('latin1');
}

/** Parses an ELF64 LE BPF object. `path` only names the file in errors. */
export function parseElf(input: Uint8Array, path = '<memory>'): ElfFile {
  const bytes = new Uint8Array(input);
  const view = new DataView(bytes.buffer);
  if (bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ElfError(`${path}: not an ELF file; pass an object built with clang -O2 -g -target bpf`);
  }
  if (bytes[4] !== 2 || bytes[5] !== 1) {
    throw new ElfError(`${path}: not a 64-bit little-endian ELF; build with -target bpf (bpfel)`);
  }
  const machine = view.getUint16(18, true);
  if (machine !== EM_BPF) throw new ElfError(`${path}: ELF machine ${machine} is not BPF (247); build with -target bpf`);
  const shoff = u64(view, 0x28, 'section header offset', path);
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  if (shentsize !== 64 || shoff + shnum * 64 > bytes.length) throw new ElfError(`${path}: truncated section header table`);

  interface RawSection {
    name: number;
    type: number;
    flags: number;
    offset: number;
    size: number;
    link: number;
    info: number;
    entsize: number;
  }
  const raw: RawSection[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * 64;
    raw.push({
      name: view.getUint32(o, true),
      type: view.getUint32(o + 4, true),
      flags: u64(view, o + 8, 'section flags', path),
      offset: u64(view, o + 24, 'section offset', path),
      size: u64(view, o + 32, 'section size', path),
      link: view.getUint32(o + 40, true),
      info: view.getUint32(o + 44, true),
      entsize: u64(view, o + 56, 'section entsize', path),
    });
  }
  const shstr = raw[shstrndx];
  if (!shstr || shstr.offset + shstr.size > bytes.length) throw new ElfError(`${path}: missing section name table`);
  const shstrBytes = bytes.subarray(shstr.offset, shstr.offset + shstr.size);

  const sections: ElfSection[] = raw.map((s, index) => {
    if (s.type !== SHT_NOBITS && s.offset + s.size > bytes.length) {
      throw new ElfError(`${path}: section ${index} extends past the end of the file`);
    }
    const data = s.type === SHT_NOBITS ? new Uint8Array(s.size) : bytes.slice(s.offset, s.offset + s.size);
    return { index, name: cString(shstrBytes, s.name), type: s.type, flags: s.flags, size: s.size, link: s.link, info: s.info, entsize: s.entsize, data };
  });

  const symbols: ElfSymbol[] = [];
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (symtab) {
    const strtab = sections[symtab.link];
    if (!strtab) throw new ElfError(`${path}: symbol table has no string table`);
    const sv = new DataView(symtab.data.buffer, symtab.data.byteOffset, symtab.data.byteLength);
    for (let i = 0; i * 24 + 24 <= symtab.data.length; i++) {
      const o = i * 24;
      const info = sv.getUint8(o + 4);
      symbols.push({
        index: i,
        name: cString(strtab.data, sv.getUint32(o, true)),
        bind: info >> 4,
        type: info & 0xf,
        visibility: sv.getUint8(o + 5) & 3,
        shndx: sv.getUint16(o + 6, true),
        value: u64(sv, o + 8, 'symbol value', path),
        size: u64(sv, o + 16, 'symbol size', path),
      });
    }
  }

  const relocations = new Map<number, ElfRelocation[]>();
  for (const s of sections) {
    if (s.type !== SHT_REL) continue;
    const rv = new DataView(s.data.buffer, s.data.byteOffset, s.data.byteLength);
    const list: ElfRelocation[] = [];
    for (let o = 0; o + 16 <= s.data.length; o += 16) {
      const offset = u64(rv, o, 'relocation offset', path);
      const info = rv.getBigUint64(o + 8, true);
      list.push({ offset, symbol: Number(info >> 32n), type: Number(info & 0xffffffffn) });
    }
    relocations.set(s.info, list);
  }

  const byName = new Map<string, ElfSection>();
  for (const s of sections) if (!byName.has(s.name)) byName.set(s.name, s);
  return { path, sections, symbols, relocations, section: (name) => byName.get(name) };
}

/** The programs of an object: the STT_FUNC symbols of its executable sections other than .text (which holds subprograms). */
export function programNames(elf: ElfFile): string[] {
  return elf.symbols.filter((s) => s.type === STT_FUNC && elf.sections[s.shndx]?.name !== '.text' && ((elf.sections[s.shndx]?.flags ?? 0) & SHF_EXECINSTR) !== 0).map((s) => s.name);
}

export function loadElf(path: string): ElfFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ElfError(`cannot read BPF object ${path}: ${(e as Error).message}; build it first (make -C bpf)`);
  }
  return parseElf(bytes, path);
}
