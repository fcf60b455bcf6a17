// Program-level explanation of a finding: the shrunk case run once more, on the VM with tracing
// and the same objects (whatever executor found it), beside the reference model's path for the
// same case. It says what the compiled program did (map lookups, helper results, the destination
// it wrote, tail calls, the storage it left, with source lines) where the report only says what was
// observed. The VM run traced is the one of the case's outcomes the model does not allow, when
// there is one (random load balancing: the VM explores every draw).

import type { Case, Observation } from '../model/domain.js';
import type { Environment } from '../model/environment.js';
import type { ObjectPaths } from '../model/executor.js';
import { outcomes, type PassRecord } from '../model/impl/index.js';
import { formatSockAddr, sockAddrText } from '../model/address.js';
import { traceKey } from '../properties/observation.js';
import { formatObservation, formatOperation, socketFamilies } from '../properties/format.js';
import type { TraceEvent } from '../bpf/vm/trace.js';

export interface ExplainedStep {
  /** 1-based, as in the counterexample's operation list. */
  readonly operation: number;
  readonly text: string;
  /** The model's passes for this operation (each distinct path over its allowed outcomes). */
  readonly model: string[];
  /** What the programs did for this operation, in order. */
  readonly program: string[];
  /** What the VM run observed. */
  readonly observed: string;
}

export interface Explanation {
  /** Whether the traced VM run is one the model does not allow (else: the first VM outcome). */
  readonly divergent: boolean;
  readonly steps: ExplainedStep[];
  readonly events: TraceEvent[];
}

function passText(p: PassRecord): string {
  const parts = [`pass ${p.pass} ${formatSockAddr(p.family, p.destIn)}: path ${p.path} -> ${p.result}`];
  if (p.serviceId !== null) parts.push(`service ${p.serviceId}`);
  if (p.count !== null) parts.push(`count[${p.prio ?? 0}]=${p.count}`);
  if (p.index !== null) parts.push(`index ${p.index}`);
  if (p.backendUid !== null) parts.push(`backend ${p.backendUid}`);
  if (p.target) parts.push(`${p.target.kind} ${sockAddrText(p.target)}`);
  if (p.result === 'rewritten' || p.result === 'waypoint') parts.push(`to ${formatSockAddr(p.family, p.destOut)}`);
  if (p.storageCreated) parts.push('storage created');
  parts.push(p.recordedOriginal ? 'original recorded' : 'nothing recorded');
  return parts.join(', ');
}

function at(e: TraceEvent): string {
  return e.line ? ` [${e.line.file}:${e.line.line} ${e.line.text.length > 60 ? `${e.line.text.slice(0, 57)}...` : e.line.text}]` : '';
}

export function eventText(e: TraceEvent): string {
  switch (e.kind) {
    case 'run':
      return `${e.program} runs${e.dest ? ` on ${e.field ?? 'destination'} ${e.dest}` : ''}`;
    case 'lookup':
      return `${e.map}[${e.key}] ${e.hit ? `hit: ${e.value}` : 'miss'}${at(e)}`;
    case 'map-write':
      return `${e.helper} ${e.map}[${e.key}] = ${e.result}${at(e)}`;
    case 'helper':
      return `${e.helper} = ${e.result}${at(e)}`;
    case 'ctx-write':
      return `wrote ${e.field ?? 'destination'} ${e.dest}${e.line ? ` (seen at${at(e)})` : ''}`;
    case 'tail-call':
      return `tail call to ${e.target}${at(e)}`;
    case 'tail-call-missed':
      return `tail call to slot ${e.slot} falls through (${e.why}): ${e.program} goes on${at(e)}`;
    case 'exit':
      return `${e.program} returns ${e.verdict}${e.dest ? `, ${e.field ?? 'destination'} ${e.dest}` : ''}${e.storage ? `, storage ${e.storage}` : ''}${(e.other ?? []).map((o) => `, ${o}`).join('')}`;
  }
}

/**
 * Explains a case on the VM with the given objects; null when the VM cannot load them (the
 * finding is reported without an explanation then, and says so).
 */
