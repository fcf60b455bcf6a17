// Which ports listen during a case (bpf/runner/listening.ts): namedPorts collects the ports a
// case names (its states' service, target and waypoint ports, applied states included, and its
// connects' ports), and namesPort answers for one port what that set answers.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { namedPorts, namesPort } from '../../bpf/runner/listening.js';
import { caseArb } from '../../generators/index.js';
import type { Case } from '../../model/domain.js';

describe('listening ports', () => {
  it('names the ports of the states, the applied states and the connects', () => {
    const svc = {
      id: 1,
      endpointCounts: [0, 0, 0, 0, 0, 0, 0],
      lbPolicy: 0,
      servicePorts: [80, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      targetPorts: [8080, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      waypoint: { addr: '10.0.0.9', port: 15008 },
    };
    const c: Case = {
      kind: 'raw',
      enrolled: true,
      state: { frontends: [], services: [svc], endpoints: [], backends: [{ uid: 1, addr: '10.2.0.1', services: [], waypoint: { addr: '10.0.0.8', port: 15009 } }] },
      ops: [
        { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
        { op: 'apply', state: { frontends: [], services: [{ ...svc, servicePorts: [81, 0, 0, 0, 0, 0, 0, 0, 0, 0] }], endpoints: [], backends: [] } },
        { op: 'connect', sock: 1, dest: { addr: '10.1.0.1', port: 9000 } },
      ],
    };
    expect([...namedPorts(c)].sort((a, b) => a - b)).toEqual([0, 80, 81, 8080, 9000, 15008, 15009]);
    for (const p of [0, 80, 81, 8080, 9000, 15008, 15009]) expect(namesPort(c, p)).toBe(true);
    for (const p of [1, 79, 443, 15010]) expect(namesPort(c, p)).toBe(false);
  });

  it('namesPort agrees with namedPorts on generated cases', () => {
    const cases = fc.sample(caseArb({ kind: 'both', shape: 'sequence' }), { seed: 9, numRuns: 300 });
    let named = 0;
    for (const c of cases) {
      const ports = namedPorts(c);
      for (const p of [...ports, 0, 1, 53, 80, 443, 929, 8080, 15008, 65535]) {
        expect(namesPort(c, p)).toBe(ports.has(p));
        if (ports.has(p)) named++;
      }
    }
    expect(named).toBeGreaterThan(cases.length);
  });
});
