// Cases cross to the kernel worker and the VM's run thread as bytes (bpf/codec/case-wire.ts): every field a case starts
// with must come back as it went, or the worker runs another case than the model judged; what the
// parent's cases shared must stay shared, or the worker re-encodes entities it holds.

import { describe, expect, it } from 'vitest';
import { decodeCases, encodeCases } from '../../bpf/codec/case-wire.js';
import type { Case, MapState, Operation } from '../../model/domain.js';
import { EMPTY_STATE } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { generatedCases } from '../../properties/run.js';
import { KmeshCheckError } from '../../shared/errors.js';

const ops: Case['ops'] = [
  { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
  { op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port: 80 } },
];
const state: MapState = { ...EMPTY_STATE, frontends: [{ addr: '10.0.0.1', upstreamId: 1 }] };

/** A state whose numbers take every width and a few no map could hold, with texts no address has. */
const oddState: MapState = {
  frontends: [
    { addr: 'fd00::ffff:10.0.0.1', upstreamId: 0xffffffff },
    // A leading U+FEFF is text, not a byte order mark to drop; a pair of UTF-16 halves is one character.
    { addr: '\ufeff10.0.0.1', upstreamId: 2 },
    { addr: '10.0.0.\ud83d\ude00', upstreamId: 3 },
  ],
  services: [
    {
      id: 251,
      endpointCounts: [252, 253, 254, 255, 256, 65535, 65536],
      lbPolicy: 7,
      servicePorts: [80 + 65536 * 3, 0, -1, 1.5, 2 ** 32, 2 ** 53, Number.NaN, Infinity, -0, 0],
      targetPorts: [8080, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      waypoint: { addr: 'not an address é', port: 15008 },
    },
  ],
  endpoints: [{ serviceId: 251, prio: 6, index: 0x7ff, backendUid: 4_000_000_000 }],
  backends: [{ uid: 9, addr: '', services: [251, 0, 0xffffffff], waypoint: { addr: '0.0.0.0', port: 0 } }],
};

const everyOp: Operation[] = [
  { op: 'socket', sock: 3, family: 'inet6', protocol: 'udp' },
  { op: 'connect', sock: 3, dest: { addr: '::ffff:10.0.0.7', port: 65535 } },
  { op: 'send', sock: 3, messages: 2 },
  { op: 'sendto', sock: 3, dest: { addr: '10.0.0.53', port: 53 }, n: 4 },
  { op: 'recvfrom', sock: 3 },
  { op: 'deliver', sock: 3, from: { addr: '10.0.0.2', port: 5353 } },
  { op: 'apply', state: oddState },
  { op: 'close', sock: 3 },
  { op: 'socket', sock: 4, family: 'inet', protocol: 'udp', bindTo: '10.6.0.6' },
];

const roundTrip = (cases: readonly Case[]) => decodeCases(encodeCases(cases));

describe('cases as bytes, for a worker', () => {
  it('come back with the same start (enrolment, written keys and value, monitoring), maps and operations', () => {
    const cases: Case[] = [
      { state, kind: 'consistent', enrolled: true, ops },
      { state, kind: 'raw', enrolled: false, ops },
      { state, kind: 'raw', enrolled: true, enrolmentWrite: 0xffffffff, ops },
      { state, kind: 'consistent', enrolled: true, enrolmentWrite: 0, enrolmentKeys: 'cookie', ops },
      { state, kind: 'consistent', enrolled: true, enrolmentWrite: 0, enrolmentKeys: 'locals', monitoringOff: true, ops },
      { state: oddState, kind: 'raw', enrolled: false, enrolmentWrite: 300, ops: everyOp },
    ];
    // toStrictEqual: an optional field absent must come back absent, not undefined.
    expect(roundTrip(cases)).toStrictEqual(cases);
  });

  it('come back as the generated cases of every phase were, DNS and sequences included', () => {
    const cases = generatedCases({ seed: 7, runs: 600, states: 'both', env: DEFAULT_ENVIRONMENT });
    const kinds = new Set(cases.flatMap((c) => c.ops.map((o) => o.op)));
    for (const k of ['socket', 'connect', 'send', 'close', 'sendto', 'recvfrom', 'deliver', 'apply']) expect(kinds).toContain(k);
    expect(cases.some((c) => c.ops.some((o) => o.op === 'socket' && o.bindTo !== undefined))).toBe(true);
    for (let i = 0; i < cases.length; i += 126) {
      const batch = cases.slice(i, i + 126);
      expect(roundTrip(batch)).toStrictEqual(batch);
    }
  });

  it('keep shared what the batch shared: entities, their lists, states and operation lists', () => {
    const other: MapState = { ...state, services: oddState.services, frontends: [oddState.frontends[0]!, state.frontends[0]!] };
    const back = roundTrip([
      { state, kind: 'consistent', enrolled: true, ops },
      { state, kind: 'consistent', enrolled: false, ops },
      { state: other, kind: 'raw', enrolled: false, ops: [{ op: 'apply', state }] },
    ]);
    expect(back[1]!.state).toBe(back[0]!.state);
    expect(back[1]!.ops).toBe(back[0]!.ops);
    expect(back[2]!.state.frontends).not.toBe(back[0]!.state.frontends);
    // One entity in two lists stays one object (the tracker skips an entity it holds).
    expect(back[2]!.state.frontends[1]).toBe(back[0]!.state.frontends[0]);
    expect(back[2]!.state).not.toBe(back[0]!.state);
    expect((back[2]!.ops[0] as Extract<Operation, { op: 'apply' }>).state).toBe(back[0]!.state);
  });

  it('pass an operation of a kind they do not know as it is, for the worker to judge', () => {
    const strange = { op: 'listen', sock: 1, backlog: 5 } as unknown as Operation;
    expect(roundTrip([{ state, kind: 'raw', enrolled: false, ops: [strange] }])[0]!.ops).toEqual([strange]);
  });

  it('refuse, in one line naming the problem, a field of the wrong type, a missing one and text UTF-8 cannot hold', () => {
    const withFrontend = (upstreamId: unknown, addr: unknown = '10.0.0.1'): Case[] => [{ state: { ...state, frontends: [{ addr, upstreamId } as never] }, kind: 'raw', enrolled: false, ops }];
    const refused = (cases: Case[]) => {
      try {
        encodeCases(cases);
      } catch (e) {
        return (e as Error).message;
      }
      return null;
    };
    expect(refused(withFrontend('1'))).toMatch(/^a case holds "1" where a number belongs/);
    expect(refused(withFrontend(5n))).toMatch(/^a case holds 5n where a number belongs/);
    expect(refused(withFrontend(1, '10.0.0.\ud800'))).toMatch(/where text that UTF-8 can hold belongs/);
    expect(refused([{ state: { ...state, services: [{ ...oddState.services[0]!, waypoint: undefined as never }] }, kind: 'raw', enrolled: false, ops }])).toMatch(
      /^case 0 of the batch cannot go to the executor's worker: /,
    );
    for (const m of [refused(withFrontend('1')), refused(withFrontend(5n))]) expect(m).not.toContain('\n');
  });

  it('refuse bytes cut short, too long or corrupted with a one-line error of the worker, never a crash of another kind', () => {
    const bytes = encodeCases([{ state: oddState, kind: 'raw', enrolled: false, ops: [...everyOp, { op: 'listen', sock: 1 } as unknown as Operation] }]);
    const oneLine = (b: Uint8Array) => {
      try {
        decodeCases(b);
        return true;
      } catch (e) {
        expect(e).toBeInstanceOf(KmeshCheckError);
        expect((e as Error).message).not.toContain('\n');
        return false;
      }
    };
    for (let n = 0; n < bytes.length; n++) expect(oneLine(bytes.subarray(0, n))).toBe(false);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => decodeCases(longer)).toThrow(/bytes after its last case/);
    // Every byte set to every tag and to a few small values: some of these still decode (into
    // other cases: bytes carry no checksum), the others must fail as above.
    for (let i = 0; i < bytes.length; i++)
      for (const v of [0, 1, 7, 0xfb, 0xfc, 0xfd, 0xfe, 0xff]) {
        const changed = bytes.slice();
        changed[i] = v;
        oneLine(changed);
      }
  });
});
