// The failure database: every finding is saved under .kmesh-check/failures with the objects
// (paths and content hashes) and the executor it failed on, and replayed first on later runs of
// the same objects (same paths, or the same content elsewhere) and executor until it passes there;
// only then is it removed. A finding of other objects is never judged against ours. Files are written atomically (temporary file, then
// rename), so an interrupted run leaves either the old file or the new one, never half of one.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Case, MapState, Operation } from '../model/domain.js';
import type { Counterexample } from '../properties/run.js';
import { KmeshCheckError } from '../shared/errors.js';
import { SECTION_PHASES, type SectionPhase } from '../properties/section-check.js';
import { sectionCaseProblem } from './section-saved.js';

export interface SavedFailure {
  readonly id: string;
  readonly savedAt: string;
  readonly executor: string;
  readonly invariant: string;
  /** The finding's signature (properties/signature.ts); absent in files of older versions. */
  readonly signature?: { readonly id: string; readonly text: string };
  readonly phase: string;
  readonly seed: number;
  readonly path: string;
  readonly case: Case;
  /** Object paths (absolute) the failure was found on; null for the model executor. */
  readonly objects: Record<string, string> | null;
  /** sha256 of each object's content when it was found (same content elsewhere: same objects). */
  readonly objectHashes?: Record<string, string> | null;
  /** Where it was read from (not stored in the file). */
  readonly file?: string;
}

/**
 * A saved finding of the report or acceleration phase: the same record, its case that phase's
 * (ReportCase or AccelCase, checked by cli/section-saved.ts), its objects that phase's.
 */
export interface SavedSectionFailure extends Omit<SavedFailure, 'case' | 'phase'> {
  readonly phase: SectionPhase;
  readonly case: unknown;
}

export type AnySavedFailure = SavedFailure | SavedSectionFailure;

export function isSectionFailure(f: AnySavedFailure): f is SavedSectionFailure {
  return (SECTION_PHASES as readonly string[]).includes(f.phase);
}

/** What the database keeps of a finding of any phase. */
export interface FindingToSave {
  readonly invariant: string;
  readonly signature: { readonly id: string; readonly text: string };
  readonly phase: string;
  readonly seed: number;
  readonly path: string;
  readonly case: unknown;
}

/** Content hash of each object file (null for a file that cannot be read). */
export function hashObjects(objects: Record<string, string>): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [role, path] of Object.entries(objects)) {
    try {
      out[role] = createHash('sha256').update(readFileSync(path)).digest('hex');
    } catch {
      out[role] = null;
    }
  }
  return out;
}

/** Writes a file atomically: a reader (or an interrupted writer) never sees half of it. */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** What a run is checking: its executor and, unless it is the model, its objects. */
export interface RunIdentity {
  readonly executor: string;
  /** Resolved object paths by role (null for the model executor). */
  readonly objects: Record<string, string> | null;
  /** True when the run checks our own objects (no --objects). */
  readonly ours?: boolean;
}

export interface ListResult {
  readonly failures: SavedFailure[];
  /** Saved findings of the report and acceleration phases (replayed by those phases). */
  readonly sections: SavedSectionFailure[];
  /** One line per file that could not be used, naming it. */
  readonly invalid: string[];
}

export class FailureDb {
  constructor(readonly dir: string) {}

  static at(root: string): FailureDb {
    return new FailureDb(join(root, '.kmesh-check', 'failures'));
  }

