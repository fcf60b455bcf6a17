// C source coverage per file from the VM's per-program coverage, written in lcov's tracefile
// format (what genhtml, Codecov and editor plugins read). No instrumented build is needed: BTF
// line info maps each instruction to its source line, and the VM counts every instruction and
// conditional jump.

import type { CoverageSummary } from './coverage.js';

export interface SourceBranch {
  /** Line of the conditional jump. */
  readonly line: number;
  /** Times the jump ran; 0 means neither way was ever decided. */
  readonly executed: number;
  readonly taken: number;
  readonly fallthrough: number;
}

export interface SourceFileCoverage {
  /** As BTF line info names it. */
  readonly path: string;
  /** Line number -> hits (summed over programs: each program is its own copy of the code). */
  readonly lines: ReadonlyMap<number, number>;
  /** The source text of each line as the compiler recorded it in BTF (for sources not on disk). */
  readonly text: ReadonlyMap<number, string>;
  readonly branches: readonly SourceBranch[];
  /** The BPF programs whose C function is in this file, with how often each was entered. */
  readonly functions: readonly { readonly name: string; readonly line: number; readonly runs: number }[];
}

/** Lines and branches per source file, over every program of the run, files sorted by path. */
export function sourceCoverage(s: CoverageSummary): SourceFileCoverage[] {
  const files = new Map<string, { lines: Map<number, number>; text: Map<number, string>; branches: SourceBranch[]; functions: { name: string; line: number; runs: number }[] }>();
  const fileOf = (path: string) => {
    let f = files.get(path);
    if (!f) files.set(path, (f = { lines: new Map(), text: new Map(), branches: [], functions: [] }));
    return f;
  };
  for (const p of s.programs) {
    if (p.entry) {
      // The same program run by another VM (another phase) is one function, its runs added up.
      const fns = fileOf(p.entry.path).functions;
      const same = fns.find((f) => f.name === p.program && f.line === p.entry!.line);
      if (same) same.runs += p.runs;
      else fns.push({ name: p.program, line: p.entry.line, runs: p.runs });
    }
    for (const l of p.lines) {
      const f = fileOf(l.path);
      f.lines.set(l.line, (f.lines.get(l.line) ?? 0) + l.hits);
      if (!f.text.has(l.line)) f.text.set(l.line, l.text);
    }
    for (const b of p.branchDetails) {
      if (b.path === '?') continue; // a jump with no line info cannot be placed in a file
      fileOf(b.path).branches.push({ line: b.line, executed: b.executed, taken: b.taken, fallthrough: b.fallthrough });
    }
  }
  return [...files.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, f]) => ({ path, lines: f.lines, text: f.text, branches: [...f.branches].sort((a, b) => a.line - b.line), functions: f.functions }));
}

export interface CoverageTotals {
  readonly linesFound: number;
  readonly linesHit: number;
  /** Branch outcomes (two per conditional jump: taken and not taken). */
  readonly branchesFound: number;
  readonly branchesHit: number;
}

export function fileTotals(f: SourceFileCoverage): CoverageTotals {
  let linesHit = 0;
  for (const h of f.lines.values()) if (h > 0) linesHit++;
  let branchesHit = 0;
  for (const b of f.branches) branchesHit += (b.taken > 0 ? 1 : 0) + (b.fallthrough > 0 ? 1 : 0);
  return { linesFound: f.lines.size, linesHit, branchesFound: 2 * f.branches.length, branchesHit };
}

export function totals(files: readonly SourceFileCoverage[]): CoverageTotals {
  return files
    .map(fileTotals)
    .reduce((a, t) => ({ linesFound: a.linesFound + t.linesFound, linesHit: a.linesHit + t.linesHit, branchesFound: a.branchesFound + t.branchesFound, branchesHit: a.branchesHit + t.branchesHit }), {
      linesFound: 0,
      linesHit: 0,
      branchesFound: 0,
      branchesHit: 0,
    });
}

/**
 * The lcov tracefile: per file SF, FN/FNDA per BPF program whose function is in it, DA per
 * line, BRDA per branch outcome (block = the jump's index
 * in the file, branch 0 = taken, 1 = not taken, "-" when the jump never ran), then the totals.
 */
/** The test name is letters, digits and underscores only: genhtml rewrites anything else with a warning. */
export function toLcov(files: readonly SourceFileCoverage[], testName = 'kmesh_check'): string {
  const out: string[] = [];
  for (const f of files) {
    const t = fileTotals(f);
    out.push(`TN:${testName}`, `SF:${f.path}`);
    for (const fn of f.functions) out.push(`FN:${fn.line},${fn.name}`);
    for (const fn of f.functions) out.push(`FNDA:${fn.runs},${fn.name}`);
    if (f.functions.length) out.push(`FNF:${f.functions.length}`, `FNH:${f.functions.filter((fn) => fn.runs > 0).length}`);
    for (const [line, hits] of [...f.lines.entries()].sort((a, b) => a[0] - b[0])) out.push(`DA:${line},${hits}`);
    f.branches.forEach((b, block) => {
      const count = (n: number) => (b.executed === 0 ? '-' : String(n));
      out.push(`BRDA:${b.line},${block},0,${count(b.taken)}`, `BRDA:${b.line},${block},1,${count(b.fallthrough)}`);
    });
    out.push(`BRF:${t.branchesFound}`, `BRH:${t.branchesHit}`, `LF:${t.linesFound}`, `LH:${t.linesHit}`, 'end_of_record');
  }
  return out.join('\n') + '\n';
}
