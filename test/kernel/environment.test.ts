// The measured socket-layer table (support/environment-rows.ts) against the real kernel, through
// the kernel executor (root). The rows run in a namespace that is not enrolled, so the programs
// leave every connect alone; the reference model must observe exactly what the kernel does.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KernelExecutor } from '../../bpf/kernel/executor.js';
import type { Case, Observation, Operation } from '../../model/domain.js';
import { EMPTY_STATE } from '../../model/domain.js';
import { outcomes } from '../../model/impl/index.js';
import { startKernel } from '../helpers/kernel.js';
import { CLOSED, ROWS, env, type Row } from '../support/environment-rows.js';

function caseOf(row: Row): Case {
  const ops: Operation[] = [{ op: 'socket', sock: 0, family: row.family, protocol: row.protocol }];
  for (const st of row.steps) ops.push({ op: 'connect', sock: 0, dest: { addr: st.to, port: st.port ?? 80 } });
  return { state: EMPTY_STATE, kind: 'consistent', enrolled: false, ops };
}

/** Socket-layer behaviour beyond kernelConnect: a connect left in SYN_SENT, compared with the model. */
const IN_PROGRESS: Case = {
  state: EMPTY_STATE,
  kind: 'consistent',
  enrolled: false,
  ops: [
    { op: 'socket', sock: 0, family: 'inet6', protocol: 'tcp' },
    { op: 'connect', sock: 0, dest: { addr: '::ffff:10.0.0.1', port: CLOSED } },
    { op: 'connect', sock: 0, dest: { addr: 'fd00::7', port: 80 } },
    { op: 'connect', sock: 0, dest: { addr: '::ffff:10.0.0.7', port: 80 } },
    { op: 'send', sock: 0, messages: 1 },
  ],
};

const connectsOf = (obs: Observation[]) => obs.filter((o) => o.op === 'connect').map((o) => ({ peer: o.peer?.addr ?? null, error: o.error ?? null }));

describe('the kernel agrees (kernel executor, root)', () => {
  let ex: KernelExecutor;
  let observed: Observation[][];
  const cases = [...ROWS.map(caseOf), IN_PROGRESS];

  beforeAll(async () => {
    ex = await startKernel();
    observed = await ex.run(cases);
  }, 60_000);
  afterAll(async () => {
    await ex?.close();
  });

  it.each(ROWS.map((r, i) => [r.fact, i] as const))('%s', (_, i) => {
    const row = ROWS[i]!;
    expect(connectsOf(observed[i]!)).toEqual(row.steps.map((st) => ({ peer: st.peer ?? null, error: st.error ?? null })));
  });

  it('a connect left in SYN_SENT: EINPROGRESS, then EALREADY with no program run, sends carry nothing; the model says the same', () => {
    const got = observed[ROWS.length]!;
    expect(connectsOf(got)).toEqual([
      { peer: null, error: 'ECONNREFUSED' },
      { peer: null, error: 'EINPROGRESS' },
      { peer: null, error: 'EALREADY' },
    ]);
    expect(got[4]).toMatchObject({ op: 'send', stream: null });
    const model = outcomes(IN_PROGRESS, env);
    expect(model).toHaveLength(1);
    expect(model[0]!.observations).toEqual(got);
  });

  it('every row: the model observes exactly what the kernel does', () => {
    cases.forEach((c, i) => expect(outcomes(c, env)[0]!.observations, `case ${i}`).toEqual(observed[i]));
  });
});
