// The one case loop behind every executor. It checks each operation, keeps the socket table,
// turns map states into writes (StateTracker), enrols the namespace when the case asks for it,
// makes the case's ports listen (listening.ts), builds stream views from the bytes a peer got,
// and writes every observation to one sink (ObsWriter). What happens to a socket is the layer's
// job: the kernel's real sockets (bpf/kernel/sockets.ts) or the VM's (bpf/vm/sockets.ts), so
// both executors observe the same things for the same program by construction.

import { AddressError, canonicalSockText, v4MappedInner } from '../../model/address.js';
import type { Case, Family, MapState, Operation, Protocol, SockAddr, SocketId } from '../../model/domain.js';
import { ControlPort, payloadFor } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import { textMemo } from '../codec/memo.js';
import { StateTracker } from '../codec/state.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { ChoiceSource, FailurePoint } from './choices.js';
import type { ObsWriter } from './observations.js';
import type { RunnerSocket, SocketLayer } from './socket-layer.js';
import { concatBytes, streamView, wantedLength } from './streams.js';

/** Why `family|addr` is no address a socket of that family can connect to, or null (memoised). */
const addressProblem = textMemo((key: string): string | null => {
  const bar = key.indexOf('|');
  try {
    canonicalSockText(key.slice(0, bar) as Family, key.slice(bar + 1));
    return null;
  } catch (e) {
    if (e instanceof AddressError) return e.message;
    throw e;
  }
});

/** Passes prandom through but never fails a helper: set-up steps are not choice points. */
class NoFailures implements ChoiceSource {
  constructor(private readonly inner: ChoiceSource) {}
  prandom(): number {
    return this.inner.prandom();
  }
  fail(_point: FailurePoint): boolean {
    return false;
  }
}

export class CaseRunner<S> {
  /** What the routing maps hold, so that a case costs only the writes that differ. */
  readonly tracker = new StateTracker();
  /** Whether the namespace is enrolled; 'unknown' after a case made its own control connects. */
  enrolment: boolean | 'unknown' = false;
  private readonly socks = new Map<SocketId, RunnerSocket<S>>();
  /** Index of the operation running now (for the VM's exploration). */
  opIndex = 0;
  /** Where the current case's observations start in the sink. */
  caseMark = 0;

  constructor(
    private readonly layer: SocketLayer<S>,
    private readonly env: Environment,
    /** Where observations go; swapped by callers that want a case's bytes apart. */
    public sink: ObsWriter,
  ) {}

  /** The open sockets of the running case. */
  get sockets(): ReadonlyMap<SocketId, RunnerSocket<S>> {
    return this.socks;
  }

  /**
   * Runs one case and writes its observations, ended by an end-of-case record. `choices`
   * answers the programs' choice points where the layer can take them (the VM); set-up (map
   * writes, enrolment) never fails a helper. On an error everything the case opened is closed,
   * the maps are emptied and the error is thrown on.
   */
  runCase(c: Case, choices?: ChoiceSource): void {
    this.caseMark = this.sink.mark;
    if (this.layer.beginCase()) this.tracker.reset();
    if (!this.layer.keepsEnrolment) this.enrolment = 'unknown';
    try {
      if (choices) this.layer.useChoices?.(new NoFailures(choices));
      this.applyState(c.state);
      if (this.enrolment !== c.enrolled) this.setEnrolment(c.enrolled);
      this.layer.listen(c);
      if (choices) this.layer.useChoices?.(choices);
      for (let i = 0; i < c.ops.length; i++) {
        this.opIndex = i;
        this.runOp(c.ops[i]!);
      }
      this.closeAll();
    } catch (e) {
      this.recover();
      throw e;
    }
    this.sink.endCase();
  }

  /**
   * After a failure: sockets closed, enrolment unknown, and maps emptied (a failed write may
   * have left them between two states), so that the next case starts clean.
   */
  recover(): void {
    try {
      this.closeAll();
    } catch {
      // the original error says what went wrong
    }
    this.enrolment = 'unknown';
    try {
      this.layer.resetMaps();
    } catch {
      // idem
    }
    this.tracker.reset();
  }

  /** Makes the routing maps hold `next`, writing only what differs from what they hold. */
  applyState(next: MapState): void {
    try {
      this.tracker.apply(next, this.layer.writeMap);
    } catch (e) {
      // What came before the bad entry is written; then the first error.
      try {
        this.layer.mapsWritten();
      } catch {
        // reported through e
      }
      if (e instanceof KmeshCheckError) throw e;
      throw new KmeshCheckError('codec', `the map state cannot be encoded: ${(e as Error).message}`);
    }
    this.layer.mapsWritten();
  }

