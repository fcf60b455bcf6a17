// The socket layer around the programs (model/environment.ts, kernelConnect), as measured on 6.18
// in the harness's namespace: a table of connect sequences with what each connect reports, checked
// against kernelConnect and, through the kernel executor (root), against the real kernel. The
// kernel rows run in a namespace that is not enrolled, so the programs leave every connect alone.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KernelExecutor } from '../bpf/kernel/executor.js';
import { canonicalSockText } from '../model/address.js';
import type { Case, Family, Observation, Operation, Protocol } from '../model/domain.js';
import { EMPTY_STATE } from '../model/domain.js';
import {
  DEFAULT_ENVIRONMENT,
  FRESH_SOCKET,
  enrolledLocalKeys,
  kernelConnect,
  kernelPeer,
  manageKey,
  possiblePeers,
  possibleSockets,
  type Environment,
  type KernelSocket,
} from '../model/environment.js';
import { outcomes } from '../model/impl/index.js';
import { startKernel } from './helpers/kernel.js';

const env = DEFAULT_ENVIRONMENT;
const POD4 = env.podAddress.inet;
const POD6 = env.podAddress.inet6;
const CLOSED = 929; // no listener (Environment.closedPorts)

/** One connect and what it reports: a peer address (at the same port), an errno, or neither (UDP port 0). */
interface Step {
  readonly to: string;
  readonly port?: number;
  readonly peer?: string;
  readonly error?: string;
  /** The socket's local address afterwards, where the fact is about it (null: unset). */
  readonly local?: string | null;
}

interface Row {
  readonly fact: string;
  readonly family: Family;
  readonly protocol: Protocol;
  readonly steps: readonly Step[];
}

const ok = (to: string, peer = to, local?: string | null, port = 80): Step => ({ to, port, peer, ...(local !== undefined ? { local } : {}) });
const fail = (to: string, error: string, port = 80): Step => ({ to, port, error });

