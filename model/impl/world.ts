// Updating a World without mutating it: the runs of outcomes.ts share worlds between branches, so
// every change builds a new world around the untouched parts (plain spreads; a world is a handful
// of fields and a small socket table, so copy-on-write by hand is cheaper than drafting it).

import type { IpAddr } from '../domain.js';
import type { SocketState, World } from './types.js';

export interface WorldChange {
  /** Socket `id` becomes `socket`; undefined closes it. */
  readonly id: number;
  readonly socket: SocketState | undefined;
  readonly netnsEnrolled?: boolean;
  readonly enrolledIps?: readonly IpAddr[];
}

/** `world` with one socket replaced (or closed) and, optionally, new km_manage entries. */
export function withSocket(world: World, change: WorldChange): World {
  const sockets: Record<number, SocketState> = { ...world.sockets };
  if (change.socket === undefined) delete sockets[change.id];
  else sockets[change.id] = change.socket;
  return {
    maps: world.maps,
    netnsEnrolled: change.netnsEnrolled ?? world.netnsEnrolled,
    enrolledIps: change.enrolledIps ?? world.enrolledIps,
    sockets,
  };
}

/**
 * `sock` with some fields changed, written as an explicit literal in the interface's field order:
 * V8 copies a spread of an object that was itself made by a spread on a slow path (see
 * model/records.ts), and sockets are copied on every operation. A field given as undefined keeps
 * its value (no SocketState field is ever cleared to undefined).
 */
export function socketWith(sock: SocketState, c: Partial<SocketState>): SocketState {
  return {
    family: sock.family,
    protocol: sock.protocol,
    peer: c.peer !== undefined ? c.peer : sock.peer,
    connected: c.connected ?? sock.connected,
    connecting: c.connecting ?? sock.connecting,
    kernel: c.kernel ?? sock.kernel,
    storage: c.storage !== undefined ? c.storage : sock.storage,
    inSockhash: c.inSockhash ?? sock.inSockhash,
    sent: c.sent ?? sock.sent,
    stream: c.stream !== undefined ? c.stream : sock.stream,
    dns: c.dns ?? sock.dns,
  };
}
