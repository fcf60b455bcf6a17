// Instruction and branch coverage of the VM's programs across a run, mapped to source lines by
// BTF line info: a plain summary object the report can show, and a short text form.

import type { Machine } from './machine.js';
import type { VmProgram } from './program.js';
import type { BranchCoverage, CoverageSummary, LineCoverage, ProgramCoverage } from '../../model/executor.js';
import { Cls, JmpOp, OP_MASK } from './opcodes.js';

export type { BranchCoverage, CoverageSummary, LineCoverage, ProgramCoverage } from '../../model/executor.js';

function isConditional(code: number): boolean {
  const cls = code & 7;
  const op = code & OP_MASK;
  return (cls === Cls.JMP || cls === Cls.JMP32) && op !== JmpOp.JA && op !== JmpOp.CALL && op !== JmpOp.EXIT;
}

/** Times each instruction ran, under either engine. */
export function instructionHits(m: Machine, p: VmProgram): Uint32Array {
  const hits = Uint32Array.from(p.hits);
  const c = m.compiledPrograms().get(p);
  if (c) {
    for (let i = 0; i < p.n; i++) {
      if (i > 0 && p.op[i - 1] === 0x18 && p.op[i] === 0) continue; // second half of ld_imm64: never "runs"
      hits[i] = (hits[i] as number) + (c.blocks[c.blockOf[i] as number] as number) + (c.adj[i] as number);
    }
  }
  return hits;
}

function shortFile(f: string): string {
  const parts = f.split('/');
  return parts.slice(-2).join('/');
}

/** Lines by file, then line number. */
function bySourcePlace(a: { path: string; line: number }, b: { path: string; line: number }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : a.line - b.line;
}

export function programCoverage(m: Machine, p: VmProgram): ProgramCoverage {
  const hits = instructionHits(m, p);
  let executed = 0;
  let instructions = 0;
  const unexecuted: number[] = [];
  const branches: BranchCoverage[] = [];
  const lines = new Map<string, { file: string; path: string; line: number; text: string; hits: number }>();
  for (let pc = 0; pc < p.n; pc++) {
    const code = p.op[pc] as number;
    if (code === 0 && pc > 0 && p.op[pc - 1] === 0x18) continue; // second half of ld_imm64
    instructions++;
    const h = hits[pc] as number;
    if (h > 0) executed++;
    else unexecuted.push(pc);
    const li = p.linked.lineOf[pc] ?? null;
    if (li) {
      const key = `${li.file}:${li.line}`;
      const cur = lines.get(key);
      if (!cur) lines.set(key, { file: shortFile(li.file), path: li.file, line: li.line, text: li.text.trim(), hits: h });
      else cur.hits = Math.max(cur.hits, h);
    }
    if (isConditional(code)) {
      const t = p.taken[pc] as number;
      branches.push({ pc, file: li ? shortFile(li.file) : '?', path: li?.file ?? '?', line: li?.line ?? 0, executed: h, taken: t, fallthrough: h - t });
    }
  }
  const lineList = [...lines.values()].sort(bySourcePlace);
  const first = p.linked.lineOf[0] ?? null;
  return {
    program: p.name,
    section: p.section,
    entry: first ? { path: first.file, line: first.line } : null,
    runs: p.n > 0 ? (hits[0] as number) : 0,
    instructions,
    executedInstructions: executed,
    unexecutedPcs: unexecuted,
    branches: branches.length,
    branchesBothWays: branches.filter((b) => b.taken > 0 && b.fallthrough > 0).length,
    branchDetails: branches,
    lines: lineList,
    uncoveredLines: lineList.filter((l) => l.hits === 0).map((l) => `${l.file}:${l.line}`),
  };
}

export function coverageOf(m: Machine, programs: readonly VmProgram[]): CoverageSummary {
  return summaryOf(programs.map((p) => programCoverage(m, p)));
}

/** The programs of several runs in one summary (another VM's programs of the same objects too: their source lines add up in lcov). */
export function mergeCoverage(summaries: readonly CoverageSummary[]): CoverageSummary {
  return summaryOf(summaries.flatMap((s) => s.programs));
}

