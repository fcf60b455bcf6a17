// The generators: pools, raw states, connect contexts, cases, determinism, shrinking and the
// distribution of what is generated. (Control-plane ops and consistency: control-plane.test.ts.)

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIpAddr, canonicalSockText, isAllZero, isIPv4Form, parseAddress, v4MappedInner, type Family } from '../../model/address.js';
import { EMPTY_STATE, LbPolicy, NO_WAYPOINT, type Case, type MapState, type Operation, type Waypoint } from '../../model/domain.js';
import {
  CONTROL_NEAR_MISSES,
  PORT_POOL,
  addrInFamily,
  applyRawMutation,
  caseArb,
  connectContext,
  consistentState,
  ipAddrArb,
  ipv4KeyCollisionOf,
  isConsistent,
  portArb,
  rawState,
  recordOperations,
  resolveDestination,
  sequenceCaseFrom,
  sequenceInput,
  singleConnectCase,
  v4Host,
  v6Host,
  zeroFirstWordOf,
} from '../../generators/index.js';
import { SEED, build, opsValid, uniqueKeys } from '../support/generated-states.js';

describe('addresses', () => {
  it('numbers ordinary addresses from 1 inside the local ranges', () => {
    expect([v4Host(1), v4Host(2), v4Host(300)]).toEqual(['10.0.0.1', '10.0.0.2', '10.0.1.44']);
    expect([v6Host(1), v6Host(10)]).toEqual(['fd00::1', 'fd00::a']);
    expect(() => v4Host(0)).toThrow(/1\.\.65534/);
  });

  it('writes the IPv6 edge forms of an IPv4 address', () => {
    expect(zeroFirstWordOf('10.0.0.1')).toBe('::a00:1');
    expect(ipv4KeyCollisionOf('10.0.0.1')).toBe('a00:1::');
    // Bytes 4..15 zero: as an ip_addr it is the IPv4 key itself.
    expect(canonicalIpAddr(ipv4KeyCollisionOf('10.0.0.1'))).toBe('10.0.0.1');
  });

  it('gives canonical ip_addr text, mostly ordinary, shrinking to 10.0.0.1', () => {
    const xs = fc.sample(ipAddrArb(), { numRuns: 2000, seed: SEED });
    for (const a of xs) expect(canonicalIpAddr(a)).toBe(a);
    const ordinary = xs.filter((a) => /^10\.0\.0\.[1-8]$|^fd00::[1-4]$/.test(a)).length;
    expect(ordinary / xs.length).toBeGreaterThan(0.8);
    expect(xs.some((a) => a === '::a00:1' || /^::a00:/.test(a))).toBe(true);
    expect(xs).not.toContain('0.0.0.0');
    expect(xs.some((a) => a.startsWith('::ffff:'))).toBe(false);
    const raw = fc.sample(ipAddrArb({ edges: 'raw' }), { numRuns: 3000, seed: SEED });
    expect(raw).toContain('0.0.0.0');
    expect(raw.some((a) => a.startsWith('::ffff:10.0.0.'))).toBe(true);
    const r = fc.check(
      fc.property(ipAddrArb(), () => false),
      { seed: SEED },
    );
    expect(r.counterexample?.[0]).toBe('10.0.0.1');
  });

  it('takes ports from the pool, 0 and 65535 rarely, never 929/930', () => {
    const xs = fc.sample(portArb(), { numRuns: 4000, seed: SEED });
    const edges = xs.filter((p) => p === 0 || p === 65535).length;
    expect(xs.every((p) => PORT_POOL.includes(p) || p === 0 || p === 65535)).toBe(true);
    expect(edges).toBeGreaterThan(0);
    expect(edges / xs.length).toBeLessThan(0.06);
    expect(fc.sample(portArb({ nonZero: true }), { numRuns: 2000, seed: SEED })).not.toContain(0);
  });
});

