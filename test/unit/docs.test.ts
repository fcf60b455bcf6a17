// The generated spec (docs/gen): the committed docs/spec.md is what the code renders, it covers
// every invariant and path, staleness is detected, and its examples really exercise their
// invariants on the reference model.

import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { MAPS, STRUCTS } from '../../bpf/codec/abi.js';
import { packageRoot } from '../../bpf/kernel/paths.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { invariants, PASS_PATHS, RESULT_OF_PATH, type Invariant } from '../../model/spec/index.js';
import { formatCase } from '../../properties/format.js';
import { docsCommand } from '../../docs/gen/cli.js';
import { CORPUS } from '../../docs/gen/corpus.js';
import { contextOf, findExamples } from '../../docs/gen/examples.js';
import { checkSpecFresh, lineDiff, renderSpec, SPEC_PATH } from '../../docs/gen/index.js';
import { invariantSection } from '../../docs/gen/invariant-docs.js';
import { PATH_DOCS, RECORDING_RESULTS } from '../../docs/gen/paths.js';
import { readingTitles } from '../../docs/gen/render.js';

const root = packageRoot();
const spec = renderSpec();
const temps: string[] = [];

function tempRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-docs-'));
  temps.push(dir);
  mkdirSync(join(dir, 'docs'));
  return dir;
}

afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function mermaidBlock(text: string): string {
  const m = /```mermaid\n([\s\S]*?)\n```/.exec(text);
  if (!m?.[1]) throw new Error('no mermaid block in the rendered spec');
  return m[1];
}

