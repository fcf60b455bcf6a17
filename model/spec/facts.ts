// Facts the invariants share, derived only from the case, the environment and the observations
// (never from the reference model): the maps in force at each step, each socket's family and
// protocol, the destination the application asked for, what the socket looked like before, and
// what is known of km_manage (namespace and local IPs).

import {
  canonicalIpAddr,
  canonicalSockText,
  isAllZero,
  isIPv4Form,
  parseAddress,
  v4MappedInner,
} from '../address.js';
import {
  CONTROL_ADDR,
  ControlPort,
  payloadFor,
  type Backend,
  type Endpoint,
  type Family,
  type IpAddr,
  type MapState,
  type Observation,
  type Operation,
  type Protocol,
  type Service,
  type SockAddr,
  type StorageView,
  type Waypoint,
} from '../domain.js';
import { localAddressFor, routable, type Environment } from '../environment.js';
import type { PassRecord } from './passes.js';
import type { SpecContext } from './types.js';

// ---- addresses -------------------------------------------------------------------------------

const ipMemo = new Map<string, IpAddr>();

/** Canonical ip_addr text (memoised). */
export function ip(text: string): IpAddr {
  let k = ipMemo.get(text);
  if (k === undefined) {
    if (ipMemo.size > 50_000) ipMemo.clear();
    k = canonicalIpAddr(text);
    ipMemo.set(text, k);
  }
  return k;
}

export function sameSockAddr(a: SockAddr | null | undefined, b: SockAddr | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.addr === b.addr && a.port === b.port;
}

export function show(a: SockAddr | null | undefined): string {
  if (!a) return 'nothing';
  return a.addr.includes(':') ? `[${a.addr}]:${a.port}` : `${a.addr}:${a.port}`;
}

/** A stored address written in a socket's family (Normative 3.10), or null when it cannot be. */
export function socketView(family: Family, stored: IpAddr): string | null {
  const a = ip(stored);
  if (isIPv4Form(a)) return family === 'inet' ? a : `::ffff:${a}`;
  return family === 'inet6' ? a : null;
}

/** The km_frontend key of a destination (interpretation.md, item 2). */
export function frontendKey(family: Family, addr: string): IpAddr {
  if (family === 'inet') return addr;
  return v4MappedInner(addr) ?? ip(addr);
}

/** The km_manage key of the local address a socket gets towards `peer` (item 9: v4-mapped folded). */
export function localKey(env: Environment, family: Family, peer: SockAddr): IpAddr {
  const local = localAddressFor(env, family, peer);
  return v4MappedInner(local) ?? ip(local);
}

/** 'enrol' / 'withdraw' for a control destination (exactly 0.0.0.2 or ::2, item 4), else null. */
export function controlAction(family: Family, dest: SockAddr): 'enrol' | 'withdraw' | null {
  if (dest.addr !== CONTROL_ADDR[family]) return null;
  if (dest.port === ControlPort.enrol) return 'enrol';
  if (dest.port === ControlPort.withdraw) return 'withdraw';
  return null;
}

/** A configured waypoint (Normative 3.7: port != 0 and any address byte non-zero), or null. */
export function configuredWaypoint(w: Waypoint): { addr: IpAddr; port: number } | null {
  if (w.port === 0 || isAllZero(w.addr)) return null;
  return { addr: ip(w.addr), port: w.port };
}

// ---- maps -------------------------------------------------------------------------------------

/** Later entries win, as map updates applied in order would. */
function last<T>(xs: readonly T[], p: (x: T) => boolean): T | undefined {
  for (let i = xs.length - 1; i >= 0; i--) if (p(xs[i] as T)) return xs[i];
  return undefined;
}

export function frontendOf(s: MapState, key: IpAddr): number | undefined {
  return last(s.frontends, (f) => ip(f.addr) === key)?.upstreamId;
}

export function serviceOf(s: MapState, id: number): Service | undefined {
  return last(s.services, (x) => x.id === id);
}