describe('raw states', () => {
  const violations = (xs: readonly MapState[]) => xs.flatMap(isConsistent).join('\n');

  it('cover the breakages section 5 rules out', () => {
    const all = violations(fc.sample(rawState(), { numRuns: 3000, seed: SEED }));
    for (const p of [
      /index \d+ is missing/,
      /outside 1\.\.count/,
      /unknown lb policy (3|7|4294967295)/,
      /random policy with/,
      /without a port/,
      /without an address/,
      /to target port 0/,
      /in two slots/,
      /neither a service nor a backend/,
      /does not exist/,
      /also a backend uid/,
      // Map ports with an upper half (interpretation.md, item 22).
      /slot \d+ port out of range \(\d+\+0x[0-9a-f]+<<16->/,
      /slot \d+ port out of range \(\d+->\d+\+0x[0-9a-f]+<<16\)/,
      /waypoint port \d+\+0x[0-9a-f]+<<16 is not/,
    ]) {
      expect(all).toMatch(p);
    }
    const xs = fc.sample(rawState(), { numRuns: 3000, seed: SEED });
    expect(xs.some((s) => s.backends.some((b) => b.addr.startsWith('::ffff:')))).toBe(true);
    expect(xs.some((s) => s.frontends.some((f) => f.addr.startsWith('::ffff:')))).toBe(true);
    expect(xs.some((s) => s.services.some((v) => v.servicePorts.includes(0) && v.targetPorts.some((t) => t !== 0)))).toBe(true);
  });

  it('mutations keep one entry per key even when they collide', () => {
    const s = build([
      { op: 'addBackend', uid: 1, addr: '10.0.0.11', waypoint: NO_WAYPOINT },
      { op: 'addService', id: 2, lbPolicy: LbPolicy.strict, ports: [{ service: 80, target: 0 }] },
      { op: 'addEndpoint', serviceId: 2, prio: 0, backendUid: 1 },
      { op: 'addFrontend', addr: '10.0.0.1', upstreamId: 2 },
      { op: 'addFrontend', addr: '::ffff:10.0.0.1', upstreamId: 2 },
    ]);
    const mapped = applyRawMutation(s, { kind: 'mapStored', what: 'frontend', ref: 0 });
    expect(uniqueKeys(mapped)).toBe(true);
    const dup = applyRawMutation(s, { kind: 'danglingEndpoint', serviceId: 2, prio: 0, index: 1, backendUid: 9 });
    expect(uniqueKeys(dup)).toBe(true);
    expect(dup.endpoints).toEqual([{ serviceId: 2, prio: 0, index: 1, backendUid: 9 }]);
  });

  it('wide counts: every group of every service gets an upper part, or every non-empty one a low part of 0', () => {
    const s = build([
      { op: 'addBackend', uid: 1, addr: '10.0.0.11', waypoint: NO_WAYPOINT },
      { op: 'addService', id: 2, lbPolicy: LbPolicy.failover, ports: [{ service: 80, target: 8080 }] },
      { op: 'addEndpoint', serviceId: 2, prio: 1, backendUid: 1 },
    ]);
    expect(s.services[0]!.endpointCounts).toEqual([0, 1, 0, 0, 0, 0, 0]);
    const wide = applyRawMutation(s, { kind: 'wideCount', upper: 0x10000 });
    expect(wide.services[0]!.endpointCounts).toEqual([0x10000, 0x10001, 0x10000, 0x10000, 0x10000, 0x10000, 0x10000]);
    const low = applyRawMutation(s, { kind: 'lowZeroCount', upper: 0x100 });
    expect(low.services[0]!.endpointCounts).toEqual([0, 0x100, 0, 0, 0, 0, 0]);
    // The endpoints stay: a u32 read picks among 256 indices, of which index 1 is present.
    expect(low.endpoints).toEqual(s.endpoints);
    const xs = fc.sample(rawState(), { numRuns: 3000, seed: SEED });
    for (const upper of [0x100, 0x10000]) {
      expect(xs.some((x) => x.services.some((v) => v.endpointCounts.some((c) => c > upper && c < 2 * upper)))).toBe(true);
      expect(xs.some((x) => x.services.some((v) => v.endpointCounts.includes(upper)))).toBe(true);
    }
  });

  it('signed empty counts: every empty group of every service gets its top bit, before and after a non-empty one', () => {
    const s = build([
      { op: 'addBackend', uid: 1, addr: '10.0.0.11', waypoint: NO_WAYPOINT },
      { op: 'addService', id: 2, lbPolicy: LbPolicy.failover, ports: [{ service: 80, target: 8080 }] },
      { op: 'addEndpoint', serviceId: 2, prio: 1, backendUid: 1 },
    ]);
    const signed = applyRawMutation(s, { kind: 'signedEmptyCount', count: 0x80000000 });
    expect(signed.services[0]!.endpointCounts).toEqual([0x80000000, 1, 0x80000000, 0x80000000, 0x80000000, 0x80000000, 0x80000000]);
    expect(signed.endpoints).toEqual(s.endpoints);
    // Generated raw states have them: a group read as a negative int before a real one, of a failover service.
    const xs = fc.sample(rawState(), { numRuns: 3000, seed: SEED });
    for (const count of [0x80000000, 0xffffffff]) {
      expect(xs.some((x) => x.services.some((v) => v.lbPolicy === LbPolicy.failover && v.endpointCounts[0] === count && v.endpointCounts.some((c) => c > 0 && c < 4)))).toBe(true);
    }
  });
});

describe('connect contexts', () => {
  const state = build([
    { op: 'addBackend', uid: 1, addr: 'fd00::11', waypoint: NO_WAYPOINT },
    { op: 'addService', id: 2, lbPolicy: LbPolicy.random, ports: [{ service: 9080, target: 0 }] },
    { op: 'addFrontend', addr: '10.0.0.1', upstreamId: 2 },
    { op: 'addFrontend', addr: 'fd00::1', upstreamId: 2 },
  ]);

  it('writes frontends in the socket family: plain, v4-mapped, or the IPv4-key IPv6 form', () => {
    const c = { to: 'frontend', ref: 0, port: { from: 'service', ref: 0 }, form: 'mapped' } as const;
    expect(resolveDestination(state, 'inet', c)).toEqual({ addr: '10.0.0.1', port: 9080 });
    expect(resolveDestination(state, 'inet', { ...c, ref: 1 })).toEqual({ addr: '10.0.0.1', port: 9080 });
    expect(resolveDestination(state, 'inet6', c)).toEqual({ addr: '::ffff:10.0.0.1', port: 9080 });
    expect(resolveDestination(state, 'inet6', { ...c, form: 'collision' })).toEqual({ addr: 'a00:1::', port: 9080 });
    // Near-mapped: v4-mapped from the third word on, but with a prefix (a native IPv6 address).
    expect(resolveDestination(state, 'inet6', { ...c, form: 'near-mapped' })).toEqual({ addr: 'fd00:1::ffff:a00:1', port: 9080 });
    expect(resolveDestination(state, 'inet6', { ...c, ref: 1 })).toEqual({ addr: 'fd00::1', port: 9080 });
    expect(addrInFamily('inet', 'fd00::1', 'mapped')).toBeNull();
  });

  it('makes control connects and their near misses', () => {
    expect(resolveDestination(state, 'inet', { to: 'control', port: 929, nearMiss: 0 })).toEqual({ addr: '0.0.0.2', port: 929 });
    expect(resolveDestination(state, 'inet', { to: 'control', port: 929, nearMiss: 3 })).toEqual({ addr: '2.0.0.0', port: 929 });
    expect(resolveDestination(state, 'inet6', { to: 'control', port: 930, nearMiss: 0 })).toEqual({ addr: '::2', port: 930 });
    const misses = [1, 2, 3, 4, 5].map((n) => resolveDestination(state, 'inet6', { to: 'control', port: 929, nearMiss: n }).addr);
    expect(misses).toEqual(['::ffff:0.0.0.2', 'fd00::2', '0:0:1::2', '::1:0:2', '::ffff:0.0.0.2']);
    // Each differs from ::2 in exactly one of its first three 32-bit words, and is written canonically.
    const words = (a: string) => {
      const b = parseAddress(a);
      const v = new DataView(b.buffer, b.byteOffset, 16);
      return [0, 4, 8, 12].map((o) => v.getUint32(o));
    };
    for (const m of CONTROL_NEAR_MISSES.inet6) {
      expect(canonicalSockText('inet6', m)).toBe(m);
      const w = words(m);
      expect(w[3]).toBe(2);
      expect(w.slice(0, 3).filter((x) => x !== 0)).toHaveLength(1);
    }
  });

  it('always gives an address the family can hold; 929/930 only for control connects', () => {
    const states = fc.sample(consistentState(), { numRuns: 200, seed: SEED }).map((b) => b.state);
    for (const s of states) {
      for (const ctx of fc.sample(connectContext(s), { numRuns: 10, seed: SEED })) {
        const b = parseAddress(ctx.dest.addr);
        expect(b.length).toBe(ctx.family === 'inet' ? 4 : 16);
        if (ctx.dest.port === 929 || ctx.dest.port === 930) expect(['0.0.0.2', '::2', ...CONTROL_NEAR_MISSES.inet, ...CONTROL_NEAR_MISSES.inet6]).toContain(ctx.dest.addr);
      }
    }
  });
});

describe('cases', () => {
  it('single-connect cases: one socket, a connect, sometimes sends and a second connect', () => {
    const xs = fc.sample(singleConnectCase({ kind: 'both' }), { numRuns: 1000, seed: SEED });
    for (const c of xs) {
      expect(opsValid(c.ops)).toBe(true);
      expect(c.ops.slice(0, 2).map((o) => o.op)).toEqual(['socket', 'connect']);
      expect(c.ops.filter((o) => o.op === 'socket')).toHaveLength(1);
      for (const o of c.ops) if (o.op === 'send') expect(o.messages).toBeGreaterThanOrEqual(1);
      for (const o of c.ops) if (o.op === 'send') expect(o.messages).toBeLessThanOrEqual(3);
      if (c.kind === 'consistent') expect(isConsistent(c.state)).toEqual([]);
    }
    expect(xs.some((c) => c.ops.some((o) => o.op === 'send'))).toBe(true);
    expect(xs.some((c) => c.ops.filter((o) => o.op === 'connect').length === 2)).toBe(true);
    expect(new Set(xs.map((c) => c.kind))).toEqual(new Set(['consistent', 'raw']));
  });

  it('start enrolled by control connects mostly, by km_manage writes now and then (values other than 0 in raw states only), in every shape', () => {
    for (const shape of ['single', 'sequence', 'dns'] as const) {
      const xs = fc.sample(caseArb({ kind: 'both', shape }), { numRuns: 1200, seed: SEED });
      const written = xs.filter((c) => c.enrolmentWrite !== undefined);
      expect(
        written.every((c) => c.enrolled),
        shape,
      ).toBe(true);
      expect(xs.filter((c) => c.enrolled && c.enrolmentWrite === undefined).length, shape).toBeGreaterThan(written.length * 2);
      expect(written.length, shape).toBeGreaterThan(xs.length / 20);
      for (const kind of ['consistent', 'raw'] as const)
        expect(
          written.some((c) => c.kind === kind && c.enrolmentWrite === 0),
          `${shape} ${kind}`,
        ).toBe(true);
      expect(new Set(written.filter((c) => c.enrolmentWrite !== 0).map((c) => c.kind)), shape).toEqual(new Set(['raw']));
      // Now and then one kind of key alone, with the ABI's value, in both kinds of state.
      for (const keys of ['cookie', 'locals'] as const) {
        const alone = written.filter((c) => c.enrolmentKeys === keys);
        expect(alone.length, `${shape} ${keys}`).toBeGreaterThan(xs.length / 60);
        expect(new Set(alone.map((c) => c.kind)), `${shape} ${keys}`).toEqual(new Set(['consistent', 'raw']));
        expect(alone.every((c) => c.enrolmentWrite === 0)).toBe(true);
      }
      expect(
        xs.some((c) => !c.enrolled),
        shape,
      ).toBe(true);
    }
  });

  it('sequences enrol and withdraw over UDP too, followed by other connects', () => {
    const xs = fc.sample(caseArb({ kind: 'both', shape: 'sequence' }), { numRuns: 1200, seed: SEED });
    const control = (o: Case['ops'][number]) => o.op === 'connect' && (o.dest.addr === '0.0.0.2' || o.dest.addr === '::2') && (o.dest.port === 929 || o.dest.port === 930);
    const byProtocol = { tcp: 0, udp: 0, udpThenConnect: 0 };
    for (const c of xs) {
      const protocol = new Map<number, string>();
      let udpControl = false;
      for (const o of c.ops) {
        if (o.op === 'socket') protocol.set(o.sock, o.protocol);
        if (o.op !== 'connect') continue;
        if (!control(o)) {
          if (udpControl) byProtocol.udpThenConnect++;
          continue;
        }
        if (protocol.get(o.sock) === 'udp') udpControl = true;
        byProtocol[protocol.get(o.sock) === 'udp' ? 'udp' : 'tcp']++;
      }
    }
    expect(byProtocol.udp).toBeGreaterThan(byProtocol.tcp / 6);
    expect(byProtocol.udp).toBeLessThan(byProtocol.tcp);
    expect(byProtocol.udpThenConnect).toBeGreaterThan(20);
  });

  it('run with connection reports off in about one case of eight, of every shape, kind and start enrolment', () => {
    for (const shape of ['single', 'sequence', 'dns'] as const) {
      const xs = fc.sample(caseArb({ kind: 'both', shape }), { numRuns: 1600, seed: SEED });
      const off = xs.filter((c) => c.monitoringOff !== undefined);
      expect(off.every((c) => c.monitoringOff === true)).toBe(true);
      expect(off.length, shape).toBeGreaterThan(xs.length / 12);
      expect(off.length, shape).toBeLessThan(xs.length / 5);
      expect(new Set(off.map((c) => `${c.kind} ${String(c.enrolled)} ${c.enrolmentWrite !== undefined}`)).size, shape).toBe(6);
    }
  });

  it('sequence cases: valid socket use on up to 3 sockets, consistent updates stay consistent', () => {
    const xs = fc.sample(caseArb({ kind: 'both', shape: 'sequence' }), { numRuns: 600, seed: SEED });
    let applies = 0;
    let threeSockets = 0;
    for (const c of xs) {
      expect(opsValid(c.ops)).toBe(true);
      expect(c.ops[0]?.op).toBe('socket');
      for (const o of c.ops) {
        if (o.op !== 'apply') continue;
        applies++;
        expect(uniqueKeys(o.state)).toBe(true);
        if (c.kind === 'consistent') expect(isConsistent(o.state)).toEqual([]);
      }
      if (new Set(c.ops.flatMap((o) => (o.op === 'socket' ? [o.sock] : []))).size === 3) threeSockets++;
    }
    expect(applies).toBeGreaterThan(300);
    expect(threeSockets).toBeGreaterThan(30);
    for (const op of ['connect', 'send', 'close'] as const) expect(xs.some((c) => c.ops.some((o) => o.op === op))).toBe(true);
  });

  it('recordOperations skips commands whose precondition fails and restarts from the given state', () => {
    const [input] = fc.sample(sequenceInput({ kind: 'consistent' }), { numRuns: 1, seed: SEED });
    if (!input) throw new Error('no sample');
    const a = sequenceCaseFrom(input);
    expect(recordOperations([input.opening, ...input.commands], input.start.state)).toEqual(a.ops);
    expect(recordOperations([], EMPTY_STATE)).toEqual([]);
  });

  it('is deterministic: the same seed gives the same cases', () => {
    for (const shape of ['single', 'sequence'] as const) {
      const a = fc.sample(caseArb({ kind: 'both', shape }), { numRuns: 200, seed: SEED });
      const b = fc.sample(caseArb({ kind: 'both', shape }), { numRuns: 200, seed: SEED });
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      const c = fc.sample(caseArb({ kind: 'both', shape }), { numRuns: 200, seed: SEED + 1 });
      expect(JSON.stringify(c)).not.toBe(JSON.stringify(a));
    }
  });
});

describe('shrinking', () => {
  it('a strict service with a prio-1 endpoint shrinks to one service, one endpoint, one backend', () => {
    const r = fc.check(
      fc.property(consistentState(), ({ state }) => !state.services.some((v) => v.lbPolicy === LbPolicy.strict && state.endpoints.some((e) => e.serviceId === v.id && e.prio === 1))),
      { seed: SEED, numRuns: 1000 },
    );
    expect(r.failed).toBe(true);
    const built = r.counterexample?.[0];
    if (!built) throw new Error('no counterexample');
    const { state, ops } = built;
    expect(state.services).toHaveLength(1);
    expect(state.endpoints).toHaveLength(1);
    expect(state.backends).toHaveLength(1);
    expect(state.frontends).toHaveLength(0);
    expect(state.services[0]).toMatchObject({ lbPolicy: LbPolicy.strict, waypoint: NO_WAYPOINT });
    expect(state.endpoints[0]).toMatchObject({ prio: 1, index: 1 });
    // Service ids and backend uids share one allocator, so 1 and 2 are the smallest possible.
    expect(new Set([state.services[0]?.id, state.backends[0]?.uid])).toEqual(new Set([1, 2]));
    expect(state.backends[0]).toMatchObject({ addr: '10.0.0.1', waypoint: NO_WAYPOINT });
    expect(ops.map((o) => o.op)).toEqual(['addBackend', 'addService', 'addEndpoint']);
  });

  it('a failure needing a waypoint-bound hit keeps exactly the chain it needs', () => {
    const hitsWaypoint = (c: Case) => {
      const sock = c.ops[0];
      const conn = c.ops[1];
      if (sock?.op !== 'socket' || conn?.op !== 'connect') return false;
      const key = sock.family === 'inet6' ? (v4MappedInner(conn.dest.addr) ?? canonicalIpAddr(conn.dest.addr)) : conn.dest.addr;
      const f = c.state.frontends.find((x) => x.addr === key);
      const v = f && c.state.services.find((x) => x.id === f.upstreamId);
      return !!v && v.waypoint.port !== 0 && !isAllZero(v.waypoint.addr);
    };
    const r = fc.check(
      fc.property(singleConnectCase({ kind: 'consistent' }), (c) => !hitsWaypoint(c)),
      { seed: SEED, numRuns: 2000 },
    );
    const c = r.counterexample?.[0];
    if (!c) throw new Error('no counterexample');
    expect(c.state.services).toHaveLength(1);
    expect(c.state.frontends).toHaveLength(1);
    expect(c.state.endpoints).toHaveLength(0);
    expect(c.state.backends).toHaveLength(0);
    expect(c.state.services[0]?.id).toBe(1);
    expect(c.enrolled).toBe(true);
    expect(c.ops).toEqual([
      { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
      { op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port: 80 } },
    ]);
  });

  it('sequence cases shrink through fc.commands to the few operations a failure needs', () => {
    // Fails when a socket that has sent is closed.
    const sentThenClosed = (ops: readonly Operation[]) => {
      const sent = new Set<number>();
      for (const o of ops) {
        if (o.op === 'send') sent.add(o.sock);
        if (o.op === 'close' && sent.has(o.sock)) return true;
      }
      return false;
    };
    const r = fc.check(
      fc.property(sequenceInput({ kind: 'consistent' }), (input) => !sentThenClosed(sequenceCaseFrom(input).ops)),
      { seed: SEED, numRuns: 2000 },
    );
    const input = r.counterexample?.[0];
    if (!input) throw new Error('no counterexample');
    const c = sequenceCaseFrom(input);
    expect(c.ops).toEqual([
      { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
      { op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port: 80 } },
      { op: 'send', sock: 0, messages: 1 },
      { op: 'close', sock: 0 },
    ]);
    expect(c.state).toEqual(EMPTY_STATE);
  });
});

// ---------------------------------------------------------------------------------------------
// Distribution.

function frontendKey(family: Family, addr: string): string {
  if (family === 'inet') return addr;
  return v4MappedInner(addr) ?? canonicalIpAddr(addr);
}

function configured(w: Waypoint | undefined): boolean {
  return !!w && w.port !== 0 && !isAllZero(w.addr);
}

/** What the first connect of a single-connect case meets. */
function classify(c: Case): string[] {
  const sock = c.ops[0];
  const conn = c.ops[1];
  if (sock?.op !== 'socket' || conn?.op !== 'connect') throw new Error('not a single-connect case');
  const out: string[] = [sock.family, sock.protocol, c.enrolled ? 'enrolled' : 'not enrolled'];
  const d = conn.dest;
  if (sock.family === 'inet6' && v4MappedInner(d.addr) !== null) out.push('v4-mapped');
  if (sock.family === 'inet6' && isIPv4Form(canonicalIpAddr(d.addr))) out.push('ipv6 on an ipv4 key');
  if (d.port === 53) out.push('dns port');
  if (c.state.backends.some((b) => b.uid === 0)) out.push('dns proxy');
  if ((d.addr === '0.0.0.2' || d.addr === '::2') && (d.port === 929 || d.port === 930)) {
    out.push('control');
    return out;
  }
  const f = c.state.frontends.find((x) => x.addr === frontendKey(sock.family, d.addr));
  if (!f) {
    out.push('frontend miss');
    return out;
  }
  out.push('frontend hit');
  const svc = c.state.services.find((v) => v.id === f.upstreamId);
  if (!svc) {
    const b = c.state.backends.find((x) => x.uid === f.upstreamId);
    if (b) out.push('direct pod');
    if (configured(b?.waypoint)) out.push('backend waypoint');
    return out;
  }
  out.push(['random', 'strict', 'failover'][svc.lbPolicy] ?? 'unknown policy');
  if (configured(svc.waypoint)) out.push('service waypoint');
  const best = svc.endpointCounts.findIndex((n) => n > 0);
  out.push(best < 0 ? 'no endpoints' : best === 0 ? 'prio 0 endpoints' : 'only worse prios');
  if (svc.servicePorts.includes(d.port)) out.push('port slot hit');
  // A slot whose port has an upper half and whose low half is the destination port (interpretation.md, item 22).
  if (svc.servicePorts.some((p) => p > 0xffff && (p & 0xffff) === d.port)) out.push('wide service port');
  const backends = c.state.endpoints.filter((e) => e.serviceId === svc.id).map((e) => c.state.backends.find((b) => b.uid === e.backendUid));
  if (backends.some((b) => configured(b?.waypoint))) out.push('backend waypoint');
  return out;
}

describe('distribution of 2,000 single-connect cases', () => {
  const measure = (kind: 'consistent' | 'raw') => {
    const counts = new Map<string, number>();
    const xs = fc.sample(singleConnectCase({ kind }), { numRuns: 2000, seed: SEED });
    for (const c of xs) for (const k of classify(c)) counts.set(k, (counts.get(k) ?? 0) + 1);
    return (k: string) => (counts.get(k) ?? 0) / xs.length;
  };

  it('consistent states reach every situation at a reasonable rate', () => {
    const f = measure('consistent');
    const minimum: Record<string, number> = {
      inet: 0.4,
      inet6: 0.25,
      tcp: 0.6,
      udp: 0.1,
      'not enrolled': 0.08,
      'v4-mapped': 0.15,
      'ipv6 on an ipv4 key': 0.01,
      'dns port': 0.05,
      'dns proxy': 0.15,
      control: 0.03,
      'frontend hit': 0.5,
      'frontend miss': 0.15,
      'direct pod': 0.08,
      random: 0.08,
      strict: 0.08,
      failover: 0.08,
      'service waypoint': 0.04,
      'backend waypoint': 0.04,
      'prio 0 endpoints': 0.15,
      'only worse prios': 0.03,
      'no endpoints': 0.04,
      'port slot hit': 0.2,
    };
    const report = Object.keys(minimum)
      .map((k) => `${k} ${(100 * f(k)).toFixed(1)}%`)
      .join(', ');
    console.log(`consistent: ${report}`);
    for (const [k, min] of Object.entries(minimum)) expect(f(k), k).toBeGreaterThanOrEqual(min);
  });

  it('raw states reach unknown policies and the usual situations', () => {
    const f = measure('raw');
    const minimum: Record<string, number> = {
      'frontend hit': 0.4,
      'frontend miss': 0.15,
      random: 0.04,
      strict: 0.04,
      failover: 0.04,
      'unknown policy': 0.01,
      'service waypoint': 0.02,
      'backend waypoint': 0.02,
      'prio 0 endpoints': 0.08,
      'only worse prios': 0.02,
      'wide service port': 0.003,
    };
    const report = Object.keys(minimum)
      .map((k) => `${k} ${(100 * f(k)).toFixed(1)}%`)
      .join(', ');
    console.log(`raw: ${report}`);
    for (const [k, min] of Object.entries(minimum)) expect(f(k), k).toBeGreaterThanOrEqual(min);
  });
});
