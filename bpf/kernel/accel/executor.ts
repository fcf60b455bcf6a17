// The acceleration executor (parent side): starts the acceleration worker (worker-process.ts),
// sends it cases and returns its observations.

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AccelCase, AccelObservation } from '../../../model/accel/domain.js';
import type { AccelExecutor } from '../../../model/accel/executor.js';
import { KmeshCheckError } from '../../../shared/errors.js';
import { packageRoot } from '../paths.js';
import { assertPrivileges } from '../privileges.js';
import { WorkerProcess } from '../worker-process.js';
import { defaultAccelObjects, type AccelObjectPaths } from '../../../shared/package.js';
import type { AccelRequest, AccelWorkerInfo } from './protocol.js';

export { defaultAccelObjects } from '../../../shared/package.js';

function accelWorkerScript(root: string): string {
  const worker = join(root, 'dist/bpf/kernel/accel/worker.js');
  if (!existsSync(worker)) throw new KmeshCheckError('build', 'the compiled acceleration worker dist/bpf/kernel/accel/worker.js is missing: run npm run build:ts');
  for (const f of ['worker', 'driver', 'loader', 'sys']) {
    const src = join(root, `bpf/kernel/accel/${f}.ts`);
    const out = join(root, `dist/bpf/kernel/accel/${f}.js`);
    if (existsSync(src) && (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs)) {
      throw new KmeshCheckError('build', `dist/ is older than bpf/kernel/accel/${f}.ts: run npm run build:ts`);
    }
  }
  return worker;
}

export class AccelKernelExecutor implements AccelExecutor {
  readonly name = 'kernel';

  private constructor(private readonly worker: WorkerProcess<AccelRequest>) {}

  static async start(objects: Partial<AccelObjectPaths> = {}): Promise<AccelKernelExecutor> {
    assertPrivileges();
    const root = packageRoot();
    const ex = new AccelKernelExecutor(await WorkerProcess.start<AccelRequest>(accelWorkerScript(root), 'the acceleration worker'));
    try {
      const info = (await ex.worker.request({ type: 'init', objects: { ...defaultAccelObjects(root), ...objects } })).result as AccelWorkerInfo;
      ex.worker.cgroup = info.cgroup;
    } catch (e) {
      await ex.close();
      throw e;
    }
    return ex;
  }

  async run(cases: readonly AccelCase[]): Promise<AccelObservation[]> {
    return (await this.worker.request({ type: 'run', cases })).result as AccelObservation[];
  }

  async close(): Promise<void> {
    await this.worker.close();
  }
}
