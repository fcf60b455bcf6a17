// ELF and BTF parsing against independent readers of the same files: llvm-readelf / llvm-readobj
// (sections, symbols, relocations including .rel.BTF.ext) and bpftool (BTF types); BTF-defined
// maps against the ABI table; .BTF.ext line info against the source text.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseElf, loadElf, ElfError, SHT_NOBITS } from '../../bpf/vm/elf.js';
import { parseBtf, parseBtfExt, btfMapDefinitions, kindName, BtfKind } from '../../bpf/vm/btf.js';
import { linkObject } from '../../bpf/vm/link.js';
import { MAPS } from '../../bpf/codec/abi.js';
import { dataPathObjects, fixtureObject, scratchDir } from '../fixtures/vm/helpers.js';

const RELOC_NAMES: Record<string, number> = { R_BPF_64_64: 1, R_BPF_64_ABS64: 2, R_BPF_64_ABS32: 3, R_BPF_64_NODYLD32: 4, R_BPF_64_32: 10 };

function objects(): string[] {
  const dp = dataPathObjects();
  return [dp.connect, dp.sockops, dp.sendmsg, fixtureObject('link_basic', 'v1'), fixtureObject('helpers', 'v3')];
}

interface ReadelfSection {
  Index: number;
  Name: { Value: string };
  Type: { RawValue: number };
  Size: number;
  Link: number;
  Info: number;
  Flags: { RawFlags: number };
}
interface ReadelfSymbol {
  Name: { Value: string };
  Value: number;
  Size: number;
  Binding: { RawValue: number };
  Type: { RawValue: number };
  Section: { RawValue: number };
}

function readelf(path: string, flag: string): Record<string, unknown> {
  const out = execFileSync('llvm-readelf', ['--elf-output-style=JSON', flag, path], { encoding: 'utf8' });
  const top = (JSON.parse(out) as Array<Record<string, Record<string, unknown>>>)[0]!;
  return Object.values(top)[0]!;
}

