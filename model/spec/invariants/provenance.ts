// Normative 3.10: a rewrite never fabricates an address. The relation `allowedPeers` is every
// place a connect may end up, given the maps in force and what the application asked for.

import { DNS_PORT, writtenPort, type Family, type MapState, type Protocol, type SockAddr, type Waypoint } from '../../domain.js';
import { connectPlace, kernelPeer, possiblePeers, type Environment, type KernelSocket } from '../../environment.js';
import { configuredWaypoint, programConnects, sameSockAddr, show, socketView } from '../facts.js';
import { Checker, type Invariant } from '../types.js';

/**
 * How the kernel may connect: every socket state the environment gives (possiblePeers), and the
 * states the socket is known to be in (`sockets`: a bound socket's address is its own, which no
 * environment-wide list holds).
 */
export interface KernelView {
  readonly env: Environment;
  readonly protocol: Protocol;
  readonly sockets?: readonly KernelSocket[];
}

function key(s: SockAddr): string {
  return `${s.addr}|${s.port}`;
}

/**
 * Where a connect that asked for `asked` may be connected to (as getpeername reports it): the
 * destination itself, any backend address at the target port of any slot that maps the asked port
 * or a waypoint's port (a chain can reach any service),
 * the DNS proxy at port 53 (connect4 only), any configured waypoint at its port; each written in
 * the socket's family, and nothing that the family cannot hold. Each as the kernel connects there:
 * a fresh socket's view (kernelPeer), or with `kernel` every peer the environment can give a
 * socket of that protocol and those of the socket's own known states (an any-address goes to the
 * socket's own local address).
 * `onlyPort` leaves out the candidates at other ports (a membership test for one peer).
 */
export function allowedPeers(state: MapState, family: Family, asked: SockAddr, kernel?: KernelView, onlyPort?: number): SockAddr[] {
  const out = new Map<string, SockAddr>();
  someDestination(state, family, asked, onlyPort, (dest) => {
    for (const p of peersOf(family, dest, kernel)) out.set(key(p), p);
    return false;
  });
  return [...out.values()];
}

/** Whether `peer` is among allowedPeers(state, family, asked, kernel), stopping at the first destination that explains it. */
export function peerAllowed(state: MapState, family: Family, asked: SockAddr, kernel: KernelView, peer: SockAddr): boolean {
  return someDestination(state, family, asked, peer.port, (dest) => peersOf(family, dest, kernel).some((p) => sameSockAddr(p, peer)));
}

/** Where the kernel may connect a socket whose final destination is `dest` (see allowedPeers). */
function peersOf(family: Family, dest: SockAddr, kernel: KernelView | undefined): readonly SockAddr[] {
  if (!kernel) return [kernelPeer(family, dest)];
  const all = possiblePeers(kernel.env, family, kernel.protocol, dest);
  if (!kernel.sockets?.length) return all;
  return [...all, ...kernel.sockets.map((s) => connectPlace(kernel.env, family, kernel.protocol, dest, s))];
}

/**
 * Calls `visit` with each final destination allowedPeers admits, in its order, until one returns
 * true (the answer). `onlyPort` leaves out destinations at other ports: the kernel keeps a
 * destination's port, so a peer at another port needs no candidates at this one.
 */
function someDestination(state: MapState, family: Family, asked: SockAddr, onlyPort: number | undefined, visit: (dest: SockAddr) => boolean): boolean {
  const at = (addr: string | null, port: number) => addr !== null && (onlyPort === undefined || port === onlyPort) && visit({ addr, port });
  if (at(asked.addr, asked.port)) return true;
  const waypoints: { addr: string; port: number }[] = [];
  for (const s of state.services) addConfigured(waypoints, s.waypoint);
  for (const b of state.backends) addConfigured(waypoints, b.waypoint);
  // A pass sees the asked port or, after a waypoint, a waypoint's port; a slot maps only those.
  const incoming = (p: number) => p === asked.port || waypoints.some((w) => w.port === p);
  const targetPorts = new Set<number>();
  for (const s of state.services) {
    for (let i = 0; i < s.servicePorts.length; i++) if (incoming(s.servicePorts[i]!)) targetPorts.add(writtenPort(s.targetPorts[i] ?? 0));
  }
  for (const b of state.backends) {
    const addr = socketView(family, b.addr);
    for (const port of targetPorts) if (at(addr, port)) return true;
    if (b.uid === 0 && family === 'inet' && at(addr, DNS_PORT)) return true;
  }
  for (const w of waypoints) if (at(socketView(family, w.addr), w.port)) return true;
  return false;
}

function addConfigured(out: { addr: string; port: number }[], w: Waypoint): void {
  const c = configuredWaypoint(w);
  if (c) out.push(c);
}

export const noFabricatedPeer: Invariant = {
  name: 'no-fabricated-peer',
  statement:
    "A connect ends at the destination the application asked for, a configured backend address, a waypoint or the DNS proxy, written in the socket's family; never at an address the maps do not hold.",
  check(ctx) {
    const chk = new Checker();
    for (const v of programConnects(ctx)) {
      const peer = v.obs.peer;
      if (!peer) continue;
      if (!sameSockAddr(peer, kernelPeer(v.family, v.asked))) chk.exercise();
      const kernel: KernelView = { env: ctx.env, protocol: v.protocol, sockets: v.kernelBefore };
      // The asked destination's own peers are among the allowed ones: most connects end there.
      if (peersOf(v.family, v.asked, kernel).some((a) => sameSockAddr(a, peer))) continue;
      chk.expect(
        peerAllowed(v.state, v.family, v.asked, kernel, peer),
        () => `operation ${v.i + 1}: connected to ${show(peer)}, which is none of ${allowedPeers(v.state, v.family, v.asked, kernel).map(show).join(', ')}`,
      );
    }
    return chk.verdict();
  },
};
