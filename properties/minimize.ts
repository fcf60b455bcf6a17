// 1-minimal counterexamples. fast-check's shrinking gets a failing case small; this pass makes it
// 1-minimal: removing any single map entry or operation makes the failure go away. For a
// control-plane-consistent case only removals that keep the state consistent are tried, so a
// finding on a consistent state is never turned into a robustness (raw-state) finding.

import { DNS_PROXY_UID, type Case, type MapState, type Operation } from '../model/domain.js';

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
    // A bound socket's bind, removed: the same socket, autobound by the kernel when it sends.
    if (op.op === 'socket' && op.bindTo !== undefined) {
      const unbound: Operation = { op: 'socket', sock: op.sock, family: op.family, protocol: op.protocol };
      out.push({ ...c, ops: c.ops.map((o, j) => (j === i ? unbound : o)) });
    }
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

/** Every state of a case: the starting one and those its applies write. */
function statesOf(c: Case): MapState[] {
  return [c.state, ...c.ops.flatMap((o) => (o.op === 'apply' ? [o.state] : []))];
}

/**
 * The case with each backend whose uid is also a service id given an unused uid, its endpoints
 * following it (a frontend that names a service keeps it: the lookup finds the service first),
 * or none when no uid clashes. The data path routes it alike, and it breaks one section-5 rule
 * fewer: the exhaustive phase's small states give services and backends one id, which labels
 * its findings raw when the clash plays no part in them.
 */
export function clashRenamings(c: Case): Case[] {
  const states = statesOf(c);
  const serviceIds = new Set(states.flatMap((s) => s.services.map((v) => v.id)));
  const clashing = new Set(states.flatMap((s) => s.backends.map((b) => b.uid)).filter((uid) => uid !== DNS_PROXY_UID && serviceIds.has(uid)));
  if (!clashing.size) return [];
  const used = new Set<number>(serviceIds);
  for (const s of states) {
    for (const b of s.backends) used.add(b.uid);
    for (const f of s.frontends) used.add(f.upstreamId);
    for (const e of s.endpoints) used.add(e.backendUid).add(e.serviceId);
  }
  const renamed = new Map<number, number>();
  let next = 1;
  for (const uid of [...clashing].sort((a, b) => a - b)) {
    while (used.has(next)) next++;
    renamed.set(uid, next);
    used.add(next);
  }
  const uidOf = (uid: number) => renamed.get(uid) ?? uid;
  const rename = (s: MapState): MapState => {
    const ids = new Set(s.services.map((v) => v.id));
    return {
      // A frontend that names no service of its state meant the backend.
      frontends: s.frontends.map((f) => (ids.has(f.upstreamId) ? f : { ...f, upstreamId: uidOf(f.upstreamId) })),
      services: s.services,
      endpoints: s.endpoints.map((e) => ({ ...e, backendUid: uidOf(e.backendUid) })),
      backends: s.backends.map((b) => ({ ...b, uid: uidOf(b.uid) })),
    };
  };
  return [{ ...c, state: rename(c.state), ops: c.ops.map((o) => (o.op === 'apply' ? { op: 'apply', state: rename(o.state) } : o)) }];
}

/**
 * A case enrolled by km_manage writes, enrolled by control connects instead, then by writes of
 * both kinds of key, then with the ABI's value 0: a finding that still fails so needs no written
 * enrolment, no key left out, or no raw value, to show.
 */
export function enrolmentSimplifications(c: Case): Case[] {
  if (c.enrolmentWrite === undefined) return [];
  const { enrolmentWrite, enrolmentKeys, ...connects } = c;
  const out: Case[] = [connects];
  if (enrolmentKeys !== undefined) out.push({ ...connects, enrolmentWrite });
  if (enrolmentWrite !== 0) out.push({ ...c, enrolmentWrite: 0 });
  return out;
}

/** A case with reports turned off, with them on instead: a finding that still fails needs no monitoring change to show. */
export function monitoringSimplification(c: Case): Case | null {
  const { monitoringOff, ...on } = c;
  return monitoringOff ? on : null;
}

export interface MinimizeOptions {
  /** Returns the section-5 violations of a state; used to keep consistent cases consistent. */
  readonly consistencyViolations?: (state: MapState) => readonly string[];
  /** Upper bound on the number of cases tried. */
  readonly maxTries?: number;
}

function keepsKind(c: Case, opts: MinimizeOptions): boolean {
  if (c.kind !== 'consistent' || !opts.consistencyViolations) return true;
  return statesOf(c).every((s) => opts.consistencyViolations!(s).length === 0);
}

export interface Minimized {
  readonly case: Case;
  readonly tries: number;
}

/** Greedy 1-minimisation: accept any removal that still fails, until none does; then a uid clash renamed away, and a written enrolment made plainer, if it still fails. */
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
  for (const candidate of clashRenamings(current)) {
    if (++tries > maxTries) break;
    if (await fails(candidate)) current = candidate;
  }
  for (const candidate of enrolmentSimplifications(current)) {
    if (++tries > maxTries) break;
    if (await fails(candidate)) {
      current = candidate;
      break;
    }
  }
  const on = monitoringSimplification(current);
  if (on && ++tries <= maxTries && (await fails(on))) current = on;
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
