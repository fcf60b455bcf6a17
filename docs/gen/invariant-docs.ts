// The invariants section: every invariant of model/spec with its statement and a worked example
// (the case as properties/format.ts prints counterexamples, and the model's outcomes).

import { formatSockAddr, type Family } from '../../model/address.js';
import type { Case, Operation } from '../../model/domain.js';
import type { Trace } from '../../model/impl/index.js';
import type { Invariant, PassRecord } from '../../model/spec/index.js';
import { formatCase, formatObservation, socketFamilies } from '../../properties/format.js';
import type { Example } from './examples.js';
import { anchor, code, codeBlock, mdTable } from './markdown.js';

/** Outcomes printed per example; the rest are counted. */
export const SHOWN_OUTCOMES = 3;

function familyOf(op: Operation, families: Map<number, Family>): Family {
  return 'sock' in op ? (families.get(op.sock) ?? 'inet') : 'inet';
}

function passLine(p: PassRecord): string {
  const draw = p.index !== null && p.count !== null ? `, index ${p.index} of ${p.count} (prio ${p.prio ?? 0})` : '';
  return `pass ${p.pass}: ${p.path} (${p.result})${draw} -> ${formatSockAddr(p.family, p.destOut)}`;
}

/** One outcome: per operation what was observed and, for connects, the passes that ran. */
export function outcomeLines(c: Case, t: Trace): string[] {
  const families = socketFamilies(c.ops);
  const out: string[] = [];
  c.ops.forEach((op, i) => {
    const o = t.observations[i];
    const text = o ? formatObservation(o, familyOf(op, families)) : '';
    out.push(`  ${i + 1}. ${text || '-'}`);
    for (const p of t.passes[i] ?? []) out.push(`       ${passLine(p)}`);
  });
  return out;
}

function exampleLines(ex: Example): string[] {
  const lines = [...formatCase(ex.case), ''];
  const n = ex.traces.length;
  lines.push(n === 1 ? 'the model allows one outcome' : `the model allows ${n} outcomes (one per distinct load-balancing draw)`);
  ex.traces.slice(0, SHOWN_OUTCOMES).forEach((t, i) => {
    const v = ex.verdicts[i];
    const status = v?.status === 'holds' ? 'exercises the invariant, holds' : 'does not exercise it';
    lines.push(`outcome ${i + 1}: ${status}`, ...outcomeLines(ex.case, t));
  });
  if (n > SHOWN_OUTCOMES) lines.push(`... and ${n - SHOWN_OUTCOMES} more outcome${n - SHOWN_OUTCOMES === 1 ? '' : 's'}`);
  return lines;
}

function checkedOn(inv: Invariant): string {
  return inv.needs === 'passes' ? "the reference model's outcomes (it reads the model's pass records)" : "the reference model's outcomes and every executor's observations";
}

export function invariantSummary(list: readonly Invariant[]): string[] {
  return mdTable(
    ['Invariant', 'Checked on'],
    list.map((inv) => [`[${code(inv.name)}](#${anchor(inv.name)})`, inv.needs === 'passes' ? 'model' : 'model and executors']),
  );
}

/**
 * One invariant: statement, where it is checked, and its example. `shown` maps a case already
 * printed in full to the invariant it was printed under, so a shared case appears once.
 */
export function invariantSection(inv: Invariant, ex: Example | null, shown: Map<Case, string>): string[] {
  const out = [`### ${inv.name}`, '', `> ${inv.statement}`, '', `Checked on ${checkedOn(inv)}.`, ''];
  if (!ex) {
    out.push('**No example found**: no corpus case and no sampled case exercises this invariant. Add one to `docs/gen/corpus.ts`.', '');
    return out;
  }
  const exercised = ex.verdicts.filter((v) => v.status === 'holds').length;
  const earlier = shown.get(ex.case);
  if (earlier !== undefined) {
    const n = ex.traces.length;
    const of = n === 1 ? 'its outcome' : exercised === n ? `all ${n} of its outcomes` : `${exercised} of its ${n} outcomes`;
    out.push(`Example: the case shown under [${code(earlier)}](#${anchor(earlier)}); it exercises this invariant on ${of}.`, '');
    return out;
  }
  shown.set(ex.case, inv.name);
  const origin = ex.source === 'corpus' ? 'from `docs/gen/corpus.ts`' : 'generated (fixed seed, smallest sample that exercises it)';
  out.push(`Example: ${ex.title.charAt(0).toLowerCase()}${ex.title.slice(1)} (${origin}).`, '', ...codeBlock('text', exampleLines(ex)), '');
  return out;
}
