// The top-level choices of bounded-exhaustive exploration: what a case does before any map is
// read (operation sequence, connect and send or datagram operations, enrolment, socket kind,
// destination class and port, and from scope 2 how an enrolled namespace starts). They are listed
// up front, in a fixed order, so that `--shard i/n` can split the tree by them deterministically.

import { formatIPv6, parseAddress, v4Mapped, type Family } from '../../model/address.js';
import { CONTROL_ADDR, ControlPort, DNS_PORT, enrolmentFields, netnsEnrolledAtStart, type Operation, type Protocol, type SockAddr } from '../../model/domain.js';
import type { CaseStart } from '../cases.js';
import {
  DATAGRAM_EXCLUDED_DEST_CLASSES,
  DEST_ADDRESS_CLASSES,
  DEST_PORT_CLASSES,
  OTHER_START_MIN_SCOPE,
  SEQUENCE_CLASSES,
  addressClass,
  allowed,
  destClassScope,
  deviationCost,
  deviationsAt,
} from './classes.js';
import type { Decisions } from './decisions.js';
import { DNS_ADDRS } from '../dns.js';

export interface Skeleton {
  readonly sequence: string;
  readonly enrolled: boolean;
  readonly family: Family;
  readonly protocol: Protocol;
  readonly destClass: string;
  readonly port: number;
  /** Deviations (classes.ts) the top-level choices use: the sequence's, destination's and port's, and the start's. */
  readonly deviations: number;
  /** An enrolled namespace's start other than control connects with reports on (START_VARIANTS), by name. */
  readonly start?: string;
}

/**
 * Starts of an enrolled namespace besides control connects with connection reports on, each a
 * deviation (so from scope 2), as sampling draws them (generators/cases.ts): km_manage written
 * with one kind of key alone, or with a value other than the ABI's 0, and reports turned off.
 */
export const START_VARIANTS: readonly { readonly name: string; readonly fields: CaseStart }[] = [
  { name: 'netns-cookie-written-alone', fields: enrolmentFields('cookie-only') },
  { name: 'local-ips-written-alone', fields: enrolmentFields('locals-only') },
  { name: 'written-0xffffffff', fields: enrolmentFields(0xffffffff) },
  { name: 'reports-off', fields: { enrolled: true, monitoringOff: true } },
];

/** The Case fields a skeleton starts with besides its maps and operations. */
export function startOf(s: Skeleton): CaseStart {
  if (s.start === undefined) return { enrolled: s.enrolled };
  const variant = START_VARIANTS.find((v) => v.name === s.start);
  if (!variant) throw new Error(`no start ${s.start}`);
  return variant.fields;
}

export function skeletons(scope: number): Skeleton[] {
  const out: Skeleton[] = [];
  for (const seq of allowed(SEQUENCE_CLASSES, scope)) {
    // Datagram sequences: UDP only, and a sendto needs a port (1..65535).
    const protocols = seq.datagram ? (['udp'] as const) : (['tcp', 'udp'] as const);
    for (const enrolled of [true, false]) {
      for (const family of seq.families ?? (['inet', 'inet6'] as const)) {
        for (const protocol of protocols) {
          for (const destClass of DEST_ADDRESS_CLASSES[family]) {
            const destScope = destClassScope(seq, destClass);
            if (destScope > scope) continue;
            if (seq.connects && DATAGRAM_EXCLUDED_DEST_CLASSES.includes(destClass)) continue;
            const control = destClass.startsWith('control');
            for (const port of DEST_PORT_CLASSES.filter((c) => (control ? c.controlMinScope : c.minScope) <= scope)) {
              if (seq.datagram && port.value === 0) continue;
              const deviations = deviationCost(seq.minScope) + deviationCost(destScope) + deviationCost(control ? port.controlMinScope : port.minScope);
              if (deviations <= deviationsAt(scope)) out.push({ sequence: seq.name, enrolled, family, protocol, destClass, port: port.value, deviations });
            }
          }
        }
      }
    }
  }
  // After the others, so that the rest keep their indices (a saved finding's path starts with one).
  const cost = deviationCost(OTHER_START_MIN_SCOPE);
  const starts = START_VARIANTS.flatMap((v) => out.filter((s) => s.enrolled && s.deviations + cost <= deviationsAt(scope)).map((s) => ({ ...s, deviations: s.deviations + cost, start: v.name })));
  return [...out, ...starts];
}

/** Whether a skeleton's sequence uses the datagram operations (sendto, recvfrom, deliver). */
export function isDatagram(s: Skeleton): boolean {
  return SEQUENCE_CLASSES.find((c) => c.name === s.sequence)?.datagram === true;
}

export function describeSkeleton(s: Skeleton): string {
  return `${s.sequence} ${s.enrolled ? 'enrolled' : 'not-enrolled'}${s.start ? ` (${s.start})` : ''} ${s.family}/${s.protocol} ${s.destClass}:${s.port}`;
}

