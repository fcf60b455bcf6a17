// Whole cases: a map state, whether the namespace starts enrolled, and socket operations.
// Single-connect cases are one socket with one connect (and maybe sends and a second connect);
// sequence cases are fc.commands runs interleaving control-plane updates with socket operations
// on up to three sockets, recorded into Operation[] by `recordOperations`.

import fc from 'fast-check';
import type { Family } from '../model/address.js';
import type { Case, MapState, Operation, Protocol, SockAddr, SocketId, StateKind } from '../model/domain.js';
import { EMPTY_STATE } from '../model/domain.js';
import { applyIntents, consistentState, intentArb, type Intent } from './control-plane.js';
import { destChoiceArb, familyArb, protocolArb, resolveDestination, type DestChoice } from './connect.js';
import { applyRawMutations, rawMutationArb, rawState, type RawMutation } from './raw-state.js';
import { dnsCase } from './dns.js';

export type KindChoice = StateKind | 'both';
export type Shape = 'single' | 'sequence' | 'dns';

export interface KindedState {
  readonly state: MapState;
  readonly kind: StateKind;
}

/** Enrolled is the simple case; not enrolled now and then. */
export const enrolledArb: fc.Arbitrary<boolean> = fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant(true), weight: 6 }, { arbitrary: fc.constant(false), weight: 1 });

export function stateArb(kind: KindChoice): fc.Arbitrary<KindedState> {
  const consistent = consistentState().map((b): KindedState => ({ state: b.state, kind: 'consistent' }));
  const raw = rawState().map((state): KindedState => ({ state, kind: 'raw' }));
  if (kind === 'consistent') return consistent;
  if (kind === 'raw') return raw;
  return fc.oneof({ withCrossShrink: true }, consistent, raw);
}

function sometimes<T>(arb: fc.Arbitrary<T>, weightNone: number, weightSome: number): fc.Arbitrary<T | null> {
  return fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant(null), weight: weightNone }, { arbitrary: arb, weight: weightSome });
}

const messagesArb = fc.integer({ min: 1, max: 3 });

/** A second connect: the same destination again, or another one; before or after the sends. */
const secondConnectArb = fc.record({
  again: fc.oneof({ withCrossShrink: true }, { arbitrary: fc.constant('same' as const), weight: 1 }, { arbitrary: destChoiceArb, weight: 2 }),
  beforeSend: fc.boolean(),
});

/** One socket, one connect; sometimes 1-3 messages and a second connect. */
export function singleConnectCase(opts: { kind: KindChoice }): fc.Arbitrary<Case> {
  return fc
    .record({
      st: stateArb(opts.kind),
      enrolled: enrolledArb,
      family: familyArb,
      protocol: protocolArb,
      first: destChoiceArb,
      messages: sometimes(messagesArb, 3, 2),
      second: sometimes(secondConnectArb, 3, 1),
    })
    .map(({ st, enrolled, family, protocol, first, messages, second }): Case => {
      const sock = 0;
      const dest = resolveDestination(st.state, family, first);
      const ops: Operation[] = [
        { op: 'socket', sock, family, protocol },
        { op: 'connect', sock, dest },
      ];
      const send: Operation[] = messages === null ? [] : [{ op: 'send', sock, messages }];
      const again: Operation[] = [];
      if (second !== null) {
        const dest2 = second.again === 'same' ? dest : resolveDestination(st.state, family, second.again);
        again.push({ op: 'connect', sock, dest: dest2 });
      }
      if (second?.beforeSend) ops.push(...again, ...send);
      else ops.push(...send, ...again);
      return { state: st.state, kind: st.kind, enrolled, ops };
    });
}

// ---------------------------------------------------------------------------------------------
// Sequences with fc.commands.

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
    let sock = 0;
    while (m.sockets.has(sock)) sock++;
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

const sockRef = fc.nat({ max: MAX_SOCKETS - 1 });

const socketCommandArb = fc.tuple(familyArb, protocolArb).map(([f, p]): SequenceCommand => new SocketCommand(f, p));

