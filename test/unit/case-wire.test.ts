// Cases cross to the kernel worker as bytes (bpf/kernel/case-wire.ts): every field a case starts
// with must come back as it went, or the worker runs another case than the model judged; what the
// parent's cases shared must stay shared, or the worker re-encodes entities it holds.

import { describe, expect, it } from 'vitest';
import { decodeCases, encodeCases } from '../../bpf/kernel/case-wire.js';
import type { Case, MapState, Operation } from '../../model/domain.js';
import { EMPTY_STATE } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { generatedCases } from '../../properties/run.js';

const ops: Case['ops'] = [
  { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
  { op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port: 80 } },
];
const state: MapState = { ...EMPTY_STATE, frontends: [{ addr: '10.0.0.1', upstreamId: 1 }] };

/** A state whose numbers take every width and a few no map could hold, with texts no address has. */
const oddState: MapState = {
  frontends: [{ addr: 'fd00::ffff:10.0.0.1', upstreamId: 0xffffffff }],
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
];

const roundTrip = (cases: readonly Case[]) => decodeCases(encodeCases(cases));

describe('kernel worker: cases as bytes', () => {
  it('come back with the same start (enrolment, written keys and value, monitoring), maps and operations', () => {
    const cases: Case[] = [
      { state, kind: 'consistent', enrolled: true, ops },
      { state, kind: 'raw', enrolled: false, ops },
      { state, kind: 'raw', enrolled: true, enrolmentWrite: 0xffffffff, ops },
      { state, kind: 'consistent', enrolled: true, enrolmentWrite: 0, enrolmentKeys: 'cookie', ops },
      { state, kind: 'consistent', enrolled: true, enrolmentWrite: 0, enrolmentKeys: 'locals', monitoringOff: true, ops },
      { state: oddState, kind: 'raw', enrolled: false, enrolmentWrite: 300, ops: everyOp },
    ];
    expect(roundTrip(cases)).toEqual(cases);
  });

  it('come back as the generated cases of every phase were, DNS and sequences included', () => {
    const cases = generatedCases({ seed: 7, runs: 600, states: 'both', env: DEFAULT_ENVIRONMENT });
    const kinds = new Set(cases.flatMap((c) => c.ops.map((o) => o.op)));
    for (const k of ['socket', 'connect', 'send', 'close', 'sendto', 'recvfrom', 'deliver', 'apply']) expect(kinds).toContain(k);
    for (let i = 0; i < cases.length; i += 126) {
      const batch = cases.slice(i, i + 126);
      expect(roundTrip(batch)).toEqual(batch);
    }
  });

  it('keep shared what the batch shared: entities, their lists, states and operation lists', () => {
    const other: MapState = { ...state, services: oddState.services };
    const back = roundTrip([
      { state, kind: 'consistent', enrolled: true, ops },
      { state, kind: 'consistent', enrolled: false, ops },
      { state: other, kind: 'raw', enrolled: false, ops: [{ op: 'apply', state }] },
    ]);
    expect(back[1]!.state).toBe(back[0]!.state);
    expect(back[1]!.ops).toBe(back[0]!.ops);
    expect(back[2]!.state.frontends).toBe(back[0]!.state.frontends);
    expect(back[2]!.state).not.toBe(back[0]!.state);
    expect((back[2]!.ops[0] as Extract<Operation, { op: 'apply' }>).state).toBe(back[0]!.state);
  });

  it('pass an operation of a kind they do not know as it is, for the worker to judge', () => {
    const strange = { op: 'listen', sock: 1, backlog: 5 } as unknown as Operation;
    expect(roundTrip([{ state, kind: 'raw', enrolled: false, ops: [strange] }])[0]!.ops).toEqual([strange]);
  });

  it('refuse a field that is no number, and bytes cut short, changed or too long, each in one line', () => {
    const bad = { ...state, frontends: [{ addr: '10.0.0.1', upstreamId: '1' as unknown as number }] };
    expect(() => encodeCases([{ state: bad, kind: 'raw', enrolled: false, ops }])).toThrow(/where a number belongs/);
    const bytes = encodeCases([{ state: oddState, kind: 'raw', enrolled: false, ops: everyOp }]);
    for (let n = 0; n < bytes.length; n++) expect(() => decodeCases(bytes.subarray(0, n))).toThrow(/ended early|names item|tagged|operation kind/);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => decodeCases(longer)).toThrow(/bytes after its last case/);
    const tagged = bytes.slice();
    tagged[0] = 0xff;
    expect(() => decodeCases(tagged)).toThrow(/tagged 255/);
  });
});