  /**
   * Enrols or withdraws the namespace the real way: control connects from each enrolled local
   * (Environment.enrolledLocals), refused because nothing listens on the control ports.
   */
  setEnrolment(want: boolean): void {
    for (const port of [ControlPort.enrol, ControlPort.withdraw]) {
      if (!this.env.closedPorts.includes(port)) {
        throw new KmeshCheckError('environment', `port ${port} must have no listener for enrolment (environment.closedPorts)`);
      }
    }
    for (const local of this.env.enrolledLocals) {
      if (local.includes(':') && v4MappedInner(local) !== null) {
        throw new KmeshCheckError('environment', `enrolledLocals holds the v4-mapped address ${local}: give its IPv4 text instead`);
      }
    }
    this.layer.setEnrolment(want);
    this.enrolment = want;
  }

  private rec(id: SocketId, op: string): RunnerSocket<S> {
    const r = this.socks.get(id);
    if (!r) throw new KmeshCheckError('codec', `${op} on socket ${id}, which no earlier 'socket' operation created`);
    return r;
  }

  private runOp(op: Operation): void {
    switch (op.op) {
      case 'socket':
        return this.opSocket(op.sock, op.family, op.protocol);
      case 'connect':
        return this.opConnect(this.rec(op.sock, 'connect'), op.dest);
      case 'send':
        return this.opSend(this.rec(op.sock, 'send'), op.messages);
      case 'close': {
        const r = this.rec(op.sock, 'close');
        this.socks.delete(op.sock);
        this.layer.close(r);
        return this.sink.close(op.sock);
      }
      case 'apply':
        this.applyState(op.state);
        return this.sink.apply();
      default:
        throw new KmeshCheckError('codec', `unknown operation ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }

  private opSocket(id: SocketId, family: Family, protocol: Protocol): void {
    if (this.socks.has(id)) throw new KmeshCheckError('codec', `socket ${id} is created twice in one case`);
    if (family !== 'inet' && family !== 'inet6') throw new KmeshCheckError('codec', `socket ${id}: family must be inet or inet6, got ${String(family)}`);
    if (protocol !== 'tcp' && protocol !== 'udp') throw new KmeshCheckError('codec', `socket ${id}: protocol must be tcp or udp, got ${String(protocol)}`);
    const handle = this.layer.open(id, family, protocol);
    this.socks.set(id, { id, family, protocol, handle, sent: 0, expected: [] });
    this.sink.socket(id);
  }

  private opConnect(r: RunnerSocket<S>, dest: SockAddr): void {
    const wrong = addressProblem(`${r.family}|${dest.addr}`);
    if (wrong !== null) throw new KmeshCheckError('codec', `connect on socket ${r.id}: ${wrong}`);
    if (!Number.isInteger(dest.port) || dest.port < 0 || dest.port > 0xffff) {
      throw new KmeshCheckError('codec', `connect on socket ${r.id}: port ${dest.port} is not an integer in 0..65535`);
    }
    const seen = this.layer.connect(r, dest);
    // A case's own control connect changes enrolment in ways we do not track: re-enrol next case.
    if (dest.port === ControlPort.enrol || dest.port === ControlPort.withdraw) this.enrolment = 'unknown';
    this.sink.connect(r.id, seen.error, seen.peer, seen.storage, r.family, seen.inSockhash);
  }

  private opSend(r: RunnerSocket<S>, messages: number): void {
    if (!Number.isInteger(messages) || messages < 0) throw new KmeshCheckError('codec', `send on socket ${r.id}: messages must be a non-negative integer, got ${messages}`);
    for (let i = 0; i < messages; i++) {
      const payload = payloadFor(r.id, r.sent);
      // Only a message the socket took is one the peer should see (and numbers the next one).
      const n = this.layer.send(r, payload);
      if (n <= 0) continue;
      r.sent++;
      r.expected.push(n < payload.length ? payload.subarray(0, n) : payload);
    }
    const expected = concatBytes(r.expected);
    const got = this.layer.received(r, (b) => b.length >= wantedLength(b, expected.length));
    const stream = got === null ? null : streamView(got, expected);
    this.sink.send(r.id, stream, this.layer.storage(r), r.family);
  }

  private closeAll(): void {
    for (const r of this.socks.values()) this.layer.close(r);
    this.socks.clear();
    this.layer.endCase();
  }
}
