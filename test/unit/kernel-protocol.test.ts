// Cases cross to the kernel worker packed (bpf/kernel/protocol.ts): every field a case starts
// with must come back as it went, or the worker runs another case than the model judged.

import { describe, expect, it } from 'vitest';
import { packCases, unpackCases } from '../../bpf/kernel/protocol.js';
import type { Case } from '../../model/domain.js';
import { EMPTY_STATE } from '../../model/domain.js';

const ops: Case['ops'] = [
  { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
  { op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port: 80 } },
];
const state: Case['state'] = { ...EMPTY_STATE, frontends: [{ addr: '10.0.0.1', upstreamId: 1 }] };

describe('kernel worker protocol: packed cases', () => {
  it('come back with the same start (enrolment, written keys and value, monitoring), maps and operations', () => {
    const cases: Case[] = [
      { state, kind: 'consistent', enrolled: true, ops },
      { state, kind: 'raw', enrolled: false, ops },
      { state, kind: 'raw', enrolled: true, enrolmentWrite: 0xffffffff, ops },
      { state, kind: 'consistent', enrolled: true, enrolmentWrite: 0, enrolmentKeys: 'cookie', ops },
      { state, kind: 'consistent', enrolled: true, enrolmentWrite: 0, enrolmentKeys: 'locals', monitoringOff: true, ops },
    ];
    const back = unpackCases(JSON.parse(JSON.stringify(packCases(cases))) as ReturnType<typeof packCases>);
    expect(back).toEqual(cases);
  });
});
