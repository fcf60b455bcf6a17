// What the harness around the data path looks like, as data: which addresses are local inside the
// private network namespace, which source address sockets get, which ports have no listener.
// The reference model needs it to predict what a real connect reports (peer or error) and whether
// sockops saw the connection established; executors publish the environment they really built.

import { parseAddress, v4MappedInner, formatIPv4, type Family, type SockAddr } from './address.js';
import { ControlPort } from './domain.js';

export interface Environment {
  /** The pod's own address per family: the source of every harness socket. */
  readonly podAddress: { readonly inet: string; readonly inet6: string };
  /** CIDRs that are local inside the namespace (loopback and AnyIP routes). */
  readonly localPrefixes: readonly string[];
  /** Ports with no listener: a TCP connect there is refused. Every other port listens. */
  readonly closedPorts: readonly number[];
}

export const DEFAULT_ENVIRONMENT: Environment = {
  podAddress: { inet: '10.255.0.1', inet6: 'fd00:ffff::1' },
  localPrefixes: ['127.0.0.0/8', '10.0.0.0/8', '0.0.0.2/32', '::1/128', '::2/128', 'fd00::/8'],
  closedPorts: [0, ControlPort.enrol, ControlPort.withdraw],
};

function inPrefix(addr: Uint8Array, cidr: string): boolean {
  const [base, lenText] = cidr.split('/');
  const net = parseAddress(base ?? '');
  if (net.length !== addr.length) return false;
  const len = Number(lenText ?? String(net.length * 8));
  for (let bit = 0; bit < len; bit++) {
    const i = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((addr[i] ?? 0) & mask) !== ((net[i] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Where the kernel actually connects a socket asked to go to `dest`: connecting to the
 * unspecified address means loopback (0.0.0.0 -> 127.0.0.1, :: -> ::1, ::ffff:0.0.0.0 ->
 * ::ffff:127.0.0.1); everything else is itself.
 */
export function kernelPeer(family: Family, dest: SockAddr): SockAddr {
  if (family === 'inet') return dest.addr === '0.0.0.0' ? { addr: '127.0.0.1', port: dest.port } : dest;
  if (dest.addr === '::') return { addr: '::1', port: dest.port };
  if (dest.addr === '::ffff:0.0.0.0') return { addr: '::ffff:127.0.0.1', port: dest.port };
  return dest;
}

/** Whether a connect to `dest` finds a route inside the namespace. */
export function routable(env: Environment, family: Family, dest: SockAddr): boolean {
  const peer = kernelPeer(family, dest);
  const inner = family === 'inet6' ? v4MappedInner(peer.addr) : null;
  const bytes = parseAddress(inner ?? peer.addr);
  return env.localPrefixes.some((cidr) => inPrefix(bytes, cidr));
}

/** Whether a TCP connect to `dest` is accepted (routable and a listener on the port). */
export function accepts(env: Environment, family: Family, dest: SockAddr): boolean {
  return routable(env, family, dest) && !env.closedPorts.includes(dest.port);
}

/** The local address a socket of `family` gets when it connects to `peer` (pod address). */
export function localAddressFor(env: Environment, family: Family, peer: SockAddr): string {
  if (family === 'inet') return env.podAddress.inet;
  const inner = v4MappedInner(peer.addr);
  if (inner === null) return env.podAddress.inet6;
  // A v4-mapped peer is reached over IPv4, from the pod's IPv4 address, seen mapped.
  return `::ffff:${formatIPv4(parseAddress(env.podAddress.inet))}`;
}