export function endpointOf(s: MapState, serviceId: number, prio: number, index: number): Endpoint | undefined {
  return last(s.endpoints, (e) => e.serviceId === serviceId && e.prio === prio && e.index === index);
}

export function backendOf(s: MapState, uid: number): Backend | undefined {
  return last(s.backends, (b) => b.uid === uid);
}

// ---- bytes on the wire ------------------------------------------------------------------------

function hex(bytes: ArrayLike<number>): string {
  return Array.from(bytes as ArrayLike<number>, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The original-destination prefix of section 4's table, as hex. */
export function tlvHex(family: Family, original: SockAddr): string {
  const addr = parseAddress(original.addr);
  const len = family === 'inet' ? '00000006' : '00000012';
  const port = original.port.toString(16).padStart(4, '0');
  return `01${len}${hex(addr)}${port}fe00000000`;
}

export function payloadHex(sock: number, from: number, to: number): string {
  let out = '';
  for (let seq = from; seq < to; seq++) out += hex(payloadFor(sock, seq));
  return out;
}

// ---- the run, step by step ----------------------------------------------------------------------

export type Known = boolean | 'unknown';

export interface StepView {
  readonly i: number;
  readonly op: Operation;
  readonly obs: Observation;
  readonly passes: readonly PassRecord[] | undefined;
  /** The routing maps in force during this operation. */
  readonly state: MapState;
  /** Socket incarnation (a re-created id is a new socket), null for apply. */
  readonly life: number | null;
  readonly family: Family | null;
  readonly protocol: Protocol | null;
  /** connect: the destination the application asked for, in the socket's canonical text. */
  readonly asked: SockAddr | null;
  /** connect: the cgroup hook runs (the kernel refuses a connected TCP socket before it). */
  readonly runsProgram: boolean;
  /** The socket's storage as last reported before this step (undefined: never reported). */
  readonly storageBefore: StorageView | null | undefined;
  readonly inSockhashBefore: boolean;
  /** The TCP connect that established this socket's connection, if it happened before. */
  readonly established: StepView | null;
  /** Messages sent on the established connection before this step. */
  readonly sentBefore: number;
  /** km_manage knowledge before this step. */
  readonly netnsBefore: Known;
  readonly ipsBefore: ReadonlyMap<IpAddr, Known>;
}

function enrolledIpsAtStart(c: SpecContext): Map<IpAddr, Known> {
  const m = new Map<IpAddr, Known>();
  // A case that starts enrolled has the namespace and both pod addresses in km_manage.
  if (c.case.enrolled) {
    for (const a of [c.env.podAddress.inet, c.env.podAddress.inet6]) m.set(v4MappedInner(a) ?? ip(a), true);
  }
  return m;
}

/** Whether some waypoint of `s`, written in `family`, is a control destination (a re-entered pass could enrol). */
function waypointCouldControl(s: MapState, family: Family): boolean {
  const wps = [...s.services.map((x) => x.waypoint), ...s.backends.map((x) => x.waypoint)];
  return wps.some((w) => {
    const c = configuredWaypoint(w);
    const addr = c && socketView(family, c.addr);
    return addr !== null && addr !== undefined && controlAction(family, { addr, port: c!.port }) !== null;
  });
}

/** Whether some stored address of `s`, written in `family`, is the control address. */
function targetCouldBeControl(s: MapState, family: Family): boolean {
  const addrs = [
    ...s.backends.map((b) => b.addr),
    ...[...s.services.map((x) => x.waypoint), ...s.backends.map((x) => x.waypoint)].map((w) => w.addr),
  ];
  return addrs.some((a) => socketView(family, a) === CONTROL_ADDR[family]);
}

function canonicalAsked(family: Family, dest: SockAddr): SockAddr | null {
  try {
    return { addr: canonicalSockText(family, dest.addr), port: dest.port };
  } catch {
    return null;
  }
}

interface SocketTrack {
  life: number;
  family: Family;
  protocol: Protocol;
  storage: StorageView | null | undefined;
  inSockhash: boolean;
  established: StepView | null;
  sent: number;
}

const viewCache = new WeakMap<SpecContext, StepView[]>();

export function stepViews(ctx: SpecContext): StepView[] {
  const cached = viewCache.get(ctx);
  if (cached) return cached;
  const out: StepView[] = [];
  let state = ctx.case.state;
  let netns: Known = ctx.case.enrolled;
  let ips = enrolledIpsAtStart(ctx);
  const sockets = new Map<number, SocketTrack>();
  let lives = 0;
  ctx.steps.forEach((step, i) => {
    const op = step.op;
    const obs = step.observation;
    if (op.op === 'apply') state = op.state;
    if (op.op === 'socket') {
      sockets.set(op.sock, {
        life: ++lives,
        family: op.family,
        protocol: op.protocol,
        storage: null,
        inSockhash: false,
        established: null,
        sent: 0,
      });
    }
    const t = op.op === 'apply' ? undefined : sockets.get(op.sock);
    const asked = op.op === 'connect' && t ? canonicalAsked(t.family, op.dest) : null;
    const runsProgram = op.op === 'connect' && !!t && !(t.protocol === 'tcp' && t.established !== null);
    const view: StepView = {
      i,
      op,
      obs,
      passes: step.passes,
      state,
      life: t?.life ?? null,
      family: t?.family ?? null,
      protocol: t?.protocol ?? null,
      asked,
      runsProgram,
      storageBefore: op.op === 'socket' ? null : t?.storage,
      inSockhashBefore: op.op === 'socket' ? false : (t?.inSockhash ?? false),
      established: op.op === 'socket' ? null : (t?.established ?? null),
      sentBefore: op.op === 'socket' ? 0 : (t?.sent ?? 0),
      netnsBefore: netns,
      ipsBefore: ips,
    };
    out.push(view);

    // What this step changed.
    if (!t) return;
    if (obs.storage !== undefined) t.storage = obs.storage;
    if (op.op === 'close') sockets.delete(op.sock);
    if (op.op === 'send' && t.established) t.sent += op.messages;
    if (op.op !== 'connect' || !runsProgram || !asked) return;
    if (t.protocol === 'tcp' && obs.peer) {
      t.established = view;
      t.inSockhash = obs.inSockhash ?? false;
    }
    const family = t.family;
    const action = controlAction(family, asked);
    // km_manage netns entry: a control connect sets it; a waypoint at a control address might.
    if (action) netns = action === 'enrol';
    else if (netns !== 'unknown' && netns && waypointCouldControl(state, family)) netns = 'unknown';
    // km_manage ip entries: sockops TCP_CONNECT_CB sees the final remote end of a routed TCP connect.
    if (t.protocol !== 'tcp') return;
    let final: SockAddr | null = null;
    let unsure = false;
    if (action) final = asked;
    else if (obs.peer) final = obs.peer;
    else unsure = targetCouldBeControl(state, family);
    if (final) {
      const act = controlAction(family, final);
      if (act && routable(ctx.env, family, final)) {
        ips = new Map(ips);
        ips.set(localKey(ctx.env, family, final), act === 'enrol');
      }
    } else if (unsure) {
      ips = new Map(ips);
      for (const a of [ctx.env.podAddress.inet, ctx.env.podAddress.inet6]) ips.set(v4MappedInner(a) ?? ip(a), 'unknown');
    }
  });
  viewCache.set(ctx, out);
  return out;
}

/** The connects whose cgroup program ran, with a known requested destination. */
export function programConnects(ctx: SpecContext): (StepView & { asked: SockAddr; family: Family; protocol: Protocol })[] {
  return stepViews(ctx).filter(
    (v): v is StepView & { asked: SockAddr; family: Family; protocol: Protocol } =>
      v.op.op === 'connect' && v.runsProgram && v.asked !== null && v.family !== null && v.protocol !== null,
  );
}

/** Whether a local IP is in km_manage before step `v` (local IPs are always pod addresses). */
export function ipKnown(v: StepView, key: IpAddr): Known {
  return v.ipsBefore.get(key) ?? false;
}

export function describe(o: Observation): string {
  return JSON.stringify(o);
}
