// The VM's linker against libbpf: libbpf's gen_loader + bpf_object__load links without any bpf()
// call and leaves the final instructions readable; ours must equal them instruction for
// instruction, for every program of every object we have (the data path and the fixtures,
// built for several CPU versions). Also: what the linker refuses, by name.

import { describe, expect, it } from 'vitest';
import { basename } from 'node:path';
import { linkObject, LinkError, BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE, BPF_PSEUDO_CALL } from '../../bpf/vm/link.js';
import { libbpfLink } from '../support/libbpf-oracle.js';
import { readInsn } from '../../bpf/vm/isa.js';
import { dataPathObjects, fixtureObject } from '../fixtures/vm/helpers.js';

function objects(): string[] {
  const dp = dataPathObjects();
  return [dp.connect, dp.sockops, dp.sendmsg, ...(['v1', 'v2', 'v3'] as const).flatMap((cpu) => ['link_basic', 'compute', 'helpers', 'tailcall', 'faults'].map((f) => fixtureObject(f, cpu)))];
}

function hexInsns(b: Uint8Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 8) out.push(Buffer.from(b.subarray(i, i + 8)).toString('hex'));
  return out;
}

describe('linking agrees with libbpf', () => {
  it.each(objects().map((p) => [basename(p), p]))('%s: every program, instruction for instruction', (_name, path) => {
    const mine = linkObject(path);
    const theirs = libbpfLink(path);
    expect(mine.programs.map((p) => p.name).sort()).toEqual(theirs.programs.map((p) => p.name).sort());
    expect(theirs.programs.length).toBeGreaterThan(0);
    for (const tp of theirs.programs) {
      const mp = mine.program(tp.name);
      expect(mp.section).toBe(tp.section);
      expect(hexInsns(mp.insns), `${tp.name} in ${path}`).toEqual(hexInsns(tp.insns));
    }
    // Same maps in the same order (libbpf prefixes global data maps with the object name).
    expect(mine.maps.length).toBe(theirs.maps.length);
    mine.maps.forEach((m, i) => {
      if (m.internal) expect(theirs.maps[i]).toMatch(new RegExp(`${m.name.replace('.', '\\.')}$`));
      else expect(theirs.maps[i]).toBe(m.name);
    });
  });
});

describe('linking', () => {
  it('appends used subprograms after the main program, in order of first use, and only those', () => {
    const o = linkObject(fixtureObject('link_basic', 'v3'));
    const order = (name: string) => {
      const p = o.program(name);
      const seen: string[] = [];
      for (const f of p.funcOf) if (seen.at(-1) !== f) seen.push(f);
      return seen;
    };
    expect(order('prog_a')).toEqual(['prog_a', 'middle', 'leaf']);
    expect(order('prog_b')).toEqual(['prog_b', 'global_helper', 'leaf']);
    expect(order('prog_c')).toEqual(['prog_c', 'global_helper']);
  });

  it('rewrites map references to PSEUDO_MAP_IDX and global data to PSEUDO_MAP_IDX_VALUE with offsets', () => {
    const o = linkObject(fixtureObject('link_basic', 'v3'));
    const p = o.program('prog_b');
    const refs: Array<{ src: number; imm: number; next: number }> = [];
    for (let i = 0; i < p.insnCount; i++) {
      const ins = readInsn(p.insns, i);
      if (ins.code === 0x18) {
        refs.push({ src: ins.src, imm: ins.imm, next: readInsn(p.insns, i + 1).imm });
        i++;
      }
      if (ins.code === 0x85 && ins.src === BPF_PSEUDO_CALL) {
        const target = i + ins.imm + 1;
        expect(target).toBeGreaterThan(0);
        expect(p.funcOf[target]).not.toBe(p.funcOf[target - 1]); // lands on a function's first instruction
      }
    }
    const byName = (n: string) => o.maps.findIndex((m) => m.name === n);
    expect(refs).toContainEqual({ src: BPF_PSEUDO_MAP_IDX, imm: byName('m_array'), next: 0 });
    expect(refs).toContainEqual({ src: BPF_PSEUDO_MAP_IDX_VALUE, imm: byName('.bss'), next: 0 }); // scratch
    // the static `hidden` lives at offset 4 of .data (after `counter`)
    expect(refs).toContainEqual({ src: BPF_PSEUDO_MAP_IDX_VALUE, imm: byName('.data'), next: 4 });
    expect(o.maps.find((m) => m.name === '.rodata')?.internal?.readonly).toBe(true);
  });

  it('copies section bytes: linking twice from one buffer gives the same result and leaves the buffer alone', async () => {
    const { readFileSync } = await import('node:fs');
    const path = fixtureObject('link_basic', 'v2');
    const bytes = readFileSync(path);
    const copy = Buffer.from(bytes);
    const a = linkObject({ path, bytes });
    const b = linkObject({ path, bytes });
    expect(Buffer.compare(bytes, copy)).toBe(0);
    expect(hexInsns(a.program('prog_b').insns)).toEqual(hexInsns(b.program('prog_b').insns));
  });

  it.each([
    ['WANT_CORE', /program core_prog uses CO-RE relocations/],
    ['WANT_EXTERN', /program extern_prog references extern LINUX_KERNEL_VERSION/],
    ['WANT_KFUNC', /program kfunc_prog calls kfunc bpf_rcu_read_lock/],
    ['WANT_MAP_IN_MAP', /map outer has a map-in-map or prog-array initialiser/],
  ])('refuses %s with a one-line error naming it', (define, message) => {
    const path = fixtureObject('reject', 'v3', [define]);
    let err: unknown;
    try {
      linkObject(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LinkError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });

  it('names a missing program and a missing file plainly', () => {
    const o = linkObject(fixtureObject('tailcall', 'v3'));
    expect(() => o.program('nope')).toThrow(/no program named nope \(has: tail_prog\)/);
    expect(() => linkObject('/nonexistent/x.o')).toThrow(/cannot read BPF object \/nonexistent\/x\.o/);
  });
});
