// The socket layer around the programs as measured on 6.18 in the kernel executor's namespace: a
// table of connect sequences with what each connect reports. test/unit/environment.test.ts checks it
// against kernelConnect, test/kernel/environment.test.ts against the real kernel.

import type { Family, Protocol } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';

export const env = DEFAULT_ENVIRONMENT;
export const POD4 = env.podAddress.inet;
export const POD6 = env.podAddress.inet6;
export const CLOSED = 929; // no listener (Environment.closedPorts)

/** One connect and what it reports: a peer address (at the same port), an errno, or neither (UDP port 0). */
export interface Step {
  readonly to: string;
  readonly port?: number;
  readonly peer?: string;
  readonly error?: string;
  /** The socket's local address afterwards, where the fact is about it (null: unset). */
  readonly local?: string | null;
}

export interface Row {
  readonly fact: string;
  readonly family: Family;
  readonly protocol: Protocol;
  readonly steps: readonly Step[];
}

const ok = (to: string, peer = to, local?: string | null, port = 80): Step => ({ to, port, peer, ...(local !== undefined ? { local } : {}) });
const fail = (to: string, error: string, port = 80): Step => ({ to, port, error });

export const ROWS: Row[] = [
  // Fact 1: UDP AF_INET.
  { fact: '1: fresh UDP to 0.0.0.0 gets 127.0.0.1 from 127.0.0.1', family: 'inet', protocol: 'udp', steps: [ok('0.0.0.0', '127.0.0.1', '127.0.0.1')] },
  {
    fact: '1: UDP with a local address: 0.0.0.0 is that address, and the local never changes',
    family: 'inet',
    protocol: 'udp',
    steps: [ok('10.0.0.1', '10.0.0.1', POD4), ok('0.0.0.0', POD4, POD4), ok('127.0.0.5', '127.0.0.5', POD4), ok('0.0.0.0', POD4, POD4)],
  },
  {
    fact: '1: UDP whose local is 127.0.0.1 keeps it towards other addresses',
    family: 'inet',
    protocol: 'udp',
    steps: [ok('0.0.0.0', '127.0.0.1', '127.0.0.1'), ok('10.0.0.1', '10.0.0.1', '127.0.0.1'), ok('0.0.0.0', '127.0.0.1', '127.0.0.1')],
  },
  {
    fact: '1: a failed UDP connect sets no local address',
    family: 'inet',
    protocol: 'udp',
    steps: [{ ...fail('192.168.1.1', 'ENETUNREACH'), local: null }, ok('0.0.0.0', '127.0.0.1', '127.0.0.1')],
  },
  {
    fact: '1: UDP to port 0 connects without a peer to show, and sets the local address',
    family: 'inet',
    protocol: 'udp',
    steps: [{ to: '10.0.0.1', port: 0, local: POD4 }, ok('0.0.0.0', POD4, POD4)],
  },
  // Fact 2: UDP AF_INET6.
  { fact: '2: fresh UDP to :: gets ::1 from the pod address', family: 'inet6', protocol: 'udp', steps: [ok('::', '::1', POD6)] },
  {
    fact: '2: fresh UDP to ::ffff:0.0.0.0 gets mapped loopback both ends; a v4-mapped local then turns :: into it and refuses native IPv6',
    family: 'inet6',
    protocol: 'udp',
    steps: [ok('::ffff:0.0.0.0', '::ffff:127.0.0.1', '::ffff:127.0.0.1'), ok('::', '::ffff:127.0.0.1'), { ...fail('fd00::7', 'EAFNOSUPPORT'), local: '::ffff:127.0.0.1' }],
  },
  {
    fact: '2: a v6 local: :: is ::1, ::ffff:0.0.0.0 is mapped loopback, v4-mapped destinations work and the local stays v6',
    family: 'inet6',
    protocol: 'udp',
    steps: [ok('fd00::5', 'fd00::5', POD6), ok('::ffff:0.0.0.0', '::ffff:127.0.0.1', POD6), ok('::', '::1', POD6), ok('::ffff:10.0.0.7', '::ffff:10.0.0.7', POD6)],
  },
  {
    fact: '2: a v4-mapped pod local: ::ffff:0.0.0.0 is the local itself, :: is mapped loopback, ::1 is EAFNOSUPPORT',
    family: 'inet6',
    protocol: 'udp',
    steps: [ok('::ffff:10.0.0.1', '::ffff:10.0.0.1', `::ffff:${POD4}`), ok('::ffff:0.0.0.0', `::ffff:${POD4}`), ok('::', '::ffff:127.0.0.1'), fail('::1', 'EAFNOSUPPORT')],
  },
  {
    fact: '2: from a v4-mapped local, an unrouted native address is ENETUNREACH (route first), a routed one EAFNOSUPPORT',
    family: 'inet6',
    protocol: 'udp',
    steps: [ok('::ffff:10.0.0.1', '::ffff:10.0.0.1', `::ffff:${POD4}`), fail('a00:8::', 'ENETUNREACH'), fail('fd00::1', 'EAFNOSUPPORT')],
  },
  {
    fact: '2: a v6 local gets an unseen IPv4 source from its first v4-mapped connect',
    family: 'inet6',
    protocol: 'udp',
    steps: [ok('fd00::5', 'fd00::5', POD6), ok('::ffff:10.0.0.7', '::ffff:10.0.0.7', POD6), ok('::ffff:0.0.0.0', `::ffff:${POD4}`, POD6)],
  },
  {
    fact: '2: an unroutable v4-mapped connect sets nothing',
    family: 'inet6',
    protocol: 'udp',
    steps: [{ ...fail('::ffff:192.168.1.1', 'ENETUNREACH'), local: null }, ok('::', '::1', POD6)],
  },
  // Fact 3: TCP starts every connect fresh.
  {
    fact: '3: TCP AF_INET after a refusal: 0.0.0.0 is loopback from loopback',
    family: 'inet',
    protocol: 'tcp',
    steps: [{ ...fail('10.0.0.1', 'ECONNREFUSED', CLOSED), local: null }, ok('0.0.0.0', '127.0.0.1', '127.0.0.1')],
  },
  {
    fact: '3: TCP AF_INET after ENETUNREACH: a pod address towards 10/8',
    family: 'inet',
    protocol: 'tcp',
    steps: [fail('192.168.0.1', 'ENETUNREACH'), ok('10.0.0.1', '10.0.0.1', POD4)],
  },
  {
    fact: '3: TCP AF_INET6 after a native refusal: ::ffff:0.0.0.0 is mapped loopback both ends',
    family: 'inet6',
    protocol: 'tcp',
    steps: [fail('fd00::5', 'ECONNREFUSED', CLOSED), ok('::ffff:0.0.0.0', '::ffff:127.0.0.1', '::ffff:127.0.0.1')],
  },
  {
    fact: '3: TCP AF_INET6 after a native refusal: :: is ::1 from the pod address; native connects work',
    family: 'inet6',
    protocol: 'tcp',
    steps: [fail('::', 'ECONNREFUSED', CLOSED), ok('::', '::1', POD6)],
  },
  { fact: '3: TCP to a v4-mapped address: from the mapped pod address', family: 'inet6', protocol: 'tcp', steps: [ok('::ffff:10.0.0.1', '::ffff:10.0.0.1', `::ffff:${POD4}`)] },
  // Fact 4: the AF_INET6 TCP quirk.
  {
    fact: '4: after a refused v4-mapped connect, :: stays in progress (SYN_SENT), from the pod address',
    family: 'inet6',
    protocol: 'tcp',
    steps: [fail('::ffff:10.0.0.1', 'ECONNREFUSED', CLOSED), { ...fail('::', 'EINPROGRESS'), local: POD6 }],
  },
  {
    fact: '4: after a refused v4-mapped connect, a v4-mapped connect works',
    family: 'inet6',
    protocol: 'tcp',
    steps: [fail('::ffff:0.0.0.0', 'ECONNREFUSED', CLOSED), ok('::ffff:10.0.0.7', '::ffff:10.0.0.7', `::ffff:${POD4}`)],
  },
  {
    fact: '4: an unroutable native connect keeps the quirk, an unroutable v4-mapped one clears it',
    family: 'inet6',
    protocol: 'tcp',
    steps: [fail('::ffff:10.0.0.1', 'ECONNREFUSED', CLOSED), fail('2001:db8::1', 'ENETUNREACH'), fail('::ffff:192.168.0.1', 'ENETUNREACH'), ok('fd00::7')],
  },
  {
    fact: '4: a refused native connect leaves no quirk',
    family: 'inet6',
    protocol: 'tcp',
    steps: [fail('fd00::5', 'ECONNREFUSED', CLOSED), ok('fd00::7')],
  },
];
