// The socket layer around the programs (model/environment.ts, kernelConnect), as measured on 6.18
// in the kernel executor's namespace: the table of connect sequences (support/environment-rows.ts)
// checked against kernelConnect. test/kernel/environment.test.ts checks it against the kernel.

import { describe, expect, it } from 'vitest';
import { canonicalSockText } from '../../model/address.js';
import type { Family, Protocol } from '../../model/domain.js';
import {
  FRESH_SOCKET,
  enrolledLocalKeys,
  hasNativeLocal,
  kernelConnect,
  kernelPeer,
  manageKey,
  possiblePeers,
  possibleSockets,
  receivesIpv4,
  type Environment,
  type KernelSocket,
} from '../../model/environment.js';
import { POD4, POD6, ROWS, env, type Row } from '../support/environment-rows.js';

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
    for (const [family, addr] of [
      ['inet', '0.0.0.0'],
      ['inet', '10.1.2.3'],
      ['inet6', '::'],
      ['inet6', '::ffff:0.0.0.0'],
      ['inet6', 'fd00::3'],
    ] as const) {
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
    const addrs = (f: Family, p: Protocol, a: string) =>
      possiblePeers(env, f, p, { addr: a, port: 80 })
        .map((x) => x.addr)
        .sort();
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

describe('receivesIpv4: replies to an AF_INET6 UDP socket over IPv4 (measured on 6.18)', () => {
  it('a native local address stays through a v4-mapped reconnect, and the socket then takes no IPv4 datagram', () => {
    const native = kernelConnect(env, 'inet6', 'udp', { addr: 'fd00::1:1', port: 53 });
    const mapped = kernelConnect(env, 'inet6', 'udp', { addr: '::ffff:10.1.0.1', port: 53 }, native.socket);
    expect(mapped.outcome).toBe('connected');
    expect(mapped.socket.local).toBe(POD6);
    expect(hasNativeLocal(mapped.socket)).toBe(true);
    expect(receivesIpv4('inet6', hasNativeLocal(mapped.socket))).toBe(false);
  });

  it('a fresh, v4-mapped or AF_INET socket takes IPv4 datagrams', () => {
    const mapped = kernelConnect(env, 'inet6', 'udp', { addr: '::ffff:10.1.0.1', port: 53 });
    const again = kernelConnect(env, 'inet6', 'udp', { addr: '::ffff:10.1.0.2', port: 53 }, mapped.socket);
    for (const s of [FRESH_SOCKET, mapped.socket, again.socket]) expect(receivesIpv4('inet6', hasNativeLocal(s))).toBe(true);
    expect(receivesIpv4('inet', hasNativeLocal(kernelConnect(env, 'inet', 'udp', { addr: '10.1.0.1', port: 53 }).socket))).toBe(true);
  });
});
