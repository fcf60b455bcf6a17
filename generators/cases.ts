// Whole cases: a map state, whether the namespace starts enrolled, and socket operations.
// Single-connect cases are one socket with one connect (and maybe sends and a second connect);
// sequence cases are command lists interleaving control-plane updates with socket operations on
// up to three sockets, recorded into Operation[] by `recordOperations` (a command whose
// precondition fails is skipped, so shrinking may drop any command).

import fc from 'fast-check';
import type { Family } from '../model/address.js';
import type { Case, MapState, Operation, Protocol, SockAddr, SocketId, StartEnrolment, StateKind } from '../model/domain.js';
import { CONTROL_ADDR, ControlPort, EMPTY_STATE, enrolmentFields } from '../model/domain.js';
import { applyIntents, consistentStateGen, intentGen, type Intent } from './control-plane.js';
import { destChoiceGen, FAMILIES, PROTOCOLS, resolveDestination, waypointedFrontendGen, type DestChoice } from './connect.js';
import { applyRawMutations, rawMutationGen, rawStateGen, type RawMutation } from './raw-state.js';
import { arb, chance, lengths, mix, Table, uniform, type Draw, type Gen } from './choices.js';
import { dnsCaseGen } from './dns.js';

export type KindChoice = StateKind | 'both';
export type Shape = 'single' | 'sequence' | 'dns';

export interface KindedState {
  readonly state: MapState;
  readonly kind: StateKind;
}

/**
 * Enrolled by control connects is the simple case; not enrolled now and then, and enrolled by
 * km_manage entries written directly now and then too: with the ABI's value 0, and in raw states
 * also with other values, which a program must not read as absent (Case.enrolmentWrite); and
 * now and then the netns cookie or the local IPs alone, so that a program that reads one kind of
 * key where the data path reads the other is seen (Case.enrolmentKeys).
 */
export const START_ENROLMENT: Readonly<Record<StateKind, Table<StartEnrolment>>> = {
  consistent: new Table<StartEnrolment>([true, false, 0, 'cookie-only', 'locals-only'], [10, 2, 2, 1, 1]),
  raw: new Table<StartEnrolment>([true, false, 0, 1, 0xffffffff, 'cookie-only', 'locals-only'], [10, 2, 1, 1, 1, 1, 1]),
};

/**
 * Connection reports turned off (Case.monitoringOff) in one case of eight, of every shape: user
 * space may do so at any time, and nothing of routing, km_socket or the TLV may change.
 */
export const MONITORING_OFF = new Table<boolean>([false, true], [7, 1]);

/** The fields a case starts with besides its maps: how it is enrolled, whether reports are on. */
export type CaseStart = Pick<Case, 'enrolled' | 'enrolmentWrite' | 'enrolmentKeys' | 'monitoringOff'>;

/** How a case of the kind starts; two entries of the tape. */
export function drawStart(d: Draw, kind: StateKind): CaseStart {
  const enrolment = enrolmentFields(d.pick(START_ENROLMENT[kind]));
  return d.pick(MONITORING_OFF) ? { ...enrolment, monitoringOff: true } : enrolment;
}

const KINDS = uniform<StateKind>(['consistent', 'raw']);

function kindedOf(kind: StateKind, d: Draw): KindedState {
  return kind === 'consistent' ? { state: consistentStateGen(d).state, kind } : { state: rawStateGen(d), kind };
}

/** A start state of the kind (either, equally often, for 'both'); one entry of the tape. */
export function stateGen(kind: KindChoice): Gen<KindedState> {
  return (d) => d.group((g) => kindedOf(kind === 'both' ? g.pick(KINDS) : kind, g));
}

export function stateArb(kind: KindChoice): fc.Arbitrary<KindedState> {
  return arb(stateGen(kind));
}

/** No sends (null) mostly, else 1-3 messages. */
const MESSAGES = mix<number | null>([[null], 3], [[1, 2, 3], 2]);
/** Where a socket connects again: where it did, anywhere, or a frontend routed via a waypoint (connect.ts waypointedFrontendGen). */
const AGAIN = new Table(['same', 'other', 'waypointed'] as const, [2, 3, 1]);

function againGen(d: Draw): DestChoice | 'same' {
  return d.group((g) => {
    const to = g.pick(AGAIN);
    return to === 'same' ? 'same' : to === 'other' ? destChoiceGen(g) : waypointedFrontendGen(g);
  });
}
const BOOLS = uniform([false, true]);
const SECOND_CONNECT = chance(3, 1);

interface SecondConnect {
  readonly again: DestChoice | 'same';
  readonly beforeSend: boolean;
}

