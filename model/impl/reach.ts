// The environment's answers the model needs per connect (route, listener, local address), memoised
// per Environment: the underlying prefix matching parses text and costs microseconds per call.

import { canonicalSockText, v4MappedInner } from '../address.js';
import type { Family, IpAddr, SockAddr } from '../domain.js';
import { localAddressFor, routable, type Environment } from '../environment.js';
import { localIpKey } from './maps.js';

interface Memo {
  readonly routable: Map<string, boolean>;
  readonly closed: ReadonlySet<number>;
  readonly local: Map<string, IpAddr>;
}

const memos = new WeakMap<Environment, Memo>();

function memo(env: Environment): Memo {
  let m = memos.get(env);
  if (!m) {
    m = { routable: new Map(), closed: new Set(env.closedPorts), local: new Map() };
    memos.set(env, m);
  }
  return m;
}

/** Whether a connect to `dest` finds a route (environment.routable). */
export function isRoutable(env: Environment, family: Family, dest: SockAddr): boolean {
  const m = memo(env);
  const key = `${family}|${dest.addr}`;
  let r = m.routable.get(key);
  if (r === undefined) {
    if (m.routable.size > 20_000) m.routable.clear();
    r = routable(env, family, dest);
    m.routable.set(key, r);
  }
  return r;
}

/** Whether a listener takes a TCP connect routed to `dest` (environment.accepts, given a route). */
export function isListening(env: Environment, dest: SockAddr): boolean {
  return !memo(env).closed.has(dest.port);
}

/** The km_manage key of the local IP a socket gets towards `peer` (v4-mapped folded). */
export function localKeyFor(env: Environment, family: Family, peer: SockAddr): IpAddr {
  // The local address depends only on the family and on whether the peer is v4-mapped.
  const mapped = family === 'inet6' && peer.addr.startsWith('::ffff:') && v4MappedInner(peer.addr) !== null;
  const m = memo(env);
  const key = `${family}|${mapped}`;
  let k = m.local.get(key);
  if (k === undefined) {
    k = localIpKey(localAddressFor(env, family, peer));
    m.local.set(key, k);
  }
  return k;
}

const sockTexts = new Map<string, string>();

/** Canonical socket-address text (throws AddressError like canonicalSockText), memoised. */
export function canonicalDest(family: Family, text: string): string {
  const key = `${family}|${text}`;
  let t = sockTexts.get(key);
  if (t === undefined) {
    t = canonicalSockText(family, text);
    if (sockTexts.size > 50_000) sockTexts.clear();
    sockTexts.set(key, t);
  }
  return t;
}