  private file(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** Paths of a saved failure and of its exports (regression test, bpftool batch file). */
  files(id: string): { json: string; test: string; bpftool: string } {
    return { json: this.file(id), test: join(this.dir, `${id}.test.ts`), bpftool: join(this.dir, `${id}.bpftool`) };
  }

  save(cx: Counterexample, run: RunIdentity): SavedFailure {
    return this.saveFinding({ invariant: cx.failure.invariant, signature: cx.signature, phase: cx.phase, seed: cx.seed, path: cx.path, case: cx.case }, run) as SavedFailure;
  }

  saveFinding(cx: FindingToSave, run: RunIdentity): AnySavedFailure {
    const objects = run.objects ? Object.fromEntries(Object.entries(run.objects).map(([k, v]) => [k, resolve(v)])) : null;
    const objectHashes = objects ? (hashObjects(objects) as Record<string, string>) : null;
    const id = createHash('sha256')
      .update(JSON.stringify([cx.case, run.executor, objectHashes]))
      .digest('hex')
      .slice(0, 12);
    const entry = {
      id,
      savedAt: new Date().toISOString(),
      executor: run.executor,
      invariant: cx.invariant,
      signature: { id: cx.signature.id, text: cx.signature.text },
      phase: cx.phase,
      seed: cx.seed,
      path: cx.path,
      case: cx.case,
      objects,
      objectHashes,
    } as AnySavedFailure;
    mkdirSync(this.dir, { recursive: true });
    writeAtomic(this.file(id), JSON.stringify(entry, null, 2) + '\n');
    return entry;
  }

  /** Every readable, valid saved failure; every other .json file named in `invalid`. */
  list(): ListResult {
    if (!existsSync(this.dir)) return { failures: [], sections: [], invalid: [] };
    const failures: SavedFailure[] = [];
    const sections: SavedSectionFailure[] = [];
    const invalid: string[] = [];
    for (const n of readdirSync(this.dir)
      .filter((x) => x.endsWith('.json'))
      .sort()) {
      try {
        const f = readSavedFailure(join(this.dir, n));
        if (isSectionFailure(f)) sections.push(f);
        else failures.push(f);
      } catch (e) {
        invalid.push((e as Error).message);
      }
    }
    return { failures, sections, invalid };
  }

  /** Removes a saved failure, its exports, and the file it was read from (if renamed). */
  remove(id: string, file?: string): void {
    for (const f of Object.values(this.files(id))) rmSync(f, { force: true });
    if (file) rmSync(file, { force: true });
  }
}

/**
 * Whether a saved failure belongs to a run: the same executor, and the same objects: at the same
 * paths (rebuilt after a fix: that is where it must be replayed to be found fixed) or with the
 * same content elsewhere (moved or copied).
 */
export function belongsTo(saved: AnySavedFailure, run: RunIdentity): boolean {
  if (saved.executor !== run.executor) return false;
  if (saved.executor === 'model') return true;
  // Files of earlier versions wrote null for our own objects.
  if (!saved.objects) return run.ours === true;
  if (!run.objects) return false;
  const roles = [...new Set([...Object.keys(saved.objects), ...Object.keys(run.objects)])];
  const samePaths = roles.every((r) => resolve(saved.objects?.[r] ?? '') === resolve(run.objects?.[r] ?? ''));
  if (samePaths) return true;
  if (!saved.objectHashes) return false;
  const mine = hashObjects(run.objects);
  return roles.every((r) => saved.objectHashes?.[r] !== undefined && saved.objectHashes[r] === mine[r]);
}

/** The objects of a saved failure, as --objects would give them. */
export function objectsArgument(objects: Record<string, string> | null): string | null {
  if (!objects) return null;
  return ['connect', 'sockops', 'sendmsg']
    .filter((r) => objects[r])
    .map((r) => `${r}=${objects[r]}`)
    .join(',');
}

// ---- validation: the shape and the values, so that a bad file is one line and never a crash ------

export const isInt = (v: unknown, min = -Infinity, max = Infinity): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
export const isStr = (v: unknown): v is string => typeof v === 'string';
export const isAddr = (v: unknown): boolean => isStr(v) && v.length > 0 && v.length <= 64 && /^[0-9a-fA-F:.]+$/.test(v);
export const isPort = (v: unknown): boolean => isInt(v, 0, 0xffff);
/** A port in a map: a u32 (domain.ts MapPort). */
const isMapPort = (v: unknown): boolean => isInt(v, 0, 0xffffffff);
const isWaypoint = (w: unknown): boolean => typeof w === 'object' && w !== null && isAddr((w as { addr: unknown }).addr) && isMapPort((w as { port: unknown }).port);
const intArray = (v: unknown, len: number | null, min: number, max: number): boolean => Array.isArray(v) && (len === null || v.length === len) && v.every((x) => isInt(x, min, max));

export function stateProblem(s: unknown, where: string): string | null {
  if (typeof s !== 'object' || s === null) return `${where} is not a map state`;
  const st = s as Partial<Record<keyof MapState, unknown>>;
  for (const k of ['frontends', 'services', 'endpoints', 'backends'] as const) {
    if (!Array.isArray(st[k])) return `${where}.${k} is not a list`;
  }
  const U32 = 0xffffffff;
  for (const [i, f] of (st.frontends as unknown[]).entries()) {
    const x = f as Record<string, unknown>;
    if (!isAddr(x?.addr) || !isInt(x?.upstreamId, 0, U32)) return `${where}.frontends[${i}] needs an address and an integer upstreamId`;
  }
  for (const [i, v] of (st.services as unknown[]).entries()) {
    const x = v as Record<string, unknown>;
    if (
      !isInt(x?.id, 0, U32) ||
      !intArray(x?.endpointCounts, 7, 0, U32) ||
      !isInt(x?.lbPolicy, 0, U32) ||
      !intArray(x?.servicePorts, 10, 0, U32) ||
      !intArray(x?.targetPorts, 10, 0, U32) ||
      !isWaypoint(x?.waypoint)
    ) {
      return `${where}.services[${i}] has a field missing or out of range (id, endpointCounts[7], lbPolicy, servicePorts[10], targetPorts[10], waypoint)`;
    }
  }
  for (const [i, e] of (st.endpoints as unknown[]).entries()) {
    const x = e as Record<string, unknown>;
    if (!isInt(x?.serviceId, 0, U32) || !isInt(x?.prio, 0, U32) || !isInt(x?.index, 0, U32) || !isInt(x?.backendUid, 0, U32))
      return `${where}.endpoints[${i}] needs integer serviceId, prio, index and backendUid`;
  }
  for (const [i, b] of (st.backends as unknown[]).entries()) {
    const x = b as Record<string, unknown>;
    if (!isInt(x?.uid, 0, U32) || !isAddr(x?.addr) || !intArray(x?.services, null, 0, U32) || (x.services as unknown[]).length > 10 || !isWaypoint(x?.waypoint)) {
      return `${where}.backends[${i}] needs an integer uid, an address, at most 10 service ids and a waypoint`;
    }
  }
  return null;
}

/** Every operation a saved case may hold (model/domain.ts, Operation). */
const OPS: readonly Operation['op'][] = ['socket', 'connect', 'send', 'close', 'sendto', 'recvfrom', 'deliver', 'apply'];

function sockAddrProblem(a: unknown, where: string): string | null {
  const d = a as Record<string, unknown> | null | undefined;
  return d && typeof d === 'object' && isAddr(d.addr) && isPort(d.port) ? null : `${where} needs an address and a port in 0..65535`;
}

function opProblem(op: unknown, i: number): string | null {
  const o = op as Partial<Record<string, unknown>> & { op?: Operation['op'] };
  const where = `case.ops[${i}]`;
  if (typeof o !== 'object' || o === null) return `${where} is not an operation`;
  if (o.op === 'apply') return stateProblem(o.state, `${where}.state`);
  if (!isInt(o.sock, 0, 0xffff)) return `${where}.sock is not a socket number`;
  switch (o.op) {
    case 'socket':
      if (!(o.family === 'inet' || o.family === 'inet6') || !(o.protocol === 'tcp' || o.protocol === 'udp')) return `${where} needs family inet|inet6 and protocol tcp|udp`;
      return o.bindTo === undefined || isAddr(o.bindTo) ? null : `${where}.bindTo is not an address`;
    case 'connect':
      return sockAddrProblem(o.dest, `${where}.dest`);
    case 'send':
      return isInt(o.messages, 0, 1000) ? null : `${where}.messages must be an integer in 0..1000`;
    case 'close':
    case 'recvfrom':
      return null;
    // The datagram operations of section 6: a DNS phase's failures are saved with them.
    case 'sendto':
      return sockAddrProblem(o.dest, `${where}.dest`) ?? (isInt(o.n, 0, 1000) ? null : `${where}.n must be an integer in 0..1000`);
    case 'deliver':
      return sockAddrProblem(o.from, `${where}.from`);
    default:
      return `${where}.op ${JSON.stringify(o.op)} is not ${OPS.join('|')}`;
  }
}

/** Object roles of the routing objects, the report phase's cgroup_skb object and the acceleration pair. */
const OBJECT_ROLES = ['connect', 'sockops', 'sendmsg', 'skb', 'ops', 'redirect'];

/** What is wrong with a saved failure's data, or null. */
export function savedFailureProblem(data: unknown): string | null {
  if (typeof data !== 'object' || data === null) return 'not a JSON object';
  const d = data as Record<string, unknown>;
  if (!isStr(d.id) || !/^[0-9a-f]{6,64}$/.test(d.id)) return '"id" is missing or not hex';
  if (!isStr(d.executor) || !['kernel', 'vm', 'model'].includes(d.executor)) return '"executor" must be kernel, vm or model';
  if (!isStr(d.invariant)) return '"invariant" is missing';
  // Random phases replay from fast-check paths (0:3:1), the exhaustive phase from choice sequences (12.0.2).
  if (!isStr(d.phase) || !isInt(d.seed, -(2 ** 31), 2 ** 32) || !isStr(d.path) || !/^[0-9:.]*$/.test(d.path)) return '"phase", "seed" or "path" is missing or invalid';
  if (d.objects !== null && d.objects !== undefined) {
    if (typeof d.objects !== 'object' || !Object.entries(d.objects as object).every(([k, v]) => OBJECT_ROLES.includes(k) && isStr(v))) return `"objects" must map ${OBJECT_ROLES.join('|')} to paths`;
  }
  if ((SECTION_PHASES as readonly string[]).includes(d.phase)) return sectionCaseProblem(d.phase as SectionPhase, d.case);
  const c = d.case as Record<string, unknown> | undefined;
  if (!c || typeof c !== 'object') return 'no "case"';
  if (typeof c.enrolled !== 'boolean' || (c.kind !== 'consistent' && c.kind !== 'raw') || !Array.isArray(c.ops)) return '"case" needs kind, enrolled and ops';
  if (c.enrolmentWrite !== undefined && !isInt(c.enrolmentWrite, 0, 0xffffffff)) return '"case.enrolmentWrite" must be a u32';
  if (c.enrolmentKeys !== undefined && ((c.enrolmentKeys !== 'cookie' && c.enrolmentKeys !== 'locals') || c.enrolmentWrite !== 0)) {
    return '"case.enrolmentKeys" must be cookie or locals, beside "case.enrolmentWrite": 0, or absent';
  }
  if (c.monitoringOff !== undefined && c.monitoringOff !== true) return '"case.monitoringOff" must be true or absent';
  const sp = stateProblem(c.state, 'case.state');
  if (sp) return sp;
  for (const [i, op] of (c.ops as unknown[]).entries()) {
    const p = opProblem(op, i);
    if (p) return p;
  }
  return null;
}

/** Reads one saved failure; a one-line KmeshCheckError naming the file when it is not usable. */
export function readSavedFailure(path: string): AnySavedFailure {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KmeshCheckError('codec', `${path}: not a readable saved failure (${(e as Error).message.split('\n')[0]}); skipped: delete it or restore it from version control`);
  }
  const problem = savedFailureProblem(data);
  if (problem) throw new KmeshCheckError('codec', `${path}: not a valid saved failure (${problem}); skipped: delete it or restore it from version control`);
  return { ...(data as AnySavedFailure), file: path };
}
