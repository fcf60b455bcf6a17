// Bounded-exhaustive exploration (properties/explore.ts) where root is needed: a mutant (built from
// its patch) that reads map entries the semantics never reads is found only because the compiled
// program's reads are choice points too; the waypoint-chain mutants need a chain that reaches a second
// service or backend (a waypoint's own frontend entry is free, the second id one deviation) and are
// killed at scope 2 on both executors; and every enumerated case runs on the kernel executor.

import { describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { buildMutant } from '../../cli/mutants.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { explore } from '../../properties/explore.js';
import { exactVerdict } from '../../properties/exact-set.js';
import { describeSkeleton, skeletons } from '../../generators/exhaustive/skeletons.js';
import { judge } from '../../properties/judge.js';
import { judgeSaved } from '../../cli/exhaustive.js';
import type { Case } from '../../model/domain.js';
import type { Executor } from '../../model/executor.js';
import { startKernel } from '../helpers/kernel.js';

// connect-send, enrolled, AF_INET TCP to an ordinary IPv4 address on the ordinary port.
const TCP_V4 = skeletons(1).findIndex((s) => s.sequence === 'connect-send' && s.enrolled && s.family === 'inet' && s.protocol === 'tcp' && s.destClass === 'ipv4' && s.port === 80);

// Every datagram skeleton of scope 1.
const DATAGRAM = skeletons(1).flatMap((s, i) => (s.sequence.startsWith('sendto-') ? [i] : []));

describe('bounded-exhaustive exploration (root: mutant builds, the kernel)', () => {
  it('kills a mutant that reads entries the model never reads, which a model-driven enumeration misses', async () => {
    const vm = await createVmExecutor({ objects: buildMutant('endpoint-miss-next-group') });
    const both = await explore({ scope: 1, env: DEFAULT_ENVIRONMENT, vm, onlySkeletons: [TCP_V4], maxFindings: 1 });
    expect(both.counterexamples.length).toBe(1);
    const cx = both.counterexamples[0]!;
    expect(cx.phase).toBe('exhaustive/scope-1');
    // The finding needs an endpoint in the group after the drawn one: one the semantics never reads.
    expect(cx.case.state.endpoints.some((e) => e.prio === 1)).toBe(true);
    expect(exactVerdict(cx.case, DEFAULT_ENVIRONMENT, vm, 1)).not.toBeNull();

    const modelOnly = await explore({ scope: 1, env: DEFAULT_ENVIRONMENT, vm, onlySkeletons: [TCP_V4], readers: 'model', maxFindings: 1 });
    expect(modelOnly.complete).toBe(true);
    expect(modelOnly.counterexamples).toEqual([]);
    expect(modelOnly.failingStates).toBe(0);
    await vm.close();
  }, 180_000);

  it.each(['tail-slot-wrong', 'via-waypoint-cleared'])(
    "kills the waypoint-chain mutant %s at scope 2 (the waypoint's frontend entry names a second id: one deviation), on the VM and on the kernel",
    async (name) => {
      const objects = buildMutant(name);
      const vm = await createVmExecutor({ objects });
      const plain = skeletons(2).findIndex((s) => describeSkeleton(s) === describeSkeleton(skeletons(1)[TCP_V4]!));
      let c: Case;
      try {
        const two = await explore({ scope: 2, env: DEFAULT_ENVIRONMENT, vm, onlySkeletons: [plain], stopAtFirst: true, maxFindings: 1 });
        expect(two.counterexamples.length).toBe(1);
        c = two.counterexamples[0]!.case;
        // The chain's second pass found the waypoint address's own frontend entry, naming a second id.
        expect(c.state.frontends.length).toBe(2);
        expect(new Set(c.state.frontends.map((f) => f.upstreamId)).size).toBe(2);
        // Saved as a finding of exhaustive/scope-2, the case replays by exact outcome sets: it fails
        // on the mutant's VM, and passes on our objects.
        const saved = { phase: 'exhaustive/scope-2', case: c };
        expect((await judgeSaved(saved, { name: 'vm', executor: vm, objects, env: DEFAULT_ENVIRONMENT })).failure).not.toBeNull();
        const ours = await createVmExecutor({});
        try {
          expect((await judgeSaved(saved, { name: 'vm', executor: ours, objects: {}, env: DEFAULT_ENVIRONMENT })).failure).toBeNull();
        } finally {
          await ours.close();
        }
      } finally {
        await vm.close();
      }
      const kernel = await startKernel({ objects });
      try {
        // The kernel draws its own prandom values: a few runs, one of which must leave the allowed set.
        let failed = false;
        for (let i = 0; i < 8 && !failed; i++) failed = (await judge(c, { env: kernel.environment, executor: kernel })).failure !== null;
        expect(failed).toBe(true);
      } finally {
        await kernel.close();
      }
    },
    300_000,
  );

  it('on the kernel: every enumerated case runs there and gives an allowed outcome (scope 1, complete)', async () => {
    const kernel = await startKernel();
    const vm = await createVmExecutor({});
    let ran = 0;
    const counting: Executor = {
      name: kernel.name,
      environment: kernel.environment,
      run: async (cases: readonly Case[]) => {
        ran += cases.length;
        return kernel.run(cases);
      },
      close: () => kernel.close(),
    };
    try {
      // The TCP connect skeleton, and every datagram one (sendto, recvfrom, deliver: DNS stand-ins).
      for (const only of [[TCP_V4], DATAGRAM]) {
        ran = 0;
        const r = await explore({ scope: 1, env: kernel.environment, vm, executor: counting, onlySkeletons: only });
        expect(r.complete).toBe(true);
        expect(r.counterexamples).toEqual([]);
        expect(ran).toBeGreaterThanOrEqual(r.states);
      }
    } finally {
      await vm.close();
      await kernel.close();
    }
  }, 180_000);
});
