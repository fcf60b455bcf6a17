// The exact outcome sets judge what a program picks, not how: a data path that picks endpoints
// uniformly by a multiply-shift instead of `prandom % count` gives every endpoint for some draw,
// and the checker, which tries the draws of both picks before it says no draw gives one (model/
// lb-domain.ts lbSpreadDomain), passes it; one that never picks the last endpoint still fails.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { buildMutant } from '../../cli/mutants.js';
import { packageRoot } from '../../shared/package.js';
import { backend, connect, endpoint, frontend, maps, service, socket } from '../../model/builders.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { lbSpreadDomain, spreadDraw } from '../../model/lb-domain.js';
import type { Case } from '../../model/domain.js';
import type { ObjectPaths } from '../../model/executor.js';
import { judge } from '../../properties/judge.js';
import { COVERS_MODEL, exploringVm } from '../../properties/exact-set.js';
import { prandomValues } from '../../generators/exhaustive/classes.js';

/** A random service of `n` endpoints behind 10.96.0.1:80. */
function randomService(n: number): Case {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  return {
    state: maps({
      frontends: [frontend('10.96.0.1', 1)],
      services: [service(1, { counts: [n], ports: [[80, 8080]] })],
      endpoints: ids.map((i) => endpoint(1, 0, i, 10 + i)),
      backends: ids.map((i) => backend(10 + i, `10.0.0.${i}`, [1])),
    }),
    kind: 'consistent',
    enrolled: true,
    ops: [socket(1, 'inet', 'tcp'), connect(1, '10.96.0.1', 80)],
  };
}

/** Our sources with the pick `index = (prandom * count) >> 32 + 1`, built in `dir`. */
function multiplyShiftPick(dir: string): ObjectPaths {
  cpSync(join(packageRoot(), 'bpf/src'), join(dir, 'src'), { recursive: true });
  const route = join(dir, 'src/route.h');
  const text = readFileSync(route, 'utf8');
  const pick = 'return bpf_get_prandom_u32() % count + 1;';
  expect(text).toContain(pick);
  writeFileSync(route, text.replace(pick, 'return (__u32)(((__u64)bpf_get_prandom_u32() * count) >> 32) + 1;'));
  const r = spawnSync('make', ['--no-print-directory', '-C', join(packageRoot(), 'bpf'), `SRC=${join(dir, 'src')}`, `OUT=${join(dir, 'out')}`], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return { connect: join(dir, 'out/cgroup_sock.o'), sockops: join(dir, 'out/sockops.o'), sendmsg: join(dir, 'out/sendmsg.o') };
}

async function coversVerdicts(objects: ObjectPaths | undefined): Promise<Array<string | null>> {
  const vm = await createVmExecutor(objects ? { objects } : {});
  try {
    const out: Array<string | null> = [];
    for (const n of [2, 3, 5]) {
      const j = await judge(randomService(n), { env: DEFAULT_ENVIRONMENT, executor: vm, exact: exploringVm(vm)! });
      expect(j.exercised.has(COVERS_MODEL.name)).toBe(true);
      out.push(j.failure?.invariant ?? null);
    }
    return out;
  } finally {
    await vm.close();
  }
}

describe('exact sets judge the picks, not the pick formula', () => {
  it('the draws tried include each index of a multiply-shift pick', () => {
    const domain = lbSpreadDomain(randomService(3));
    for (let i = 0; i < 3; i++) expect(domain).toContain(spreadDraw(i, 3));
    expect(Math.floor((spreadDraw(1, 3) * 3) / 2 ** 32)).toBe(1);
    expect(prandomValues(3)).toContain(spreadDraw(1, 3));
  });

  it('pass ours and a multiply-shift pick; fail a pick that never takes the last endpoint', async () => {
    if (process.geteuid?.() !== 0) throw new Error("building the variant needs the kernel tests' toolchain: run this test as root");
    const dir = mkdtempSync(join(tmpdir(), 'kc-pick-'));
    try {
      expect(await coversVerdicts(undefined)).toEqual([null, null, null]);
      expect(await coversVerdicts(multiplyShiftPick(dir))).toEqual([null, null, null]);
      expect(await coversVerdicts(buildMutant('random-never-last'))).toEqual([COVERS_MODEL.name, COVERS_MODEL.name, COVERS_MODEL.name]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
