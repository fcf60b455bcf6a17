// 1-minimal counterexamples. fast-check's shrinking gets a failing case small; this pass makes it
// 1-minimal: removing any single map entry or operation makes the failure go away. For a
// control-plane-consistent case only removals that keep the state consistent are tried, so a
// finding on a consistent state is never turned into a robustness (raw-state) finding.

import type { Case, MapState, Operation } from '../model/domain.js';

type Entries = keyof MapState;
const ENTRY_KINDS: readonly Entries[] = ['frontends', 'services', 'endpoints', 'backends'];

function withoutEntry(state: MapState, kind: Entries, index: number): MapState {
  return { ...state, [kind]: state[kind].filter((_, i) => i !== index) };
}

function stateRemovals(state: MapState): MapState[] {
  const out: MapState[] = [];
  for (const kind of ENTRY_KINDS) {
    for (let i = 0; i < state[kind].length; i++) out.push(withoutEntry(state, kind, i));
  }
  return out;
}

/** Operations only make sense on sockets created earlier and not yet closed. */
export function operationsAreValid(ops: readonly Operation[]): boolean {
  const open = new Set<number>();
  for (const op of ops) {
    if (op.op === 'apply') continue;
    if (op.op === 'socket') {
      if (open.has(op.sock)) return false;
      open.add(op.sock);
      continue;
    }
    if (!open.has(op.sock)) return false;
    if (op.op === 'close') open.delete(op.sock);
  }
  return true;
}

/** Every case that differs from `c` by one removed map entry or operation (valid ones only). */
export function singleRemovals(c: Case): Case[] {
  const out: Case[] = [];
  for (const state of stateRemovals(c.state)) out.push({ ...c, state });
  c.ops.forEach((op, i) => {
    const ops = c.ops.filter((_, j) => j !== i);
    if (operationsAreValid(ops)) out.push({ ...c, ops });
    if (op.op === 'apply') {
      for (const state of stateRemovals(op.state)) {
        out.push({ ...c, ops: c.ops.map((o, j) => (j === i ? { op: 'apply', state } : o)) });
      }
    }
  });
  return out;
}

/** Removing a socket together with all its operations: a bigger step that often succeeds first. */
function socketRemovals(c: Case): Case[] {
  const socks = new Set(c.ops.flatMap((o) => (o.op === 'socket' ? [o.sock] : [])));
  return [...socks].map((s) => ({ ...c, ops: c.ops.filter((o) => o.op === 'apply' || o.sock !== s) }));
}

export interface MinimizeOptions {
  /** Returns the section-5 violations of a state; used to keep consistent cases consistent. */
  readonly consistencyViolations?: (state: MapState) => readonly string[];
  /** Upper bound on the number of cases tried. */
  readonly maxTries?: number;
}

function keepsKind(c: Case, opts: MinimizeOptions): boolean {
  if (c.kind !== 'consistent' || !opts.consistencyViolations) return true;
  const states = [c.state, ...c.ops.flatMap((o) => (o.op === 'apply' ? [o.state] : []))];
  return states.every((s) => opts.consistencyViolations!(s).length === 0);
}

export interface Minimized {
  readonly case: Case;
  readonly tries: number;
}

/** Greedy 1-minimisation: accept any removal that still fails, until none does. */
export async function minimize(start: Case, fails: (c: Case) => Promise<boolean>, opts: MinimizeOptions = {}): Promise<Minimized> {
  const maxTries = opts.maxTries ?? 5_000;
  let current = start;
  let tries = 0;
  let progress = true;
  while (progress && tries < maxTries) {
    progress = false;
    for (const candidate of [...socketRemovals(current), ...singleRemovals(current)]) {
      if (!keepsKind(candidate, opts)) continue;
      if (++tries > maxTries) break;
      if (await fails(candidate)) {
        current = candidate;
        progress = true;
        break;
      }
    }
  }
  return { case: current, tries };
}

/** True when no single removal (that keeps the case's kind) still fails. */
export async function isOneMinimal(c: Case, fails: (c: Case) => Promise<boolean>, opts: MinimizeOptions = {}): Promise<boolean> {
  for (const candidate of singleRemovals(c)) {
    if (!keepsKind(candidate, opts)) continue;
    if (await fails(candidate)) return false;
  }
  return true;
}

/** Size of a case: map entries plus operations (what 1-minimality is about). */
export function caseSize(c: Case): number {
  const entries = (s: MapState) => ENTRY_KINDS.reduce((n, k) => n + s[k].length, 0);
  return entries(c.state) + c.ops.length + c.ops.reduce((n, o) => n + (o.op === 'apply' ? entries(o.state) : 0), 0);
}
