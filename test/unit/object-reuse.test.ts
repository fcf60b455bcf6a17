// Which objects a patched copy of the sources can take from the baseline build, decided from the
// baseline's dependency files (cli/object-reuse.ts). Files only: no compiler.

import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyObjects, reusableObjects } from '../../cli/object-reuse.js';

/** bpf/src-like sources, their baseline build (two objects, one through a system header), a copy. */
function layout() {
  const root = mkdtempSync(join(tmpdir(), 'kc-reuse-'));
  const from = join(root, 'src');
  const baseline = join(root, 'baseline');
  const system = join(root, 'usr/asm.h');
  const files = { 'a.bpf.c': '#include "shared.h"\n', 'b.bpf.c': '#include "only_b.h"\n', 'shared.h': 'S\n', 'only_b.h': 'B\n' };
  for (const d of [from, baseline, join(root, 'usr')]) mkdirSync(d, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(from, f), text);
  writeFileSync(system, 'asm\n');
  writeFileSync(join(baseline, 'a.o'), 'object a');
  writeFileSync(join(baseline, 'a.bpf.d'), `${baseline}/a.o: ${from}/a.bpf.c \\\n  ${from}/shared.h ${system}\n${from}/shared.h:\n${system}:\n`);
  writeFileSync(join(baseline, 'b.o'), 'object b');
  writeFileSync(join(baseline, 'b.bpf.d'), `${baseline}/b.o: ${from}/b.bpf.c ${from}/only_b.h \\\n  ${from}/shared.h\n${from}/only_b.h:\n${from}/shared.h:\n`);
  const copy = (edits: Record<string, string | null> = {}) => {
    const src = mkdtempSync(join(root, 'copy-'));
    for (const [f, text] of Object.entries({ ...files, ...edits })) if (text !== null) writeFileSync(join(src, f), text);
    return src;
  };
  return { root, from, baseline, copy };
}

describe('objects reused from the baseline', () => {
  it('are those none of whose inputs under the sources changed', () => {
    const { from, baseline, copy } = layout();
    expect(reusableObjects(baseline, from, copy()).sort()).toEqual(['a.o', 'b.o']);
    expect(reusableObjects(baseline, from, copy({ 'only_b.h': 'B2\n' }))).toEqual(['a.o']);
    expect(reusableObjects(baseline, from, copy({ 'b.bpf.c': '#include "shared.h"\n' }))).toEqual(['a.o']);
    // A header both read: neither.
    expect(reusableObjects(baseline, from, copy({ 'shared.h': 'S2\n' }))).toEqual([]);
  });

  it('are none when a source file is added or removed (an #include may then find another file)', () => {
    const { from, baseline, copy } = layout();
    expect(reusableObjects(baseline, from, copy({ 'new.h': 'N\n' }))).toEqual([]);
    expect(reusableObjects(baseline, from, copy({ 'only_b.h': null }))).toEqual([]);
  });

  it('are none without a baseline build, and an object without its dependency file is never reused', () => {
    const { root, from, baseline, copy } = layout();
    expect(reusableObjects(join(root, 'nothing'), from, copy())).toEqual([]);
    writeFileSync(join(baseline, 'c.o'), 'object c without a dependency file');
    expect(reusableObjects(baseline, from, copy()).sort()).toEqual(['a.o', 'b.o']);
  });

  it('are copied with dependency files that name the copy, not the sources or the baseline', () => {
    const { root, from, baseline, copy } = layout();
    const src = copy({ 'only_b.h': 'B2\n' });
    const out = join(root, 'out');
    mkdirSync(out);
    copyObjects(['a.o'], baseline, from, src, out);
    expect(readFileSync(join(out, 'a.o'), 'utf8')).toBe('object a');
    const dep = readFileSync(join(out, 'a.bpf.d'), 'utf8');
    expect(dep).toContain(`${out}/a.o: ${src}/a.bpf.c`);
    expect(dep).toContain(`${src}/shared.h:`);
    expect(dep).toContain(`${root}/usr/asm.h`);
    expect(dep).not.toContain(`${from}/`);
    expect(dep).not.toContain(baseline);
  });
});