const ROWS: Row[] = [
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

/** Runs a row through kernelConnect, threading the socket state. */
function predict(row: Row, e: Environment = env): { peer: string | null; error: string | null; local: string | null }[] {
  let s: KernelSocket = FRESH_SOCKET;
  return row.steps.map((st) => {
    const r = kernelConnect(e, row.family, row.protocol, { addr: canonicalSockText(row.family, st.to), port: st.port ?? 80 }, s);
    s = r.socket;
    return { peer: r.peer?.addr ?? null, error: r.error, local: s.local };
  });
}

describe('kernelConnect: the measured facts', () => {
  it.each(ROWS.map((r) => [r.fact, r] as const))('%s', (_, row) => {
    const got = predict(row);
    row.steps.forEach((st, i) => {
      const g = got[i]!;
      const where = `connect ${i + 1} to ${st.to}`;
      expect(g.peer, where).toBe(st.peer ?? null);
      expect(g.error, where).toBe(st.error ?? null);
      if (st.local !== undefined) expect(g.local, where).toBe(st.local);
    });
  });

  it('peers keep the destination port', () => {
    const r = kernelConnect(env, 'inet', 'udp', { addr: '0.0.0.0', port: 4242 }, { local: POD4, source4: POD4, mappedRefused: false });
    expect(r.peer).toEqual({ addr: POD4, port: 4242 });
  });

  it('TCP reports the SYN it sent (sockops TCP_CONNECT_CB): refused and in-progress connects too, not unroutable ones', () => {
    const refused = kernelConnect(env, 'inet6', 'tcp', { addr: '::2', port: 929 });
    expect(refused).toMatchObject({ outcome: 'failed', error: 'ECONNREFUSED', syn: { remote: { addr: '::2', port: 929 }, local: POD6 } });
    const hung = kernelConnect(env, 'inet6', 'tcp', { addr: '::2', port: 929 }, { ...FRESH_SOCKET, mappedRefused: true });
    expect(hung).toMatchObject({ outcome: 'in-progress', syn: { remote: { addr: '::2', port: 929 }, local: POD6 } });
    expect(kernelConnect(env, 'inet', 'tcp', { addr: '192.168.0.1', port: 80 }).syn).toBeNull();
    expect(kernelConnect(env, 'inet', 'udp', { addr: '10.0.0.1', port: 80 }).syn).toBeNull();
  });

  it('a fresh socket connects where kernelPeer says', () => {
    for (const [family, addr] of [['inet', '0.0.0.0'], ['inet', '10.1.2.3'], ['inet6', '::'], ['inet6', '::ffff:0.0.0.0'], ['inet6', 'fd00::3']] as const) {
      for (const protocol of ['tcp', 'udp'] as const) {
        expect(kernelConnect(env, family, protocol, { addr, port: 80 }).peer).toEqual(kernelPeer(family, { addr, port: 80 }));
      }
    }
  });

  it('memoised results are the same for equal inputs and differ with the socket state', () => {
    const a = kernelConnect(env, 'inet', 'udp', { addr: '0.0.0.0', port: 80 });
    expect(kernelConnect(env, 'inet', 'udp', { addr: '0.0.0.0', port: 80 }, { ...FRESH_SOCKET })).toBe(a);
    expect(kernelConnect(env, 'inet', 'udp', { addr: '0.0.0.0', port: 80 }, { local: POD4, source4: POD4, mappedRefused: false }).peer?.addr).toBe(POD4);
  });
});

describe('what a reader who cannot see local addresses may expect', () => {
  it('possiblePeers of an any-address: loopback or an own local address; TCP only loopback', () => {
    const addrs = (f: Family, p: Protocol, a: string) => possiblePeers(env, f, p, { addr: a, port: 80 }).map((x) => x.addr).sort();
    expect(addrs('inet', 'udp', '0.0.0.0')).toEqual([POD4, '127.0.0.1'].sort());
    expect(addrs('inet', 'tcp', '0.0.0.0')).toEqual(['127.0.0.1']);
    expect(addrs('inet6', 'udp', '::')).toEqual(['::1', '::ffff:127.0.0.1']);
    expect(addrs('inet6', 'udp', '::ffff:0.0.0.0')).toEqual([`::ffff:${POD4}`, '::ffff:127.0.0.1'].sort());
    expect(addrs('inet6', 'tcp', '::')).toEqual(['::1']);
    expect(addrs('inet', 'udp', '10.0.0.1')).toEqual(['10.0.0.1']);
  });

  it('possibleSockets: TCP AF_INET6 may carry the quirk; UDP any local it can get', () => {
    expect(possibleSockets(env, 'inet', 'tcp')).toEqual([FRESH_SOCKET]);
    expect(possibleSockets(env, 'inet6', 'tcp').map((s) => s.mappedRefused)).toEqual([false, true]);
    expect(new Set(possibleSockets(env, 'inet6', 'udp').map((s) => s.local))).toEqual(new Set([null, POD6, `::ffff:${POD4}`, '::ffff:127.0.0.1']));
  });
});

describe('enrolment data (fact 5)', () => {
  it('the default environment enrols both pod addresses and 127.0.0.1', () => {
    expect(enrolledLocalKeys(env)).toEqual(['10.255.0.1', '127.0.0.1', 'fd00:ffff::1']);
  });

  it('km_manage keys fold v4-mapped locals', () => {
    expect(manageKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(manageKey(`::ffff:${POD4}`)).toBe(POD4);
    expect(manageKey('FD00:FFFF::1')).toBe(POD6);
  });

  it('a v4-mapped enrolled local is refused with what to write instead', () => {
    expect(() => enrolledLocalKeys({ ...env, enrolledLocals: ['::ffff:10.255.0.1'] })).toThrow(/give its IPv4 text \(10\.255\.0\.1\)/);
  });
});

// ---- the real kernel ------------------------------------------------------------------------

function caseOf(row: Row): Case {
  const ops: Operation[] = [{ op: 'socket', sock: 0, family: row.family, protocol: row.protocol }];
  for (const st of row.steps) ops.push({ op: 'connect', sock: 0, dest: { addr: st.to, port: st.port ?? 80 } });
  return { state: EMPTY_STATE, kind: 'consistent', enrolled: false, ops };
}

/** Socket-layer behaviour beyond kernelConnect: a connect left in SYN_SENT, compared with the model. */
const IN_PROGRESS: Case = {
  state: EMPTY_STATE,
  kind: 'consistent',
  enrolled: false,
  ops: [
    { op: 'socket', sock: 0, family: 'inet6', protocol: 'tcp' },
    { op: 'connect', sock: 0, dest: { addr: '::ffff:10.0.0.1', port: CLOSED } },
    { op: 'connect', sock: 0, dest: { addr: 'fd00::7', port: 80 } },
    { op: 'connect', sock: 0, dest: { addr: '::ffff:10.0.0.7', port: 80 } },
    { op: 'send', sock: 0, messages: 1 },
  ],
};

const connectsOf = (obs: Observation[]) => obs.filter((o) => o.op === 'connect').map((o) => ({ peer: o.peer?.addr ?? null, error: o.error ?? null }));

describe('the kernel agrees (kernel executor, root)', () => {
  let ex: KernelExecutor;
  let observed: Observation[][];
  const cases = [...ROWS.map(caseOf), IN_PROGRESS];

  beforeAll(async () => {
    ex = await startKernel();
    observed = await ex.run(cases);
  }, 60_000);
  afterAll(async () => {
    await ex?.close();
  });

  it.each(ROWS.map((r, i) => [r.fact, i] as const))('%s', (_, i) => {
    const row = ROWS[i]!;
    expect(connectsOf(observed[i]!)).toEqual(row.steps.map((st) => ({ peer: st.peer ?? null, error: st.error ?? null })));
  });

  it('a connect left in SYN_SENT: EINPROGRESS, then EALREADY with no program run, sends carry nothing; the model says the same', () => {
    const got = observed[ROWS.length]!;
    expect(connectsOf(got)).toEqual([
      { peer: null, error: 'ECONNREFUSED' },
      { peer: null, error: 'EINPROGRESS' },
      { peer: null, error: 'EALREADY' },
    ]);
    expect(got[4]).toMatchObject({ op: 'send', stream: null });
    const model = outcomes(IN_PROGRESS, env);
    expect(model).toHaveLength(1);
    expect(model[0]!.observations).toEqual(got);
  });

  it('every row: the model observes exactly what the kernel does', () => {
    cases.forEach((c, i) => expect(outcomes(c, env)[0]!.observations, `case ${i}`).toEqual(observed[i]));
  });
});
