// The one case loop behind every executor. It checks each operation, keeps the socket table,
// turns map states into writes (StateTracker), enrols the namespace when the case asks for it,
// makes the case's ports listen (listening.ts), builds stream views from the bytes a peer got,
// and writes every observation to one sink (ObsWriter). What happens to a socket is the layer's
// job: the kernel's real sockets (bpf/kernel/sockets.ts) or the VM's (bpf/vm/sockets.ts), so
// both executors observe the same things for the same program by construction.

import { AddressError, canonicalSockText, v4MappedInner } from '../../model/address.js';
import type { Case, Family, MapState, Operation, Protocol, SockAddr, SocketId, StartEnrolment } from '../../model/domain.js';
import { CONTROL_ADDR, ControlPort, deliveredFor, dnsQueryFor, monitoringOf, payloadFor, startEnrolment } from '../../model/domain.js';
import { bindProblem, deliverSourceProblem, type Environment } from '../../model/environment.js';
import { keyedTextMemo } from '../../shared/memo.js';
import { StateTracker } from '../codec/tracker.js';
import { storageView } from '../codec/structs.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { ChoiceSource } from './choices.js';
import type { ObsWriter } from './observations.js';
import type { RunnerSocket, SocketLayer } from './socket-layer.js';
import { concatBytes, streamView, wantedLength } from './streams.js';

