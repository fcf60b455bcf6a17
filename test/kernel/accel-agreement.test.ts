// The VM's acceleration executor against the real kernel on the same cases: the generated sample,
// the two-namespace isolation cases, the docs example and the bounded-exhaustive enumeration give
// identical observations (bytes each
// end read, TCP's share, stray reads, the maps after close), on our objects and on every
// acceleration mutant, where they depart from the model (the maps compared as sets: the kernel
// walks them in hash order; cookies compared as namespaces: the kernel's are its own).

import { beforeAll, describe, expect, it } from 'vitest';
import { AccelKernelExecutor } from '../../bpf/kernel/accel/executor.js';
import { AccelVmExecutor } from '../../bpf/vm/accel-executor.js';
import { ACCEL_MUTANTS, buildAccelMutant } from '../../cli/accel-mutants.js';
import { ACCEL_EXAMPLE } from '../../docs/gen/accel-docs.js';
import type { AccelCase, AccelKey, AccelObservation } from '../../model/accel/domain.js';
import { expectedAccel } from '../../model/accel/model.js';
import { accelExhaustiveCases } from '../../generators/accel-exhaustive.js';
import type { AccelObjectPaths } from '../../shared/package.js';
import { ACCEL_CASES, ISOLATION, ISOLATION_BOTH_INSIDE } from '../support/accel-cases.js';

const CASES = [ISOLATION, ISOLATION_BOTH_INSIDE, ACCEL_EXAMPLE, ...ACCEL_CASES];

/** An observation with its map contents in one order and namespace cookies only as namespaces. */
function comparable(o: AccelObservation): unknown {
  const key = (k: AccelKey) => `${k.local}:${k.localPort}>${k.remote}:${k.remotePort}@${k.netns ?? (k.cookie === '0' ? 'zero' : 'other')}`;
  const maps = (m: Pick<AccelObservation, 'sockOpsKeys' | 'proxyEntries'>) => ({
    sockOpsKeys: m.sockOpsKeys.map(key).sort(),
    proxyEntries: m.proxyEntries.map((e) => `${key(e.key)}=${key(e.peer)}`).sort(),
  });
  return { pairs: o.pairs, stray: o.stray, ...maps(o), whileOpen: maps(o.whileOpen) };
}

/**
 * Runs `cases` on both executors, expects identical observations; how many differ from the model's.
 * With `reruns`, a case whose kernel observation differs is run on the kernel again, up to that many
 * times, and the VM's must equal one of them: a mutant whose key collides across namespaces makes
 * the kernel's outcome depend on when loopback's deferred work runs a closed connection's
 * callbacks (before or after another pair's sends), which the VM, running them at the close, does not.
 */
async function agree(cases: readonly AccelCase[], objects?: AccelObjectPaths, reruns = 0): Promise<number> {
  const kernel = await AccelKernelExecutor.start(objects);
  try {
    const vm = new AccelVmExecutor(objects);
    const [k, v] = [await kernel.run(cases), await vm.run(cases)];
    for (const [i, c] of cases.entries()) {
      const want = JSON.stringify(comparable(v[i]!));
      for (let r = 0; r < reruns && JSON.stringify(comparable(k[i]!)) !== want; r++) k[i] = (await kernel.run([c]))[0]!;
      expect(comparable(v[i]!), JSON.stringify({ case: i, c })).toEqual(comparable(k[i]!));
    }
    return cases.filter((c, i) => JSON.stringify(comparable(k[i]!)) !== JSON.stringify(comparable(expectedAccel(c)))).length;
  } finally {
    await kernel.close();
  }
}

describe('the VM agrees with the kernel on acceleration cases', () => {
  beforeAll(() => {
    if (process.geteuid?.() !== 0) throw new Error('the acceleration agreement check runs the kernel executor and requires root');
  });

  it('ours: identical observations on every case', async () => {
    expect(await agree(CASES)).toBe(0);
  });

  it('ours: identical observations on the whole enumeration at scope 2 (check --exhaustive)', async () => {
    expect(await agree([...accelExhaustiveCases(2)])).toBe(0);
  });

  for (const m of ACCEL_MUTANTS) {
    it(`mutant ${m.name}: identical observations, also where the mutant departs from the model`, async () => {
      // Fewer cases: a message the mutant loses makes the kernel wait out its receive bound.
      expect(await agree(CASES.slice(0, 80), buildAccelMutant(m.name), 3)).toBeGreaterThan(0);
    });
  }
});
