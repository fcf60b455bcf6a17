// Which invariant heads an executor's failing run that breaks several: the one broken from the
// earliest operation on, not the first in the spec's list (a consequence listed before its cause
// named the finding after the consequence).

import { describe, expect, it } from 'vitest';
import type { Case, Observation } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { invariants, tlvHex, type Invariant } from '../../model/spec/index.js';
import { executorSpecFailure, judgeModel, judgeRuns } from '../../properties/judge.js';
import type { Executor } from '../../model/executor.js';
import { VIP, connect, mkCase, send, sock, viaWaypoint } from '../model-fixtures.js';

const env = DEFAULT_ENVIRONMENT;
const executor = { name: 'stub', environment: env, run: () => Promise.resolve([]), close: () => Promise.resolve() } as unknown as Executor;

/** A waypoint connect whose socket the executor left out of km_socket, so that its send went without the TLV. */
function sockhashThenTlv(): { c: Case; observed: Observation[] } {
  const c = mkCase(viaWaypoint(), [sock(1, 'inet'), connect(1, VIP, 80), send(1, 1)]);
  const t = outcomes(c, env)[0]!;
  const [opened, connected, sent] = t.observations as [Observation, Observation, Observation];
  const tlv = tlvHex('inet', { addr: VIP, port: 80 });
  expect(connected.inSockhash).toBe(true);
  expect(sent.stream!.hex.startsWith(tlv)).toBe(true);
  return { c, observed: [opened, { ...connected, inSockhash: false }, { ...sent, stream: { ...sent.stream!, hex: sent.stream!.hex.slice(tlv.length) } }] };
}

/** Broken on every cut of the case that has at least `from` operations. */
function brokenFrom(name: string, from: number): Invariant {
  return { name, statement: `${name}.`, check: (ctx) => (ctx.steps.length >= from ? { status: 'violated', detail: `${name} from ${from}` } : { status: 'holds' }) };
}

describe('the invariant that heads a failing run', () => {
  it('is the one broken at the earlier operation: sockhash-membership at the connect, not tlv-prefix at the send', () => {
    const { c, observed } = sockhashThenTlv();
    const names = invariants.map((i) => i.name);
    // The list names the consequence first: the order alone would head the finding with it.
    expect(names.indexOf('tlv-prefix')).toBeLessThan(names.indexOf('sockhash-membership'));
    expect(executorSpecFailure(c, observed, { env })?.invariant).toBe('sockhash-membership');
    const part = judgeModel(c, { env, executor });
    expect(part.judgement).toBeNull();
    const j = judgeRuns(part, [observed], { env, executor });
    expect(j.failure).toMatchObject({ invariant: 'sockhash-membership', source: 'executor' });
    // Both were checked as before: the statistics count what the list order checks.
    expect(j.exercised.has('tlv-prefix')).toBe(true);
  });

  it('keeps the list order when one invariant alone is broken, or when two are broken from the same operation', () => {
    const { c, observed } = sockhashThenTlv();
    const only = [brokenFrom('late', 3)];
    expect(executorSpecFailure(c, observed, { env, invariants: only })?.invariant).toBe('late');
    const tie = [brokenFrom('first', 2), brokenFrom('second', 2)];
    expect(executorSpecFailure(c, observed, { env, invariants: tie })).toMatchObject({ invariant: 'first', detail: 'first from 2' });
  });

  it('dates an invariant by where it stays broken, not by a cut that breaks it before what fulfils it', () => {
    const { c, observed } = sockhashThenTlv();
    // Broken by the cut after the socket (say, a rule about what must follow it), held after the connect, broken by the whole case.
    const eventual: Invariant = { name: 'eventual', statement: 'eventual.', check: (ctx) => (ctx.steps.length === 2 ? { status: 'holds' } : { status: 'violated', detail: 'eventual' }) };
    expect(executorSpecFailure(c, observed, { env, invariants: [eventual, brokenFrom('at-connect', 2)] })?.invariant).toBe('at-connect');
    expect(executorSpecFailure(c, observed, { env, invariants: [eventual, brokenFrom('at-send', 3)] })?.invariant).toBe('eventual');
  });
});
