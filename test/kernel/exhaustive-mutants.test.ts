// Checking power of the exhaustive phase alone (no random sampling): every mutant of bpf/src (the
// DNS ones by its datagram sequences: sendto, recvfrom, deliver) is killed by bounded-exhaustive exploration on the VM at scope 1, or else at scope 2 (whose tree is
// visited in equal time slices per top-level choice, since it does not complete in a test's time).

import { describe, expect, it } from 'vitest';
import { MUTANTS, buildMutant } from '../../cli/mutants.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { explore } from '../../properties/explore.js';

describe('exhaustive phase against the mutants', () => {
  it('kills every mutant within its scope at scope <= 2 on the VM', async () => {
    const verdicts: { name: string; scope: number | null; invariant: string | null }[] = [];
    for (const m of MUTANTS) {
      const vm = await createVmExecutor({ objects: buildMutant(m.name) });
      try {
        let killedAt: { scope: number; invariant: string } | null = null;
        for (const scope of [1, 2]) {
          const r = await explore({ scope, env: DEFAULT_ENVIRONMENT, vm, stopAtFirst: true, maxFindings: 1, ...(scope === 2 ? { timeLimitMs: 60_000 } : {}) });
          const cx = r.counterexamples[0];
          if (cx) {
            killedAt = { scope, invariant: cx.failure.invariant };
            expect(cx.phase).toBe(`exhaustive/scope-${scope}`);
            break;
          }
          // Scope 1 must have been explored completely before scope 2 is tried.
          if (scope === 1) expect(r.complete).toBe(true);
        }
        verdicts.push({ name: m.name, scope: killedAt?.scope ?? null, invariant: killedAt?.invariant ?? null });
      } finally {
        await vm.close();
      }
    }
    expect(verdicts.filter((v) => v.scope === null).map((v) => v.name)).toEqual([]);
  }, 900_000);
});