/**
 * The command arbitraries; raw sequences may also break the state in an update. fc.commands
 * picks among them uniformly, so the common ones appear more than once to weigh them.
 */
export function sequenceCommandArbs(kind: StateKind): fc.Arbitrary<SequenceCommand>[] {
  const mutations = kind === 'raw' ? fc.array(rawMutationArb, { maxLength: 2 }) : fc.constant([]);
  const socket = socketCommandArb;
  const connect = fc.tuple(sockRef, destChoiceArb).map(([i, c]): SequenceCommand => new ConnectCommand(i, c));
  const again = fc.tuple(sockRef, fc.oneof({ withCrossShrink: true }, fc.constant('same' as const), destChoiceArb)).map(([i, c]): SequenceCommand => new ConnectAgainCommand(i, c));
  const send = fc.tuple(sockRef, messagesArb).map(([i, n]): SequenceCommand => new SendCommand(i, n));
  const close = sockRef.map((i): SequenceCommand => new CloseCommand(i));
  const apply = fc.tuple(fc.array(intentArb, { minLength: 1, maxLength: 3 }), mutations).map(([is, ms]): SequenceCommand => new ApplyCommand(is, ms, kind));
  return [socket, socket, connect, connect, connect, again, send, send, close, apply, apply];
}

/** Runs commands against a fresh sequence model starting at `initial`; returns the operations. */
export function recordOperations(cmds: Iterable<SequenceCommand>, initial: MapState = EMPTY_STATE): Operation[] {
  const recorder: SequenceRecorder = { ops: [] };
  fc.modelRun(() => ({ model: { state: initial, sockets: new Map() } as SequenceModel, real: recorder }), cmds);
  return recorder.ops;
}

export interface SequenceInput {
  readonly start: KindedState;
  readonly enrolled: boolean;
  /** Every sequence opens a socket first: without one it has nothing to observe. */
  readonly opening: SequenceCommand;
  readonly commands: Iterable<SequenceCommand>;
}

function sequenceInputOf(kind: StateKind, maxCommands: number): fc.Arbitrary<SequenceInput> {
  return fc.record({
    start: stateArb(kind),
    enrolled: enrolledArb,
    opening: socketCommandArb,
    commands: fc.commands(sequenceCommandArbs(kind), { maxCommands, size: 'max' }),
  });
}

/**
 * The parts of a sequence case, for properties that turn them into a Case inside the predicate
 * (`sequenceCaseFrom`, which runs `recordOperations` on the opening and the commands) and so get
 * fc.commands' own shrinking and replay path. The commands match the start state's kind.
 */
export function sequenceInput(opts: { kind: KindChoice; maxCommands?: number }): fc.Arbitrary<SequenceInput> {
  const maxCommands = opts.maxCommands ?? 14;
  if (opts.kind !== 'both') return sequenceInputOf(opts.kind, maxCommands);
  return fc.oneof({ withCrossShrink: true }, sequenceInputOf('consistent', maxCommands), sequenceInputOf('raw', maxCommands));
}

/** The Case a sequence input records to; the same input always gives the same Case. */
export function sequenceCaseFrom(input: SequenceInput): Case {
  return {
    state: input.start.state,
    kind: input.start.kind,
    enrolled: input.enrolled,
    ops: recordOperations([input.opening, ...input.commands], input.start.state),
  };
}

/** Operation sequences over up to three sockets, interleaved with control-plane updates. */
export function sequenceCase(opts: { kind: KindChoice; maxCommands?: number }): fc.Arbitrary<Case> {
  return sequenceInput(opts).map(sequenceCaseFrom);
}

/** The top-level entry. */
export function caseArb(opts: { kind: KindChoice; shape: Shape }): fc.Arbitrary<Case> {
  if (opts.shape === 'dns') return dnsCase({ kind: opts.kind });
  return opts.shape === 'single' ? singleConnectCase({ kind: opts.kind }) : sequenceCase({ kind: opts.kind });
}
