// Counterexamples printed for a person: map tables with addresses as addresses and ports in host
// order, the operations, the invariant that broke, what was allowed against what was observed.

import { isConsistent } from '../model/control-plane/consistency.js';
import { formatSockAddr, mapPortText, sockAddrText, type Family } from '../model/address.js';
import type { Case, MapState, Observation, Operation, Waypoint } from '../model/domain.js';

export function policyName(p: number): string {
  return ['random', 'strict', 'failover'][p] ?? `unknown(${p})`;
}

function waypointText(w: Waypoint): string {
  if (w.port === 0 && /^(0\.0\.0\.0|::)$/.test(w.addr)) return '-';
  return sockAddrText(w);
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    '  ' +
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function formatState(s: MapState): string[] {
  const out: string[] = [];
  if (s.frontends.length) {
    out.push(
      'km_frontend',
      ...table(
        ['address', 'upstream id'],
        s.frontends.map((f) => [f.addr, String(f.upstreamId)]),
      ),
    );
  }
  if (s.services.length) {
    out.push(
      'km_service',
      ...table(
        ['id', 'policy', 'endpoints per prio', 'ports (service->target)', 'waypoint'],
        s.services.map((v) => [String(v.id), policyName(v.lbPolicy), v.endpointCounts.join(','), portSlotsText(v.servicePorts, v.targetPorts), waypointText(v.waypoint)]),
      ),
    );
  }
  if (s.endpoints.length) {
    out.push(
      'km_endpoint',
      ...table(
        ['service', 'prio', 'index', 'backend uid'],
        s.endpoints.map((e) => [String(e.serviceId), String(e.prio), String(e.index), String(e.backendUid)]),
      ),
    );
  }
  if (s.backends.length) {
    out.push(
      'km_backend',
      ...table(
        ['uid', 'address', 'services', 'waypoint'],
        s.backends.map((b) => [String(b.uid), b.addr, b.services.join(',') || '-', waypointText(b.waypoint)]),
      ),
    );
  }
  if (!out.length) out.push('(all routing maps empty)');
  return out;
}

export function formatOperation(op: Operation, families: Map<number, Family>): string {
  switch (op.op) {
    case 'socket':
      return `socket s${op.sock} = ${op.family === 'inet' ? 'AF_INET' : 'AF_INET6'} ${op.protocol.toUpperCase()}${op.bindTo !== undefined ? `, bound to ${op.bindTo}` : ''}`;
    case 'connect':
      return `connect s${op.sock} -> ${formatSockAddr(families.get(op.sock) ?? 'inet', op.dest)}`;
    case 'send':
      return `send s${op.sock} x${op.messages}`;
    case 'close':
      return `close s${op.sock}`;
    case 'sendto':
      return `sendto s${op.sock} -> ${formatSockAddr(families.get(op.sock) ?? 'inet', op.dest)} x${op.n}`;
    case 'recvfrom':
      return `recvfrom s${op.sock}`;
    case 'deliver':
      return `deliver s${op.sock} <- ${sockAddrText(op.from)}`;
    case 'apply':
      return `apply new map state (${op.state.frontends.length} frontends, ${op.state.services.length} services, ${op.state.endpoints.length} endpoints, ${op.state.backends.length} backends)`;
  }
}

export function socketFamilies(ops: readonly Operation[]): Map<number, Family> {
  const m = new Map<number, Family>();
  for (const op of ops) if (op.op === 'socket') m.set(op.sock, op.family);
  return m;
}

export function formatObservation(o: Observation, family: Family = 'inet'): string {
  const parts: string[] = [];
  if (o.op === 'connect') {
    parts.push(o.peer ? `peer ${formatSockAddr(family, o.peer)}` : `error ${o.error ?? '?'}`);
  }
  if (o.op === 'sendto' || o.op === 'deliver') {
    if (o.error) parts.push(`error ${o.error}`);
    if (o.arrivedAt !== undefined) parts.push(o.arrivedAt ? `arrived at ${formatSockAddr(o.arrivedAt.addr.includes(':') ? 'inet6' : 'inet', o.arrivedAt)}` : 'arrived nowhere');
  }
  if (o.op === 'recvfrom') {
    parts.push(o.from ? `from ${formatSockAddr(family, o.from)} ${JSON.stringify(o.data)}` : `error ${o.error ?? '?'}`);
  }
  if (o.storage !== undefined) {
    const s = o.storage;
    parts.push(
      s === null
        ? 'no storage'
        : `storage{via_waypoint=${+s.viaWaypoint} has_set_ip=${+s.hasSetIp} has_encoded=${+s.hasEncoded}` + `${s.original ? ` original=${formatSockAddr(family, s.original)}` : ''}}`,
    );
  }
  if (o.inSockhash !== undefined) parts.push(o.inSockhash ? 'in km_socket' : 'not in km_socket');
  if (o.stream !== undefined) {
    const st = o.stream;
    parts.push(
      st === null
        ? 'nothing received'
        : `received ${st.tlv ? `TLV(${st.tlv.form}, ${formatSockAddr(st.tlv.form, st.tlv.original)}) + ` : ''}` + `${st.payloadIntact ? 'payload intact' : 'payload NOT intact'} [${st.hex}]`,
    );
  }
  // An operation with nothing to report (a socket opened, a datagram delivered as asked): a dash, as the spec's tables write it.
  return parts.length ? parts.join(', ') : '-';
}

/**
 * What keeps a control plane from having written the case's states (none: it could; a raw phase
 * draws some such states too), the first state's problems first.
 */
function rawnessOf(c: Case): string[] {
  if (c.kind === 'consistent') return [];
  const out = c.enrolled && c.enrolmentWrite ? [`the km_manage entries hold ${hexValue(c.enrolmentWrite)}, not the ABI's 0`] : [];
  out.push(...isConsistent(c.state));
  for (const op of c.ops) if (op.op === 'apply') out.push(...isConsistent(op.state));
  return out;
}

/** The state line's kind: consistent, or raw with the first reason (the reader judges how much it matters). */
function stateKindText(c: Case): string {
  const raw = rawnessOf(c);
  if (!raw.length) return 'control-plane-consistent';
  return `raw (a robustness finding: ${raw[0]}${raw.length > 1 ? `, and ${raw.length - 1} more` : ''})`;
}

/** The entries of a state, one line each, as "km_backend: 0  10.9.0.53  -  -" (formatState's rows). */
function stateRows(s: MapState): string[] {
  const out: string[] = [];
  let map = '';
  let skip = 0;
  for (const line of formatState(s)) {
    if (!line.startsWith(' ')) {
      map = line;
      skip = 2; // its header and rule
    } else if (skip > 0) skip--;
    else out.push(`${map}: ${line.trim().replace(/ {2,}/g, '  ')}`);
  }
  return out;
}

/**
 * What an `apply` changed, entry by entry: "removed <old row>", "added <new row>" (at most `max`
 * lines). Words, not diff marks: a "- row" under "apply ... (0 backends)" read as a row kept.
 */
function stateChanges(before: MapState, after: MapState, max = 8): string[] {
  const was = stateRows(before);
  const now = stateRows(after);
  const lines = [...was.filter((r) => !now.includes(r)).map((r) => `removed ${r}`), ...now.filter((r) => !was.includes(r)).map((r) => `added   ${r}`)];
  return lines.length > max ? [...lines.slice(0, max), `... and ${lines.length - max} more`] : lines.length ? lines : ['(no entry changed)'];
}

/**
 * A service's port slots as read: the used ones in order, an empty slot before a used one as '-'
 * (a hole a program may stop at), the empty ones after the last used one left out; ten empty slots
 * still map a destination port 0 (interpretation.md, item 8).
 */
function portSlotsText(service: readonly number[], target: readonly number[]): string {
  const slots = service.map((p, i) => (p || target[i] ? `${mapPortText(p)}->${mapPortText(target[i] ?? 0)}` : '-'));
  while (slots.at(-1) === '-') slots.pop();
  return slots.join(' ') || 'all 0->0';
}

export function formatCase(c: Case): string[] {
  const families = socketFamilies(c.ops);
  const ops: string[] = [];
  let state = c.state;
  c.ops.forEach((op, i) => {
    ops.push(`  ${i + 1}. ${formatOperation(op, families)}`);
    if (op.op !== 'apply') return;
    // The maps an apply writes, as changes: which entry moved is what a reader needs.
    for (const l of stateChanges(state, op.state)) ops.push(`       ${l}`);
    state = op.state;
  });
  return [`state: ${stateKindText(c)}; namespace ${enrolmentText(c)} at the start${monitoringText(c)}`, ...formatState(c.state), 'operations', ...ops];
}

/** How a case's namespace starts: not enrolled, enrolled (control connects), or by km_manage writes (of both kinds of key, or one). */
export function enrolmentText(c: Case): string {
  if (!c.enrolled) return 'NOT enrolled';
  if (c.enrolmentWrite === undefined) return 'enrolled';
  const value = hexValue(c.enrolmentWrite);
  if (c.enrolmentKeys === 'locals') return `NOT enrolled (km_manage holds its local IPs alone, written with value ${value})`;
  if (c.enrolmentKeys === 'cookie') return `enrolled by a km_manage write of its netns cookie alone (value ${value}): no local IP is managed`;
  return `enrolled by km_manage writes (its netns cookie and local IPs, value ${value})`;
}

/** What a case with connection reports off adds to its first line (nothing when they are on). */
export function monitoringText(c: Case): string {
  return c.monitoringOff ? '; connection reports off (enable_monitoring 0)' : '';
}

const hexValue = (v: number): string => (v === 0 ? '0' : `0x${v.toString(16)}`);