/** The port of sendto-deliver-recv's second datagram: not DNS's (below the ephemeral ports, as a deliver's source must be). */
const OTHER_SOURCE_PORT = 5353;

/**
 * fd00::ffff:a.b.c.d for the IPv4 address `ipv4`: native IPv6 whose last 64 bits are those of
 * ::ffff:a.b.c.d, so only its first word tells it from the v4-mapped address.
 */
function nativeLikeMapped(ipv4: string): string {
  const b = new Uint8Array(16);
  b[0] = 0xfd;
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(parseAddress(ipv4), 12);
  return formatIPv6(b);
}

/** The operations of a skeleton; the destination is the first address of its class. */
export function operationsOf(s: Skeleton, d: Decisions): Operation[] {
  const dest: SockAddr = { addr: d.useAddress(s.destClass, 1), port: s.port };
  const open = (sock: number): Operation => ({ op: 'socket', sock, family: s.family, protocol: s.protocol });
  switch (s.sequence) {
    case 'connect-send':
      return [open(0), { op: 'connect', sock: 0, dest }, { op: 'send', sock: 0, messages: 2 }];
    case 'connect-again-send-twice':
      return [open(0), { op: 'connect', sock: 0, dest }, { op: 'connect', sock: 0, dest }, { op: 'send', sock: 0, messages: 2 }];
    case 'sendto-recv-twice': {
      const pooled = addressClass(s.destClass).pool !== null;
      const b: SockAddr = { addr: pooled ? d.useAddress(s.destClass, 2) : dest.addr, port: s.port };
      return [open(0), { op: 'sendto', sock: 0, dest, n: 1 }, { op: 'recvfrom', sock: 0 }, { op: 'sendto', sock: 0, dest: b, n: 1 }, { op: 'recvfrom', sock: 0 }];
    }
    case 'sendto-deliver-recv': {
      // From X's port 53 and then from another port of X: only the first is a reply to restore when X is the proxy.
      const addr = d.useAddress('ipv4', addressClass(s.destClass).pool === 'v4' ? 2 : 1);
      const recv: Operation = { op: 'recvfrom', sock: 0 };
      return [
        open(0),
        { op: 'sendto', sock: 0, dest, n: 1 },
        { op: 'deliver', sock: 0, from: { addr, port: DNS_PORT } },
        { op: 'deliver', sock: 0, from: { addr, port: OTHER_SOURCE_PORT } },
        recv,
        recv,
        recv,
      ];
    }
    case 'sendto-deliver6-recv': {
      // The source ends like ::ffff:10.0.0.1, an address the IPv4 DNS proxy may get, and a pooled
      // IPv4 server is another one: a restore that takes it for v4-mapped without reading its
      // first words (the last 32 bits alone, or the third word) names the server.
      const server: SockAddr = addressClass(s.destClass).pool === 'v4' ? { addr: d.useAddress(s.destClass, 2), port: s.port } : dest;
      const from: SockAddr = { addr: nativeLikeMapped(d.useAddress('ipv4', 1)), port: DNS_PORT };
      return [open(0), { op: 'sendto', sock: 0, dest: server, n: 1 }, { op: 'deliver', sock: 0, from }, { op: 'recvfrom', sock: 0 }, { op: 'recvfrom', sock: 0 }];
    }
    case 'connect-send-recv':
      return [open(0), { op: 'connect', sock: 0, dest }, { op: 'send', sock: 0, messages: 1 }, { op: 'recvfrom', sock: 0 }];
    case 'bound-sendto-recv':
      return [
        { op: 'socket', sock: 0, family: s.family, protocol: s.protocol, bindTo: DNS_ADDRS.boundPod },
        { op: 'sendto', sock: 0, dest, n: 1 },
        { op: 'recvfrom', sock: 0 },
      ];
    case 'connect-sendto-recv':
      return [open(0), { op: 'connect', sock: 0, dest }, { op: 'sendto', sock: 0, dest, n: 1 }, { op: 'recvfrom', sock: 0 }];
    case 'control-sendto-recv': {
      // Section 6, step (1): the send changes the enrolment the next one runs under.
      const control: SockAddr = { addr: s.family === 'inet' ? CONTROL_ADDR.inet : v4Mapped(CONTROL_ADDR.inet), port: netnsEnrolledAtStart(startOf(s)) ? ControlPort.withdraw : ControlPort.enrol };
      return [open(0), { op: 'sendto', sock: 0, dest: control, n: 1 }, { op: 'sendto', sock: 0, dest, n: 1 }, { op: 'recvfrom', sock: 0 }];
    }
    case 'connect-close-connect':
      return [open(0), { op: 'connect', sock: 0, dest }, { op: 'close', sock: 0 }, open(1), { op: 'connect', sock: 1, dest }, { op: 'send', sock: 1, messages: 1 }];
    default:
      throw new Error(`unknown operation sequence ${s.sequence}`);
  }
}
