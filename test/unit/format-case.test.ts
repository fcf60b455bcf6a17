// A counterexample's header labels the state by what a control plane could have written (the
// section-5 rules), not by the phase that drew it: a raw phase draws consistent states too, and a
// finding on one is no mere robustness finding. The enrolment it names is the case's at its start.

import { describe, expect, it } from 'vitest';
import { formatCase } from '../../properties/format.js';
import { EMPTY_STATE, type Case } from '../../model/domain.js';
import { withMaps } from '../../model/records.js';
import { backend, service } from '../../model/builders.js';

const ops: Case['ops'] = [{ op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' }];

describe('counterexample header', () => {
  it('calls a raw-phase case consistent when every state of it is', () => {
    expect(formatCase({ state: EMPTY_STATE, kind: 'raw', enrolled: true, ops })[0]).toBe('state: control-plane-consistent; namespace enrolled at the start');
    const dangling = withMaps(EMPTY_STATE, { frontends: [{ addr: '10.0.0.1', upstreamId: 7 }] });
    // A raw state says why, so that the reader can judge how much it matters.
    expect(formatCase({ state: dangling, kind: 'raw', enrolled: false, ops })[0]).toBe(
      'state: raw (a robustness finding: frontend 10.0.0.1 points to 7, which is neither a service nor a backend); namespace NOT enrolled at the start',
    );
    const twice = withMaps(dangling, { frontends: [...dangling.frontends, { addr: '10.0.0.2', upstreamId: 8 }] });
    expect(formatCase({ state: twice, kind: 'raw', enrolled: true, ops })[0]).toMatch(/^state: raw \(a robustness finding: frontend 10\.0\.0\.1 points to 7, .*, and 1 more\); /);
    expect(formatCase({ state: EMPTY_STATE, kind: 'raw', enrolled: true, ops: [...ops, { op: 'apply', state: dangling }] })[0]).toMatch(/^state: raw \(a robustness finding: frontend 10\.0\.0\.1/);
  });

  it('says when the case runs with connection reports off', () => {
    expect(formatCase({ state: EMPTY_STATE, kind: 'consistent', enrolled: true, monitoringOff: true, ops })[0]).toBe(
      'state: control-plane-consistent; namespace enrolled at the start; connection reports off (enable_monitoring 0)',
    );
  });

  it('shows a service whose ten slots are 0->0 as such (they map a destination port 0), not as no ports', () => {
    const zeros = withMaps(EMPTY_STATE, { services: [service(1, {})] });
    expect(formatCase({ state: zeros, kind: 'raw', enrolled: true, ops }).find((l) => l.includes('random'))).toMatch(/ all 0->0 /);
    const one = withMaps(EMPTY_STATE, { services: [service(1, { ports: [[80, 8080]] })] });
    expect(formatCase({ state: one, kind: 'raw', enrolled: true, ops }).find((l) => l.includes('random'))).toMatch(/ 80->8080 /);
    // An empty slot before a used one shows: a program that stops at the first empty slot misses what follows.
    const holed = withMaps(EMPTY_STATE, { services: [{ ...service(1, { ports: [[80, 8080]] }), servicePorts: [80, 0, 443, 0, 0, 0, 0, 0, 0, 0], targetPorts: [8080, 0, 8443, 0, 0, 0, 0, 0, 0, 0] }] });
    expect(formatCase({ state: holed, kind: 'raw', enrolled: true, ops }).find((l) => l.includes('random'))).toMatch(/ 80->8080 - 443->8443 /);
  });

  it('lists what an apply changed, entry by entry', () => {
    const before = withMaps(EMPTY_STATE, { backends: [backend(0, '10.9.0.54')] });
    const after = withMaps(EMPTY_STATE, { backends: [backend(0, '10.9.0.53')] });
    const text = formatCase({ state: before, kind: 'consistent', enrolled: true, ops: [...ops, { op: 'apply', state: after }, { op: 'apply', state: after }] });
    const at = text.findIndex((l) => l.startsWith('  2. apply'));
    expect(text.slice(at + 1, at + 3)).toEqual(['       removed km_backend: 0  10.9.0.54  -  -', '       added   km_backend: 0  10.9.0.53  -  -']);
    expect(text[at + 4]).toBe('       (no entry changed)');
  });
});