/**
 * The coverage of a run's shards (their JSON reports) as one: each program's runs and branch
 * counts summed, the instructions and lines any shard ran. A line's count is the sum of the
 * shards' (each the count of the line's most-run instruction in that shard), so it may exceed the
 * count of any one instruction. A program is the same in two shards when its name, section and
 * instruction count are; a shard report without unexecutedPcs (an older version) leaves the
 * instructions run at the most any shard ran, a lower bound.
 */
export function mergeShardCoverage(shards: readonly CoverageSummary[]): CoverageSummary {
  const byProgram = new Map<string, ProgramCoverage[]>();
  for (const s of shards) {
    for (const p of s.programs) {
      const key = `${p.program}\0${p.section}\0${p.instructions}`;
      const had = byProgram.get(key);
      if (had) had.push(p);
      else byProgram.set(key, [p]);
    }
  }
  return summaryOf([...byProgram.values()].map(mergePrograms));
}

function mergePrograms(parts: readonly ProgramCoverage[]): ProgramCoverage {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  const branches = new Map<number, BranchCoverage>();
  for (const p of parts) {
    for (const b of p.branchDetails) {
      const had = branches.get(b.pc);
      branches.set(b.pc, had ? { ...had, executed: had.executed + b.executed, taken: had.taken + b.taken, fallthrough: had.fallthrough + b.fallthrough } : b);
    }
  }
  const lines = new Map<string, LineCoverage>();
  for (const p of parts) {
    for (const l of p.lines) {
      const key = `${l.path}:${l.line}`;
      const had = lines.get(key);
      lines.set(key, had ? { ...had, hits: had.hits + l.hits } : l);
    }
  }
  const branchDetails = [...branches.values()].sort((a, b) => a.pc - b.pc);
  const lineList = [...lines.values()].sort(bySourcePlace);
  // An instruction is unrun only if no shard ran it.
  const unexecutedPcs = parts.every((p) => p.unexecutedPcs !== undefined) ? parts.map((p) => p.unexecutedPcs!).reduce((never, u) => never.filter((pc) => u.includes(pc))) : undefined;
  return {
    program: first.program,
    section: first.section,
    entry: first.entry,
    runs: parts.reduce((n, p) => n + p.runs, 0),
    instructions: first.instructions,
    executedInstructions: unexecutedPcs ? first.instructions - unexecutedPcs.length : Math.max(...parts.map((p) => p.executedInstructions)),
    ...(unexecutedPcs ? { unexecutedPcs } : {}),
    branches: first.branches,
    branchesBothWays: branchDetails.filter((b) => b.taken > 0 && b.fallthrough > 0).length,
    branchDetails,
    lines: lineList,
    uncoveredLines: lineList.filter((l) => l.hits === 0).map((l) => `${l.file}:${l.line}`),
  };
}

function summaryOf(list: readonly ProgramCoverage[]): CoverageSummary {
  const sum = (f: (p: ProgramCoverage) => number) => list.reduce((a, p) => a + f(p), 0);
  return {
    programs: list,
    instructions: sum((p) => p.instructions),
    executedInstructions: sum((p) => p.executedInstructions),
    branches: sum((p) => p.branches),
    branchesBothWays: sum((p) => p.branchesBothWays),
  };
}

export function resetCoverage(m: Machine, programs: readonly VmProgram[]): void {
  for (const p of programs) {
    p.hits.fill(0);
    p.taken.fill(0);
    const c = m.compiledPrograms().get(p);
    if (c) {
      c.blocks.fill(0);
      c.adj.fill(0);
    }
  }
}

function pct(a: number, b: number): string {
  return b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`;
}

/** A few lines for a report: per program, instructions and branches covered, and lines never run. */
export function formatCoverage(s: CoverageSummary, maxLines = 8): string {
  const out: string[] = [];
  for (const p of s.programs) {
    out.push(
      `${p.program} (${p.section}): instructions ${p.executedInstructions}/${p.instructions} (${pct(p.executedInstructions, p.instructions)}), branches both ways ${p.branchesBothWays}/${p.branches} (${pct(p.branchesBothWays, p.branches)})`,
    );
    if (p.uncoveredLines.length) {
      const shown = p.uncoveredLines.slice(0, maxLines).join(', ');
      out.push(`  never run: ${shown}${p.uncoveredLines.length > maxLines ? `, ... (${p.uncoveredLines.length - maxLines} more)` : ''}`);
    }
  }
  return out.join('\n');
}