describe('docs stand alone', () => {
  it.each(['docs/spec.md', 'docs/interpretation.md', 'docs/architecture.md'])('%s cites no outside document and links nowhere outside', (file) => {
    const text = readFileSync(join(root, file), 'utf8');
    expect(text).not.toMatch(/kmesh-dataplane/);
    expect(text).not.toMatch(/\bsections? \d/i);
    expect(text).not.toMatch(/\]\((https?:|\.\.\/)/);
    expect(text).not.toMatch(/https?:\/\//);
  });
});

describe('docs/spec.md', () => {
  it('is fresh: the committed file equals renderSpec() (run `kmesh-check docs` when this fails)', () => {
    const r = checkSpecFresh(root);
    expect(r.diff ?? '', 'docs/spec.md is stale: run kmesh-check docs').toBe('');
    expect(r.fresh).toBe(true);
  });

  it('renders deterministically, with no dates or timings', () => {
    expect(renderSpec()).toBe(spec);
    expect(spec).not.toMatch(/\b20\d\d-\d\d-\d\d\b/);
    expect(spec).not.toMatch(/\b\d+(\.\d+)?\s?ms\b/);
    expect(spec.endsWith('\n')).toBe(true);
    expect(spec).not.toMatch(/[ \t]+\n/);
  });

  it('names every invariant with its statement', () => {
    for (const inv of invariants) {
      expect(spec).toContain(`### ${inv.name}\n`);
      expect(spec).toContain(`> ${inv.statement}`);
    }
  });

  it('has a Mermaid flowchart with every path as a node, coloured by its result', () => {
    const block = mermaidBlock(spec);
    expect(block.startsWith('flowchart TD')).toBe(true);
    // A semicolon ends a Mermaid statement, even inside a label.
    expect(block).not.toContain(';');
    for (const p of PASS_PATHS) {
      const node = `p_${p.replace(/-/g, '_')}`;
      expect(block).toContain(`${node}(["${p}<br/>${RESULT_OF_PATH[p]}"])`);
      // Reached by exactly one edge.
      expect(block.split('\n').filter((l) => l.trimEnd().endsWith(`| ${node}`)).length).toBe(1);
      const classLine = block.split('\n').find((l) => l.trim().startsWith('class ') && l.trim().endsWith(` ${RESULT_OF_PATH[p]}`));
      expect(classLine?.split(' ').at(-2)?.split(',')).toContain(node);
    }
    // Waypoint paths, and only they, lead to the tail call.
    const toTail = block
      .split('\n')
      .filter((l) => / --> n_tail$/.test(l))
      .map((l) => l.trim().split(' ')[0]);
    expect(toTail.sort()).toEqual(
      PASS_PATHS.filter((p) => RESULT_OF_PATH[p] === 'waypoint')
        .map((p) => `p_${p.replace(/-/g, '_')}`)
        .sort(),
    );
  });

  it('has a decision-table row for every path with its section and result', () => {
    for (const p of PASS_PATHS) {
      const row = spec.split('\n').find((l) => l.startsWith(`| \`${p}\` |`));
      expect(row, p).toBeDefined();
      expect(row).toContain(`| ${PATH_DOCS[p].section} | ${RESULT_OF_PATH[p]} |`);
      if (RESULT_OF_PATH[p] === 'waypoint') expect(row).toContain('via_waypoint set');
      if (RECORDING_RESULTS.includes(RESULT_OF_PATH[p])) expect(row).toContain('original recorded');
    }
  });

  it('has the ABI tables of bpf/codec/abi.ts', () => {
    for (const m of MAPS) {
      const row = spec.split('\n').find((l) => l.startsWith(`| \`${m.name}\` |`));
      expect(row, m.name).toContain(`| ${m.keySize} | ${m.valueSize} | ${m.maxEntries} |`);
    }
    for (const s of Object.values(STRUCTS)) {
      expect(spec).toContain(`#### \`${s.name}\` (${s.size} bytes)`);
      for (const f of s.fields) expect(spec).toMatch(new RegExp(`\\| ${f.offset} \\| \`${f.name.replace('.', '\\.')}(\\[${f.count}\\])?\` \\|`));
    }
  });

  it('explains the set-valued oracle for random load balancing and links the readings', () => {
    expect(spec).toContain('## 4. Random load balancing: a set-valued oracle');
    expect(spec).toMatch(/\| 1 of 3 \| 101 \| `random` \| 10\.1\.0\.1:8080 \|/);
    expect(spec).toContain('](interpretation.md)');
    const readings = readingTitles(readFileSync(join(root, 'docs/interpretation.md'), 'utf8'));
    expect(readings.length).toBeGreaterThan(0);
    for (const r of readings) expect(spec).toContain(`\n${r.n}. ${r.title}\n`);
  });
});

describe('staleness', () => {
  it('a copy of the rendered file is fresh, a modified copy is stale with a diff', () => {
    const dir = tempRoot();
    writeFileSync(join(dir, SPEC_PATH), spec);
    expect(checkSpecFresh(dir)).toEqual({ fresh: true });
    const stale = spec.replace(`> ${invariants[0]?.statement}`, '> an outdated statement');
    expect(stale).not.toBe(spec);
    writeFileSync(join(dir, SPEC_PATH), stale);
    const r = checkSpecFresh(dir);
    expect(r.fresh).toBe(false);
    expect(r.diff).toContain('+ > an outdated statement');
    expect(r.diff).toContain(`- > ${invariants[0]?.statement}`);
  });

  it('a missing file is stale', () => {
    const r = checkSpecFresh(tempRoot());
    expect(r.fresh).toBe(false);
    expect(r.diff).toContain('does not exist');
  });

  it('lineDiff shows only the changed region', () => {
    const d = lineDiff('a\nb\nc\nd\n', 'a\nb\nX\nd\n');
    expect(d.split('\n')).toEqual(['@@ line 3: expected 1 line(s), found 1 @@', '  a', '  b', '- c', '+ X']);
  });

  it('docsCommand writes the file, then --check passes; a stale file fails --check with one line', () => {
    const dir = tempRoot();
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(docsCommand({ check: true, root: dir })).toBe(1);
      expect(err.mock.calls.map((c) => String(c[0]))).toEqual(['docs/spec.md is stale: run kmesh-check docs\n']);
      expect(existsSync(join(dir, SPEC_PATH))).toBe(false);
      expect(docsCommand({ check: false, root: dir })).toBe(0);
      expect(readFileSync(join(dir, SPEC_PATH), 'utf8')).toBe(spec);
      expect(docsCommand({ check: true, root: dir })).toBe(0);
      writeFileSync(join(dir, SPEC_PATH), spec + 'edited by hand\n');
      err.mockClear();
      expect(docsCommand({ check: true, root: dir })).toBe(1);
      expect(err).toHaveBeenCalledTimes(1);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
});

describe('examples', () => {
  const examples = findExamples(invariants);

  it('every invariant has an example that exercises it on the model and violates it nowhere', () => {
    invariants.forEach((inv, i) => {
      const ex = examples[i];
      expect(ex, `no example for ${inv.name}`).toBeTruthy();
      if (!ex) return;
      expect(ex.invariant).toBe(inv.name);
      // Recomputed independently of the finder.
      const verdicts = outcomes(ex.case, DEFAULT_ENVIRONMENT).map((t) => inv.check(contextOf(ex.case, DEFAULT_ENVIRONMENT, t)));
      expect(
        verdicts.some((v) => v.status === 'holds'),
        inv.name,
      ).toBe(true);
      expect(
        verdicts.filter((v) => v.status === 'violated'),
        inv.name,
      ).toEqual([]);
    });
  });

  it('every example case is printed in the spec as counterexamples are', () => {
    for (const ex of examples) {
      if (ex) expect(spec).toContain(formatCase(ex.case).join('\n'));
    }
  });

  it('the corpus cases the examples come from are meant to show their invariants', () => {
    // A spec change that makes a corpus case vacuous for the invariant it was written for shows here.
    invariants.forEach((inv, i) => {
      const ex = examples[i];
      const meant = CORPUS.filter((k) => k.shows.includes(inv.name));
      if (meant.length && ex)
        expect(
          meant.map((k) => k.title),
          inv.name,
        ).toContain(ex.title);
    });
  });

  it('falls back to a fixed-seed generated case, deterministically, and says when nothing fits', () => {
    const withClose: Invariant = {
      name: 'test-closes-a-socket',
      statement: 'A test-only predicate exercised by cases that close a socket.',
      check: (ctx) => (ctx.case.ops.some((op) => op.op === 'close') ? { status: 'holds' } : { status: 'vacuous' }),
    };
    const never: Invariant = { name: 'test-never', statement: 'Never exercised.', check: () => ({ status: 'vacuous' }) };
    const [a, none] = findExamples([withClose, never]);
    const [b] = findExamples([withClose]);
    expect(a?.source).toBe('generated');
    expect(a?.case.ops.some((op) => op.op === 'close')).toBe(true);
    expect(b?.case).toEqual(a?.case);
    expect(none).toBeNull();
    expect(invariantSection(never, null, new Map()).join('\n')).toContain('No example found');
  });

  it("the decision table's storage column agrees with the model's pass records on the corpus", () => {
    let records = 0;
    for (const k of CORPUS) {
      for (const t of outcomes(k.case, DEFAULT_ENVIRONMENT)) {
        t.passes.forEach((passes, i) => {
          const op = k.case.ops[i];
          const proto = k.case.ops.find((o) => o.op === 'socket' && op && 'sock' in op && o.sock === op.sock);
          for (const p of passes) {
            records++;
            const doc = PATH_DOCS[p.path];
            if (p.storageCreated) expect(doc.storage, p.path).not.toBe('none');
            if (p.storageCreated && proto?.op === 'socket' && proto.protocol === 'udp') expect(doc.storage, p.path).toBe('any');
            if (p.recordedOriginal) expect(RECORDING_RESULTS, p.path).toContain(p.result);
          }
        });
      }
    }
    expect(records).toBeGreaterThan(10);
  });
});