/** A second connect: the same destination again, or another one; before or after the sends. */
const secondConnectGen: Gen<SecondConnect> = (d) => ({ again: againGen(d), beforeSend: d.pick(BOOLS) });

/** One socket, one connect; sometimes 1-3 messages and a second connect. */
export function singleConnectGen(opts: { kind: KindChoice }): Gen<Case> {
  const stGen = stateGen(opts.kind);
  return (d): Case => {
    const st = stGen(d);
    const start = drawStart(d, st.kind);
    const family = d.pick(FAMILIES);
    const protocol = d.pick(PROTOCOLS);
    const first = destChoiceGen(d);
    const messages = d.pick(MESSAGES);
    const second = d.maybe(secondConnectGen, SECOND_CONNECT);
    const sock = 0;
    const dest = resolveDestination(st.state, family, first);
    const send: Operation | null = messages === null ? null : { op: 'send', sock, messages };
    const again: Operation | null = second === null ? null : { op: 'connect', sock, dest: second.again === 'same' ? dest : resolveDestination(st.state, family, second.again) };
    const [third, fourth] = second?.beforeSend ? [again, send] : [send, again];
    // Built at its exact size (cases are kept in batches: spare room costs every copy).
    const open: Operation[] = [
      { op: 'socket', sock, family, protocol },
      { op: 'connect', sock, dest },
    ];
    const ops = third && fourth ? [...open, third, fourth] : third || fourth ? [...open, (third ?? fourth) as Operation] : open;
    return { state: st.state, kind: st.kind, ...start, ops };
  };
}

export function singleConnectCase(opts: { kind: KindChoice }): fc.Arbitrary<Case> {
  return arb(singleConnectGen(opts));
}

// ---------------------------------------------------------------------------------------------
// Sequences: commands checked against a tiny model as they are recorded (as fc.commands would).

export const MAX_SOCKETS = 3;

interface SocketModel {
  readonly family: Family;
  readonly protocol: Protocol;
  connects: number;
  lastDest: SockAddr | null;
}

/** The tiny model the commands check their preconditions against. */
export interface SequenceModel {
  state: MapState;
  readonly sockets: Map<SocketId, SocketModel>;
}

/** Where a run's operations are recorded. */
export interface SequenceRecorder {
  readonly ops: Operation[];
}

export type SequenceCommand = fc.Command<SequenceModel, SequenceRecorder>;

function openIds(m: Readonly<SequenceModel>, connectedOnly = false): SocketId[] {
  const ids: SocketId[] = [];
  for (const [id, s] of m.sockets) if (!connectedOnly || s.connects > 0) ids.push(id);
  return ids.sort((a, b) => a - b);
}

function pickId(ids: readonly SocketId[], ref: number): SocketId {
  const id = ids[ref % Math.max(1, ids.length)];
  if (id === undefined) throw new Error('no socket to act on: a command ran although its check failed');
  return id;
}

/** The lowest socket id not open. */
function freeId(m: Readonly<SequenceModel>): SocketId {
  let sock = 0;
  while (m.sockets.has(sock)) sock++;
  return sock;
}

function stringify(x: unknown): string {
  return JSON.stringify(x);
}

class SocketCommand implements SequenceCommand {
  constructor(
    readonly family: Family,
    readonly protocol: Protocol,
  ) {}
  check(m: Readonly<SequenceModel>): boolean {
    return m.sockets.size < MAX_SOCKETS;
  }
  run(m: SequenceModel, r: SequenceRecorder): void {
    const sock = freeId(m);
    m.sockets.set(sock, { family: this.family, protocol: this.protocol, connects: 0, lastDest: null });
    r.ops.push({ op: 'socket', sock, family: this.family, protocol: this.protocol });
  }
  toString(): string {
    return `socket(${this.family},${this.protocol})`;
  }
}

class ConnectCommand implements SequenceCommand {
  constructor(
    readonly ref: number,
    readonly choice: DestChoice,
  ) {}
  check(m: Readonly<SequenceModel>): boolean {
    return m.sockets.size > 0;
  }
  run(m: SequenceModel, r: SequenceRecorder): void {
    const sock = pickId(openIds(m), this.ref);
    const s = m.sockets.get(sock);
    if (!s) throw new Error(`socket ${sock} vanished from the sequence model`);
    const dest = resolveDestination(m.state, s.family, this.choice);
    s.connects++;
    s.lastDest = dest;
    r.ops.push({ op: 'connect', sock, dest });
  }
  toString(): string {
    return `connect(${this.ref},${stringify(this.choice)})`;
  }
}