describe('ELF', () => {
  it.each(objects().map((p) => [basename(p), p]))('%s: sections, symbols and relocations as llvm-readelf reads them', (_n, path) => {
    const elf = loadElf(path);
    const secs = (readelf(path, '-S')['Sections'] as Array<{ Section: ReadelfSection }>).map((s) => s.Section);
    expect(elf.sections.map((s) => [s.index, s.name, s.type, s.size, s.link, s.info, s.flags])).toEqual(
      secs.map((s) => [s.Index, s.Name.Value, s.Type.RawValue, s.Size, s.Link, s.Info, s.Flags.RawFlags]),
    );
    for (const s of elf.sections) expect(s.data.length).toBe(s.size);
    const syms = (readelf(path, '-s')['Symbols'] as Array<{ Symbol: ReadelfSymbol }>).map((s) => s.Symbol);
    // llvm-readelf shows section symbols (st_name 0) under their section's name
    expect(elf.symbols.map((s) => [s.type === 3 && !s.name ? elf.sections[s.shndx]!.name : s.name, s.value, s.size, s.bind, s.type, s.shndx])).toEqual(
      syms.map((s) => [s.Name.Value, s.Value, s.Size, s.Binding.RawValue, s.Type.RawValue, s.Section.RawValue]),
    );
    // llvm-readobj -r: "Section (N) .rel<name> {" then "0xOFF TYPE SYMBOL" lines
    const text = execFileSync('llvm-readobj', ['-r', path], { encoding: 'utf8' });
    const theirs = new Map<string, Array<[number, number, string]>>();
    let cur: Array<[number, number, string]> | null = null;
    for (const line of text.split('\n')) {
      const sec = /^\s*Section \((\d+)\) (\S+) \{/.exec(line);
      if (sec) {
        cur = [];
        theirs.set(sec[2]!, cur);
        continue;
      }
      const rel = /^\s*0x([0-9A-F]+) (R_BPF_\w+) (.*)$/.exec(line);
      if (rel && cur) cur.push([parseInt(rel[1]!, 16), RELOC_NAMES[rel[2]!] ?? -1, rel[3]!.trim() || '-']);
    }
    const mine = new Map<string, Array<[number, number, string]>>();
    for (const [target, rels] of elf.relocations) {
      const relSec = elf.sections.find((s) => s.type === 9 && s.info === target)!;
      mine.set(
        relSec.name,
        rels.map((r) => [r.offset, r.type, elf.symbols[r.symbol]?.name || elf.sections[elf.symbols[r.symbol]?.shndx ?? 0]?.name || '-']),
      );
    }
    expect(mine.has('.rel.BTF.ext')).toBe(true);
    expect([...mine.keys()].sort()).toEqual([...theirs.keys()].sort());
    for (const [name, rels] of theirs) expect(mine.get(name), name).toEqual(rels);
  });

  it('keeps private copies of section bytes and zero-fills NOBITS', () => {
    const path = fixtureObject('link_basic', 'v3');
    const buf = readFileSync(path);
    const elf = parseElf(buf, path);
    const text = elf.section('.text')!;
    const before = Buffer.from(buf);
    text.data.fill(0xee);
    expect(Buffer.compare(buf, before)).toBe(0);
    expect(parseElf(buf, path).section('.text')!.data.includes(0xee)).toBe(false);
    const bss = elf.sections.find((s) => s.type === SHT_NOBITS)!;
    expect(bss.data.every((b) => b === 0)).toBe(true);
  });

  it('refuses what is not a little-endian BPF ELF object with a one-line reason', () => {
    expect(() => parseElf(new TextEncoder().encode('hello, not an object'), 'x.o')).toThrow(ElfError);
    expect(() => parseElf(new TextEncoder().encode('hello, not an object'), 'x.o')).toThrow(/x\.o: not an ELF file/);
    const host = `${scratchDir()}/host-true`;
    execFileSync('cp', ['/bin/true', host]);
    expect(() => loadElf(host)).toThrow(/ELF machine 62 is not BPF/);
    const truncated = readFileSync(fixtureObject('tailcall', 'v3')).subarray(0, 200);
    expect(() => parseElf(truncated, 't.o')).toThrow(/t\.o: truncated section header table/);
  });
});

describe('BTF', () => {
  it.each(objects().map((p) => [basename(p), p]))('%s: every type as bpftool reads it', (_n, path) => {
    const elf = loadElf(path);
    const btf = parseBtf(elf.section('.BTF')!.data);
    const dump = execFileSync('bpftool', ['btf', 'dump', 'file', path], { encoding: 'utf8' });
    const headers = dump.split('\n').filter((l) => l.startsWith('['));
    expect(btf.types.length - 1).toBe(headers.length);
    for (const h of headers) {
      const m = /^\[(\d+)\] (\w+) '([^']*)'(.*)$/.exec(h)!;
      const t = btf.type(Number(m[1]));
      expect(kindName(t.kind), h).toBe(m[2]);
      expect(t.name || '(anon)', h).toBe(m[3]);
      const size = /size=(\d+)/.exec(m[4]!);
      if (size && t.kind !== BtfKind.DATASEC) expect(t.sizeOrType, h).toBe(Number(size[1]));
      const typeId = /type_id=(\d+)/.exec(m[4]!);
      if (typeId && t.kind !== BtfKind.ARRAY) expect(t.sizeOrType, h).toBe(Number(typeId[1]));
      const nelems = /nr_elems=(\d+)/.exec(m[4]!);
      if (nelems) expect(t.array?.nelems, h).toBe(Number(nelems[1]));
      const vlen = /vlen=(\d+)/.exec(m[4]!);
      if (vlen) expect(t.members.length + t.vars.length, h).toBe(Number(vlen[1]));
    }
  });

  it('reads the data path maps as the ABI table has them (type, key and value sizes, max_entries, flags)', () => {
    const dp = dataPathObjects();
    for (const path of [dp.connect, dp.sockops, dp.sendmsg]) {
      const elf = loadElf(path);
      const defs = btfMapDefinitions(parseBtf(elf.section('.BTF')!.data));
      const types: Record<string, number> = { hash: 1, array: 2, prog_array: 3, sockhash: 18, sk_storage: 24 };
      for (const abi of MAPS) {
        const d = defs.find((x) => x.name === abi.name);
        expect(d, `${abi.name} in ${path}`).toBeDefined();
        expect([d!.type, d!.keySize, d!.valueSize, d!.maxEntries]).toEqual([types[abi.type], abi.keySize, abi.valueSize, abi.maxEntries]);
      }
      expect(defs.find((x) => x.name === 'km_frontend')!.flags).toBe(1); // BPF_F_NO_PREALLOC
    }
  });

  it('line info maps instructions to the source lines that produced them', () => {
    const path = fixtureObject('faults', 'v3');
    const source = readFileSync(`${import.meta.dirname}/../fixtures/vm/faults.c`, 'utf8').split('\n');
    const elf = loadElf(path);
    const btf = parseBtf(elf.section('.BTF')!.data);
    const ext = parseBtfExt(elf.section('.BTF.ext')!.data, btf);
    const lines = ext.lineInfo.get('cgroup/connect4')!;
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) {
      if (l.line === 0) continue;
      expect(l.file.endsWith('faults.c')).toBe(true);
      expect(source[l.line - 1]!.trim(), `line ${l.line}`).toBe(l.text.trim());
    }
    const funcs = ext.funcInfo.get('cgroup/connect4')!.map((f) => f.name);
    expect(funcs).toEqual(['oob_prog', 'ctx_write_prog', 'null_prog']);
    // Linked programs carry them per instruction.
    const p = linkObject(path).program('oob_prog');
    expect(p.lineOf.some((l) => l?.text.includes('FAULT: oob_prog'))).toBe(true);
  });
});
