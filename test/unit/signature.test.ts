// A finding's model path (properties/signature.ts, chainPath): the whole chain of passes of the
// step where the run left the model, so that a bug in a waypoint chain's first pass is not
// credited to the path its last pass took (a baseline would hide another bug there); and the kind
// of difference, against the outcomes that followed the run up to that step.

import { describe, expect, it } from 'vitest';
import { backend, connect, endpoint, frontend, maps, service, socket } from '../../model/builders.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import type { Case } from '../../model/domain.js';
import { chainPath, signatureOf } from '../../properties/signature.js';
import type { Observation } from '../../model/domain.js';

const at = (c: Case) => outcomes(c, DEFAULT_ENVIRONMENT).map((t) => chainPath(t, 1));

describe('chainPath', () => {
  it('names a single pass by its path, and a chain by every pass, repeats counted', () => {
    const direct = maps({ frontends: [frontend('10.96.0.1', 7)], backends: [backend(7, '10.0.0.7')] });
    const single: Case = { state: direct, kind: 'consistent', enrolled: true, ops: [socket(0, 'inet'), connect(0, '10.96.0.1', 80)] };
    expect(at(single)).toEqual(['direct-backend']);
    // Service 1 sends every connect to its waypoint 10.96.0.2:15008, whose frontend is the service again.
    const loop = maps({
      frontends: [frontend('10.96.0.1', 1), frontend('10.96.0.2', 1)],
      services: [service(1, { counts: [1], ports: [[80, 8080]], waypoint: { addr: '10.96.0.2', port: 15008 } })],
      endpoints: [endpoint(1, 0, 1, 9)],
      backends: [backend(9, '10.0.0.9', [1])],
    });
    // The first pass and the kernel's 33 tail calls.
    expect(at({ ...single, state: loop })).toEqual(['service-waypoint x34']);
    // The waypoint's frontend names a backend instead: two passes, two paths.
    const toBackend = maps({ ...loop, frontends: [frontend('10.96.0.1', 1), frontend('10.96.0.2', 7)], backends: [...loop.backends, backend(7, '10.0.0.7')] });
    expect(at({ ...single, state: toBackend })).toEqual(['service-waypoint > direct-backend']);
    expect(at({ ...single, ops: [socket(0, 'inet')] })[0]).toBe('-');
  });
});

describe('signatureOf', () => {
  it('names the difference from the outcomes that followed the run so far, not from one that left it earlier', () => {
    const direct = maps({ frontends: [frontend('10.96.0.1', 7)], backends: [backend(7, '10.0.0.7')] });
    const c: Case = { state: direct, kind: 'consistent', enrolled: true, ops: [socket(0, 'inet'), connect(0, '10.96.0.1', 80), socket(1, 'inet'), connect(1, '10.96.0.1', 80)] };
    const [t] = outcomes(c, DEFAULT_ENVIRONMENT);
    const elsewhere = (o: Observation): Observation => ({ ...o, peer: { addr: '10.0.0.8', port: 80 } });
    // The model's outcome, and another that leaves it at the first connect and ends where the run ends.
    const other = { ...t!, observations: t!.observations.map((o, i) => (i === 1 || i === 3 ? elsewhere(o) : o)) };
    const observed = t!.observations.map((o, i) => (i === 3 ? elsewhere(o) : o));
    const failure = { invariant: 'executor-matches-model', statement: '', detail: '', source: 'executor' as const, observed };
    // The run follows the first outcome to the second connect, where its peer differs: a wrong result.
    // Against every outcome, its second connect is the other's, and the kind was "none".
    expect(signatureOf(c, failure, DEFAULT_ENVIRONMENT, [t!, other]).text).toBe('connect | result');
  });
});
