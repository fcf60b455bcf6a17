// Counterexample exports: the vitest regression test exported for a saved failure fails while the
// bug is there and passes on fixed objects; the bpftool batch file names every entry of the state.

import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMutant } from '../../cli/mutants.js';
import { packageRoot } from '../../bpf/kernel/paths.js';
import { bpftoolBatch, regressionTest } from '../../cli/export.js';
import type { SavedFailure } from '../../cli/failure-db.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { runChecks } from '../../properties/run.js';

const root = packageRoot();

describe('exports of a counterexample', () => {
  it('the regression test fails on the buggy objects and passes on ours', async () => {
    const objects = buildMutant('strict-empty-kept');
    const vm = await createVmExecutor({ objects });
    const r = await runChecks({ seed: 42, runs: 500, states: 'consistent', env: vm.environment, executor: vm });
    await vm.close();
    const cx = r.counterexamples[0];
    expect(cx).toBeDefined();
    const saved: SavedFailure = { id: 'export-test', savedAt: '', executor: 'vm', invariant: cx!.failure.invariant, phase: cx!.phase, seed: cx!.seed, path: cx!.path, case: cx!.case, objects: { ...objects } };

    // Inside the package, so that 'vitest' and the project's modules resolve from the test file.
    const dir = join(root, 'build', `regress-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      const config = join(dir, 'vitest.config.mjs');
      writeFileSync(config, `export default { test: { include: ['${dir}/**/*.test.ts'] } };\n`);
      const run = (file: string, objs: Record<string, string> | null) => {
        writeFileSync(file, regressionTest({ ...saved, objects: objs }, objs, file, root));
        return spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--root', root, '--config', config, file], { encoding: 'utf8', timeout: 120_000 });
      };
      const failing = run(join(dir, 'buggy.test.ts'), { ...objects });
      expect(failing.status, failing.stdout + failing.stderr).toBe(1);
      expect(failing.stdout + failing.stderr).toMatch(/kmesh-check regression export-test/);
      rmSync(join(dir, 'buggy.test.ts'));
      const passing = run(join(dir, 'fixed.test.ts'), null);
      expect(passing.status, passing.stdout + passing.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('the bpftool batch file writes every entry of the state, one update per line', () => {
    const c = {
      kind: 'consistent' as const,
      enrolled: true,
      ops: [],
      state: {
        frontends: [{ addr: '10.0.0.1', upstreamId: 1 }],
        services: [{ id: 1, endpointCounts: [1, 0, 0, 0, 0, 0, 0], lbPolicy: 0, servicePorts: [80, 0, 0, 0, 0, 0, 0, 0, 0, 0], targetPorts: [8080, 0, 0, 0, 0, 0, 0, 0, 0, 0], waypoint: { addr: '0.0.0.0', port: 0 } }],
        endpoints: [{ serviceId: 1, prio: 0, index: 1, backendUid: 7 }],
        backends: [{ uid: 7, addr: '10.0.1.7', services: [1], waypoint: { addr: '0.0.0.0', port: 0 } }],
      },
    };
    const lines = bpftoolBatch(c).split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe('map update name km_frontend key hex 0a 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 value hex 01 00 00 00');
    // service_value: port 80 is 00 50 00 00 at offset 32, target 8080 (1f 90) at offset 72.
    const service = lines.find((l) => l.includes('km_service'))!.split(' value hex ')[1]!.split(' ');
    expect(service).toHaveLength(132);
    expect(service.slice(32, 36)).toEqual(['00', '50', '00', '00']);
    expect(service.slice(72, 76)).toEqual(['1f', '90', '00', '00']);
  });
});