/** A connect on a socket that has connected before: same destination or a new one. */
class ConnectAgainCommand implements SequenceCommand {
  constructor(
    readonly ref: number,
    readonly choice: DestChoice | 'same',
  ) {}
  check(m: Readonly<SequenceModel>): boolean {
    return openIds(m, true).length > 0;
  }
  run(m: SequenceModel, r: SequenceRecorder): void {
    const sock = pickId(openIds(m, true), this.ref);
    const s = m.sockets.get(sock);
    if (!s) throw new Error(`socket ${sock} vanished from the sequence model`);
    const dest = this.choice === 'same' ? s.lastDest : resolveDestination(m.state, s.family, this.choice);
    if (!dest) throw new Error(`socket ${sock} has no earlier destination: a command ran although its check failed`);
    s.connects++;
    s.lastDest = dest;
    r.ops.push({ op: 'connect', sock, dest });
  }
  toString(): string {
    return `connectAgain(${this.ref},${stringify(this.choice)})`;
  }
}

class SendCommand implements SequenceCommand {
  constructor(
    readonly ref: number,
    readonly messages: number,
  ) {}
  check(m: Readonly<SequenceModel>): boolean {
    return openIds(m, true).length > 0;
  }
  run(m: SequenceModel, r: SequenceRecorder): void {
    r.ops.push({ op: 'send', sock: pickId(openIds(m, true), this.ref), messages: this.messages });
  }
  toString(): string {
    return `send(${this.ref},${this.messages})`;
  }
}

class CloseCommand implements SequenceCommand {
  constructor(readonly ref: number) {}
  check(m: Readonly<SequenceModel>): boolean {
    return m.sockets.size > 0;
  }
  run(m: SequenceModel, r: SequenceRecorder): void {
    const sock = pickId(openIds(m), this.ref);
    m.sockets.delete(sock);
    r.ops.push({ op: 'close', sock });
  }
  toString(): string {
    return `close(${this.ref})`;
  }
}

/**
 * The namespace enrols or withdraws from one of its local IPs: a control connect from a socket of
 * its own, closed after (as an agent would do it). km_manage keeps the namespace and that local
 * IP only, so a later connect from another local IP (the other family, or v4-mapped against ::1)
 * runs in an enrolled namespace from a local IP that is not: the case section 4's sockhash rule
 * is about, which control connects on the case's own sockets reached about once in 20,000 cases.
 * Mostly over TCP; over UDP one time in four, which the connect hooks treat alike (the control
 * rule names no protocol) and which records no local IP (no TCP connect for sockops to see).
 */
class EnrolmentCommand implements SequenceCommand {
  constructor(
    readonly family: Family,
    readonly port: number,
    readonly protocol: Protocol,
  ) {}
  check(m: Readonly<SequenceModel>): boolean {
    return m.sockets.size < MAX_SOCKETS;
  }
  run(m: SequenceModel, r: SequenceRecorder): void {
    const sock = freeId(m);
    r.ops.push({ op: 'socket', sock, family: this.family, protocol: this.protocol }, { op: 'connect', sock, dest: { addr: CONTROL_ADDR[this.family], port: this.port } }, { op: 'close', sock });
  }
  toString(): string {
    return `enrolment(${this.family},${this.port},${this.protocol})`;
  }
}

/** A control-plane update: intents (and, for raw cases, breakages) applied to the current maps. */
class ApplyCommand implements SequenceCommand {
  constructor(
    readonly intents: readonly Intent[],
    readonly mutations: readonly RawMutation[],
    readonly kind: StateKind,
  ) {}
  check(): boolean {
    return true;
  }
  run(m: SequenceModel, r: SequenceRecorder): void {
    const lenient = this.kind === 'raw';
    const state = applyRawMutations(applyIntents(m.state, this.intents, { lenient }).state, this.mutations);
    m.state = state;
    r.ops.push({ op: 'apply', state });
  }
  toString(): string {
    return `apply(${stringify(this.intents)}${this.mutations.length ? `,${stringify(this.mutations)}` : ''})`;
  }
}

type CommandKind = 'socket' | 'connect' | 'again' | 'send' | 'close' | 'apply' | 'enrolment';
/** How often each command comes: sockets and connects most, updates and enrolment changes now and then. */
const COMMANDS = new Table<CommandKind>(['socket', 'connect', 'again', 'send', 'close', 'apply', 'enrolment'], [2, 3, 1, 2, 1, 2, 1]);
const ENROLMENT_PORTS = uniform<number>([ControlPort.enrol, ControlPort.withdraw]);
const CONTROL_PROTOCOLS = new Table<Protocol>(['tcp', 'udp'], [3, 1]);
const INTENT_COUNTS = lengths(1, 3);
const RAW_MUTATIONS = lengths(0, 2);

