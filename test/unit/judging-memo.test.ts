// What judging keeps between lookups must never be stale: a spec run's derived views belong to that
// run only (a spread copy with other observations derives its own), and the model's map index
// follows map-update order in both of its table forms and after a state left its recent list.

import { describe, expect, it } from 'vitest';
import type { Frontend } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { invariantNamed, SpecRun, stepViews, type SpecContext } from '../../model/spec/index.js';
import { BACKENDS, VIP, backend, endpoint, frontend, maps, mkCase, oneConnect, send, service, sock, connect, threeBackends } from '../model-fixtures.js';

const env = DEFAULT_ENVIRONMENT;

function runOf(c: ReturnType<typeof mkCase>): SpecRun {
  const t = outcomes(c, env)[0]!;
  return new SpecRun(
    c,
    env,
    c.ops.map((op, i) => ({ op, observation: t.observations[i]!, passes: t.passes[i]! })),
  );
}

describe("a spec run's derived views", () => {
  it('are derived once and shared by every invariant of the run', () => {
    const run = runOf(mkCase(threeBackends(), [sock(1, 'inet'), connect(1, VIP, 80), send(1, 2)]));
    expect(stepViews(run)).toBe(stepViews(run));
    expect(stepViews(run)).toHaveLength(3);
  });

  it('are not carried into a spread copy with other observations', () => {
    const run = runOf(mkCase(threeBackends(), [sock(1, 'inet'), connect(1, VIP, 80)]));
    const inv = invariantNamed('original-written-once');
    expect(inv.check(run).status).toBe('holds');
    const connected = run.steps[1]!;
    const storage = connected.observation.storage!;
    // The same run, but the connect records an original the application never asked for.
    const forged: SpecContext = {
      ...run,
      steps: [run.steps[0]!, { ...connected, observation: { ...connected.observation, storage: { ...storage, original: { addr: '10.9.9.9', port: 80 } } } }],
    };
    expect(stepViews(forged)).not.toBe(stepViews(run));
    expect(inv.check(forged).status).toBe('violated');
    expect(inv.check(run).status).toBe('holds');
  });
});

describe("the model's map index", () => {
  // The VIP is written twice: the later entry (service 2, one backend at 10.1.0.9) is the one in force.
  function twiceWritten(filler: number) {
    const padding: Frontend[] = Array.from({ length: filler }, (_, i) => frontend(`10.3.0.${i + 1}`, 1));
    return maps({
      frontends: [frontend(VIP, 1), ...padding, frontend(VIP, 2)],
      services: [service(1, { counts: [3], ports: [[80, 8080]] }), service(2, { counts: [1], ports: [[80, 9090]] })],
      endpoints: [...BACKENDS.map((_, i) => endpoint(1, 0, i + 1, 100 + i)), endpoint(2, 0, 1, 109)],
      backends: [...BACKENDS.map((a, i) => backend(100 + i, a)), backend(109, '10.1.0.9')],
    });
  }

  for (const [what, filler] of [
    ['a small state (scanned)', 0],
    ['a large state (hashed)', 40],
  ] as const) {
    it(`lets the later of two entries at one key win in ${what}`, () => {
      const ts = outcomes(oneConnect(twiceWritten(filler), 'inet', VIP, 80), env);
      expect(ts.map((t) => t.observations[1]!.peer)).toEqual([{ addr: '10.1.0.9', port: 9090 }]);
      expect(ts[0]!.passes[1]![0]).toMatchObject({ upstreamId: 2, serviceId: 2, backendUid: 109 });
    });
  }

  it('gives a state read again after many others the same outcomes', () => {
    const first = oneConnect(threeBackends(), 'inet', VIP, 80);
    const before = JSON.stringify(outcomes(first, env));
    for (let k = 0; k < 20; k++) outcomes(oneConnect(twiceWritten(k), 'inet', VIP, 80), env);
    expect(JSON.stringify(outcomes(first, env))).toBe(before);
    expect(outcomes(first, env).map((t) => t.observations[1]!.peer?.port)).toEqual([8080, 8080, 8080]);
  });
});