/** Why `addr` is no address a socket of `family` can connect to, or null (memoised). */
const addressProblem = keyedTextMemo((family: Family, addr: string): string | null => {
  try {
    canonicalSockText(family, addr);
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
  fail(): boolean {
    return false;
  }
}

/**
 * Whether a connect or send to `dest` may enrol or withdraw the namespace in ways the runner does
 * not track, so that the next case enrols again: one to a control port, or to the control address
 * on any port (either family, v4-mapped too): objects that misread the port (a blind hunter's
 * withdrew on every port but 929) change km_manage there, and the kernel keeps it into the next
 * case, whose failure then did not reproduce alone.
 */
export function touchesControl(dest: SockAddr): boolean {
  return dest.port === ControlPort.enrol || dest.port === ControlPort.withdraw || isControlAddress(dest.addr);
}

function isControlAddress(a: string): boolean {
  return a === CONTROL_ADDR.inet || a === CONTROL_ADDR.inet6 || v4MappedInner(a) === CONTROL_ADDR.inet;
}

/**
 * Whether a map state can rewrite a connect to the control address (a backend, a waypoint or the
 * DNS proxy there): sockops sees the rewritten peer, and a control connect made so, by correct
 * objects on the control ports or by others on any, enrols or withdraws like the case's own.
 */
export function stateReachesControl(s: MapState): boolean {
  for (const b of s.backends) if (isControlAddress(b.addr) || isControlAddress(b.waypoint.addr)) return true;
  for (const v of s.services) if (isControlAddress(v.waypoint.addr)) return true;
  return false;
}

export class CaseRunner<S> {
  /** What the routing maps hold, so that a case costs only the writes that differ. */
  readonly tracker = new StateTracker();
  /** How the namespace is enrolled (startEnrolment); 'unknown' after a case made its own control connects. */
  enrolment: StartEnrolment | 'unknown' = false;
  /** enable_monitoring as last set (Case.monitoringOff); 'unknown' until the first case sets it either way. */
  monitoring: boolean | 'unknown' = 'unknown';
  /** Whether setEnrolment has succeeded once: it checks the environment's control ports and locals first. */
  enrolmentChecked = false;
  private readonly socks = new Map<SocketId, RunnerSocket<S>>();
  /** Index of the operation running now, -1 before the first (the VM's exploration and tracer). */
  opIndex = -1;
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
    this.opIndex = -1;
    if (this.layer.beginCase()) this.tracker.reset();
    if (!this.layer.keepsEnrolment) this.enrolment = 'unknown';
    try {
      if (choices) this.layer.useChoices?.(new NoFailures(choices));
      const monitoring = monitoringOf(c);
      if (this.monitoring !== monitoring) this.setMonitoring(monitoring);
      this.applyState(c.state);
      const enrolment = startEnrolment(c);
      if (this.enrolment !== enrolment) this.setEnrolment(enrolment);
      // Set now, for the next case: the enrolment this case starts from is made above.
      if (stateReachesControl(c.state)) this.enrolment = 'unknown';
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
   * (Environment.enrolledLocals), refused because nothing listens on the control ports; or, for a
   * written enrolment (writtenEnrolment), by writing km_manage's entries as a control plane would.
   */
  setEnrolment(want: StartEnrolment): void {
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
    this.enrolmentChecked = true;
  }

  /** Sets enable_monitoring in the objects that have it, for this case and the next. */
  setMonitoring(on: boolean): void {
    this.monitoring = 'unknown';
    this.layer.setMonitoring(on);
    this.monitoring = on;
  }

  private rec(id: SocketId, op: string): RunnerSocket<S> {
    const r = this.socks.get(id);
    if (!r) throw new KmeshCheckError('codec', `${op} on socket ${id}, which no earlier 'socket' operation created`);
    return r;
  }

  private runOp(op: Operation): void {
    switch (op.op) {
      case 'socket':
        return this.opSocket(op.sock, op.family, op.protocol, op.bindTo);
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
        if (stateReachesControl(op.state)) this.enrolment = 'unknown';
        return this.sink.apply();
      case 'sendto':
        return this.opSendto(this.udp(op.sock, 'sendto'), op.dest, op.n);
      case 'recvfrom': {
        const r = this.udp(op.sock, 'recvfrom');
        const got = this.layer.recvfrom(r);
        return this.sink.json({ op: 'recvfrom', sock: r.id, from: got.from, data: got.data, error: got.error, storage: this.storageOf(r) });
      }
      case 'deliver':
        return this.opDeliver(this.udp(op.sock, 'deliver'), op.from);
      default:
        throw new KmeshCheckError('codec', `unknown operation ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }

  /** A socket the datagram operations of section 6 may name: a UDP one. */
  private udp(id: SocketId, op: string): RunnerSocket<S> {
    const r = this.rec(id, op);
    if (r.protocol !== 'udp') throw new KmeshCheckError('codec', `${op} on socket ${id}, which is TCP: ${op} needs a UDP socket`);
    return r;
  }

  /** The socket's storage as an observation shows it. */
  private storageOf(r: RunnerSocket<S>) {
    const raw = this.layer.storage(r);
    return raw === null ? null : storageView(raw, r.family);
  }

  /** `n` DNS queries to `dest`, each its own datagram; the observation is the last one's fate. */
  private opSendto(r: RunnerSocket<S>, dest: SockAddr, n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new KmeshCheckError('codec', `sendto on socket ${r.id}: n must be a non-negative integer, got ${n}`);
    const wrong = addressProblem(r.family, dest.addr);
    if (wrong !== null) throw new KmeshCheckError('codec', `sendto on socket ${r.id}: ${wrong}`);
    if (!Number.isInteger(dest.port) || dest.port < 1 || dest.port > 0xffff) throw new KmeshCheckError('codec', `sendto on socket ${r.id}: port ${dest.port} is not an integer in 1..65535`);
    let last: { error: string | null; arrivedAt: SockAddr | null } = { error: null, arrivedAt: null };
    for (let i = 0; i < n; i++) last = this.layer.sendto(r, dest, dnsQueryFor(r.id, r.queries++));
    if (n > 0) this.touchedControl(dest);
    this.sink.json({ op: 'sendto', sock: r.id, arrivedAt: last.arrivedAt, error: last.error, storage: this.storageOf(r) });
  }

  /** A datagram from the stand-in at `from` (an address of the namespace, port 53) to the socket. */
  private opDeliver(r: RunnerSocket<S>, from: SockAddr): void {
    const wrong = deliverSourceProblem(this.env, r.family, from);
    if (wrong !== null) throw new KmeshCheckError('codec', `deliver on socket ${r.id}: ${wrong}`);
    this.sink.json({ op: 'deliver', sock: r.id, error: this.layer.deliver(r, from, deliveredFor(r.id)) });
  }

  private opSocket(id: SocketId, family: Family, protocol: Protocol, bindTo: string | undefined): void {
    if (this.socks.has(id)) throw new KmeshCheckError('codec', `socket ${id} is created twice in one case`);
    if (family !== 'inet' && family !== 'inet6') throw new KmeshCheckError('codec', `socket ${id}: family must be inet or inet6, got ${String(family)}`);
    if (protocol !== 'tcp' && protocol !== 'udp') throw new KmeshCheckError('codec', `socket ${id}: protocol must be tcp or udp, got ${String(protocol)}`);
    const wrong = bindTo === undefined ? null : bindProblem(this.env, family, protocol, bindTo);
    if (wrong !== null) throw new KmeshCheckError('codec', `socket ${id}: ${wrong}`);
    const handle = this.layer.open(id, family, protocol, bindTo);
    this.socks.set(id, { id, family, protocol, handle, sent: 0, expected: [], queries: 0 });
    this.sink.socket(id);
  }

  /** After a case's own connect or send to `dest`: the next case enrols again where it may have changed enrolment (touchesControl). */
  private touchedControl(dest: SockAddr): void {
    if (touchesControl(dest)) this.enrolment = 'unknown';
  }

  private opConnect(r: RunnerSocket<S>, dest: SockAddr): void {
    const wrong = addressProblem(r.family, dest.addr);
    if (wrong !== null) throw new KmeshCheckError('codec', `connect on socket ${r.id}: ${wrong}`);
    if (!Number.isInteger(dest.port) || dest.port < 0 || dest.port > 0xffff) {
      throw new KmeshCheckError('codec', `connect on socket ${r.id}: port ${dest.port} is not an integer in 0..65535`);
    }
    const seen = this.layer.connect(r, dest);
    this.touchedControl(dest);
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