function socketCommandGen(d: Draw): SequenceCommand {
  return new SocketCommand(d.pick(FAMILIES), d.pick(PROTOCOLS));
}

/** One command; raw sequences may also break the state in an update. One entry of the tape. */
export function sequenceCommandGen(kind: StateKind): Gen<SequenceCommand> {
  return (d) =>
    d.group((g): SequenceCommand => {
      switch (g.pick(COMMANDS)) {
        case 'socket':
          return socketCommandGen(g);
        case 'connect':
          return new ConnectCommand(g.int(MAX_SOCKETS), destChoiceGen(g));
        case 'again':
          return new ConnectAgainCommand(g.int(MAX_SOCKETS), againGen(g));
        case 'send':
          return new SendCommand(g.int(MAX_SOCKETS), 1 + g.int(3));
        case 'close':
          return new CloseCommand(g.int(MAX_SOCKETS));
        case 'enrolment':
          return new EnrolmentCommand(g.pick(FAMILIES), g.pick(ENROLMENT_PORTS), g.pick(CONTROL_PROTOCOLS));
        case 'apply':
          return new ApplyCommand(g.list(intentGen, INTENT_COUNTS, 1), kind === 'raw' ? g.list(rawMutationGen, RAW_MUTATIONS) : [], kind);
      }
    });
}

/** Runs commands against a fresh sequence model starting at `initial`; returns the operations. */
export function recordOperations(cmds: Iterable<SequenceCommand>, initial: MapState = EMPTY_STATE): Operation[] {
  const recorder: SequenceRecorder = { ops: [] };
  const model: SequenceModel = { state: initial, sockets: new Map() };
  for (const c of cmds) if (c.check(model)) c.run(model, recorder);
  // At its exact size: the list grew by pushes.
  return recorder.ops.slice();
}

export interface SequenceInput {
  readonly start: KindedState;
  /** How the case starts besides its maps (drawStart). */
  readonly begins: CaseStart;
  /** Every sequence opens a socket first: without one it has nothing to observe. */
  readonly opening: SequenceCommand;
  readonly commands: readonly SequenceCommand[];
}

/** Commands a sequence holds at most after its opening socket. */
export const MAX_COMMANDS = 14;

/**
 * The parts of a sequence case, for properties that turn them into a Case inside the predicate
 * (`sequenceCaseFrom`, which runs `recordOperations` on the opening and the commands). The
 * commands match the start state's kind.
 */
export function sequenceInputGen(opts: { kind: KindChoice; maxCommands?: number }): Gen<SequenceInput> {
  const counts = lengths(0, opts.maxCommands ?? MAX_COMMANDS, 1, opts.maxCommands ?? MAX_COMMANDS);
  const commands = { consistent: sequenceCommandGen('consistent'), raw: sequenceCommandGen('raw') };
  return (d) =>
    d.group((g) => {
      const start = kindedOf(opts.kind === 'both' ? g.pick(KINDS) : opts.kind, g);
      return { start, begins: drawStart(g, start.kind), opening: socketCommandGen(g), commands: g.list(commands[start.kind], counts) };
    });
}

export function sequenceInput(opts: { kind: KindChoice; maxCommands?: number }): fc.Arbitrary<SequenceInput> {
  return arb(sequenceInputGen(opts));
}

/** The Case a sequence input records to; the same input always gives the same Case. */
export function sequenceCaseFrom(input: SequenceInput): Case {
  return {
    state: input.start.state,
    kind: input.start.kind,
    ...input.begins,
    ops: recordOperations([input.opening, ...input.commands], input.start.state),
  };
}

/** Operation sequences over up to three sockets, interleaved with control-plane updates. */
export function sequenceCaseGen(opts: { kind: KindChoice; maxCommands?: number }): Gen<Case> {
  const input = sequenceInputGen(opts);
  return (d) => sequenceCaseFrom(input(d));
}

export function sequenceCase(opts: { kind: KindChoice; maxCommands?: number }): fc.Arbitrary<Case> {
  return arb(sequenceCaseGen(opts));
}

/** The generator of a case shape. */
export function caseGen(opts: { kind: KindChoice; shape: Shape }): Gen<Case> {
  if (opts.shape === 'dns') return dnsCaseGen({ kind: opts.kind });
  return opts.shape === 'single' ? singleConnectGen({ kind: opts.kind }) : sequenceCaseGen({ kind: opts.kind });
}

/** The top-level entry. */
export function caseArb(opts: { kind: KindChoice; shape: Shape }): fc.Arbitrary<Case> {
  return arb(caseGen(opts));
}
