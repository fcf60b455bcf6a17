// The exact-set verdict (properties/exact-set.ts) on hand-made outcome sets: a program outcome the
// model does not allow, a model outcome no draw of the program gives, which names what the
// program gives instead and by which prandom draws, and a pass that draws twice.

import { describe, expect, it } from 'vitest';
import { compareSets, COVERS_MODEL } from '../../properties/exact-set.js';
import { MATCHES_MODEL } from '../../properties/judge.js';
import { backend, connect, endpoint, frontend, maps, service, socket } from '../../model/builders.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import type { Case } from '../../model/domain.js';

// A random service of three endpoints: the model allows each of the three backends.
const c: Case = {
  state: maps({
    frontends: [frontend('10.96.0.1', 1)],
    services: [service(1, { counts: [3], ports: [[80, 8080]] })],
    endpoints: [endpoint(1, 0, 1, 11), endpoint(1, 0, 2, 12), endpoint(1, 0, 3, 13)],
    backends: [backend(11, '10.0.0.1', [1]), backend(12, '10.0.0.2', [1]), backend(13, '10.0.0.3', [1])],
  }),
  kind: 'consistent',
  enrolled: true,
  ops: [socket(1, 'inet', 'tcp'), connect(1, '10.96.0.1', 80)],
};
const model = outcomes(c, DEFAULT_ENVIRONMENT);
const peerOf = (t: { observations: readonly { op: string; peer?: { addr: string } | null }[] }) => t.observations[1]?.peer?.addr;
const draw = (value: number) => [{ point: 'prandom', value }];

describe('exact sets', () => {
  it('equal sets pass; a model outcome no draw gives fails covers, naming what each draw gives', () => {
    expect(model.map(peerOf).sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    const program = model.map((t, i) => ({ observations: t.observations, choices: draw(i) }));
    expect(compareSets(c, model, program)).toBeNull();
    // A program that never picks the second endpoint: draws 0 and 1 give the first.
    const first = model.find((t) => peerOf(t) === '10.0.0.1')!;
    const third = model.find((t) => peerOf(t) === '10.0.0.3')!;
    const skewed = [
      { observations: first.observations, choices: draw(0) },
      { observations: first.observations, choices: draw(1) },
      { observations: third.observations, choices: draw(0xffffffff) },
    ];
    const f = compareSets(c, model, skewed)!;
    expect(f.invariant).toBe(COVERS_MODEL.name);
    expect(f.detail).toMatch(/the model allows peer 10\.0\.0\.2:8080.*no prandom draw tried gives.*; it gives peer 10\.0\.0\.1:8080.*\(prandom 0; 1\), peer 10\.0\.0\.3:8080.*\(prandom 2\^32-1\)/);
  });

  it('a program outcome the model does not allow fails matches, or the invariant of the spec it breaks', () => {
    const wrong = { ...model[0]!.observations[1]!, peer: { addr: '10.0.0.9', port: 8080 } };
    const program = [{ observations: [model[0]!.observations[0]!, wrong], choices: draw(5) }];
    const f = compareSets(c, model, program);
    expect(f?.invariant).toBe(MATCHES_MODEL.name);
    // Every draw leaves the model: "every", not "some"; also with two wrong outcomes.
    expect(f?.detail).toBe('operation 2: every prandom draw tried gives an observation the model does not allow');
    const twoWrong = [...program, { observations: [model[0]!.observations[0]!, { ...wrong, peer: { addr: '10.0.0.8', port: 8080 } }], choices: draw(6) }];
    expect(compareSets(c, model, twoWrong)?.detail).toBe('operation 2: every prandom draw tried gives an observation the model does not allow');
    // Runs that draw nothing (a case of no random pick, or a program that never draws) say so.
    expect(compareSets(c, model, [{ observations: program[0]!.observations, choices: [] }])?.detail).toBe(
      'operation 2: the program, which draws nothing here, gives an observation the model does not allow',
    );
    const two = [...program, { observations: model[1]!.observations, choices: draw(6) }];
    expect(compareSets(c, model, two)?.detail).toBe('operation 2: some prandom draw gives an observation the model does not allow');
    // Held to the spec, as a sampled run is: a backend no map holds is a fabricated peer, named so.
    const named = compareSets(c, model, program, { env: DEFAULT_ENVIRONMENT });
    expect(named?.invariant).toBe('no-fabricated-peer');
    expect(named?.detail).toMatch(/10\.0\.0\.9.*\(prandom 5\)$/);
    expect(named?.allowedAtStep?.step).toBe(1);
    // An outcome no invariant of the spec judges without the model's passes (the VIP left as it was) is still the difference.
    const other = { ...model[0]!.observations[1]!, peer: { addr: '10.96.0.1', port: 80 } };
    expect(compareSets(c, model, [{ observations: [model[0]!.observations[0]!, other] }], { env: DEFAULT_ENVIRONMENT })?.invariant).toBe(MATCHES_MODEL.name);
  });

  it('the same outcomes with a pass that draws twice (a retry after a miss) fail covers, naming the draws', () => {
    const program = model.map((t, i) => ({ observations: t.observations, choices: draw(i), mostDrawsInAPass: 1 }));
    expect(compareSets(c, model, program)).toBeNull();
    const retry = [...program.slice(1), { observations: program[0]!.observations, choices: [...draw(7), ...draw(0)], mostDrawsInAPass: 2 }];
    const f = compareSets(c, model, retry)!;
    expect(f.invariant).toBe(COVERS_MODEL.name);
    expect(f.detail).toMatch(/one run of the connect program draws prandom 2 times \(the run's draws: 7, 0\): one draw per pick, no retry \(section 3.7\), and one pass per program run/);
  });
});