export async function explainFinding(c: Case, env: Environment, objects: Partial<ObjectPaths>): Promise<Explanation | null> {
  let vmModule: typeof import('../bpf/vm/executor.js');
  try {
    vmModule = await import('../bpf/vm/executor.js');
  } catch {
    return null;
  }
  let ex;
  try {
    ex = await vmModule.createVmExecutor({ objects, environment: env });
  } catch {
    return null;
  }
  try {
    const allowed = outcomes(c, env);
    const keys = new Set(allowed.map((t) => traceKey(t.observations)));
    const runs = ex.outcomeSet(c, { maxRuns: 256 });
    const pick = runs.find((r) => !keys.has(traceKey(r.observations))) ?? runs[0];
    const traced = ex.traceCase(c, pick?.choices ?? []);
    const observed: Observation[] = traced.observations;
    const families = socketFamilies(c.ops);
    const steps: ExplainedStep[] = c.ops.map((op, i) => {
      const model = new Set<string>();
      for (const t of allowed) for (const p of t.passes[i] ?? []) model.add(passText(p));
      const o = observed[i];
      const fam = op.op !== 'apply' ? (families.get(op.sock) ?? 'inet') : 'inet';
      return {
        operation: i + 1,
        text: formatOperation(op, families),
        model: [...model].slice(0, 8),
        program: traced.events.filter((e) => e.op === i).map(eventText),
        observed: o ? formatObservation(o, fam) : '-',
      };
    });
    return { divergent: pick !== undefined && !keys.has(traceKey(pick.observations)), steps, events: traced.events };
  } catch {
    return null;
  } finally {
    await ex.close();
  }
}

/** The explanation as lines for the terminal. */
export function formatExplanation(x: Explanation): string[] {
  const lines = [`explanation (the VM on the same objects, ${x.divergent ? 'the run the model does not allow' : 'its first run'}):`];
  for (const s of x.steps) {
    if (!s.model.length && !s.program.length) continue;
    lines.push(`  ${s.operation}. ${s.text}`);
    // A waypoint chain that comes back to itself runs the same pass up to the tail-call limit: once is enough to read.
    if (s.model.length) for (const m of collapseRepeats(s.model, (l) => l.replace(/^pass \d+ /, 'pass '), passesAgain)) lines.push(`     model:   ${m}`);
    else lines.push('     model:   no connect pass');
    for (const p of collapseRepeats(s.program, (l) => l, linesAgain)) lines.push(`     program: ${p}`);
    lines.push(`     vm observed: ${s.observed}`);
  }
  return lines;
}

/** A block repeated fewer times is written out. */
const MIN_REPEATS = 3;
/** The longest block looked for (one pass of a program is a few dozen events at most). */
const MAX_BLOCK = 64;

const passesAgain = (block: number, more: number) => `(the same ${block === 1 ? 'pass' : `${block} passes`} ${more} more time${more === 1 ? '' : 's'})`;
const linesAgain = (block: number, more: number) => `(the ${block === 1 ? 'line' : `${block} lines`} above ${more} more time${more === 1 ? '' : 's'})`;

/**
 * `lines` with each run of a block repeated MIN_REPEATS times or more in a row (lines of equal
 * `key`) written once, followed by `say(block length, repeats left out)`; of the blocks starting at
 * a line, the one that covers the most lines.
 */
export function collapseRepeats(lines: readonly string[], key: (line: string) => string, say: (block: number, more: number) => string): string[] {
  const keys = lines.map(key);
  const same = (a: number, b: number, n: number) => {
    for (let k = 0; k < n; k++) if (keys[a + k] !== keys[b + k]) return false;
    return true;
  };
  const out: string[] = [];
  for (let i = 0; i < lines.length;) {
    let best = { block: 0, times: 1 };
    for (let block = 1; block <= MAX_BLOCK && i + MIN_REPEATS * block <= lines.length; block++) {
      let times = 1;
      while (i + (times + 1) * block <= lines.length && same(i, i + times * block, block)) times++;
      if (times >= MIN_REPEATS && times * block > best.times * best.block) best = { block, times };
    }
    if (best.block === 0) {
      out.push(lines[i]!);
      i++;
      continue;
    }
    out.push(...lines.slice(i, i + best.block), say(best.block, best.times - 1));
    i += best.block * best.times;
  }
  return out;
}
