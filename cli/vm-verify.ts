// What a VM run says about the kernel's verifier: the VM runs the programs it is given, so a run
// that passes there says nothing of whether the kernel loads them. Where this process may load
// programs, the objects the run will check go through the verifier first (bpf/kernel/verify.ts),
// and one it refuses stops the run with the kernel executor's message; elsewhere the run says so.

import { existsSync } from 'node:fs';
import type { ObjectPaths } from '../model/executor.js';
import { defaultAccelObjects, defaultObjects, type AccelObjectPaths } from '../shared/package.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { reportPhaseObjects } from './report-phase.js';
import { missingCapabilities } from '../bpf/kernel/privileges.js';
import { KmeshCheckError } from '../shared/errors.js';

export interface RunObjects {
  readonly objects: Partial<ObjectPaths>;
  readonly reportObjects?: ReportObjectPaths;
  readonly accelObjects?: AccelObjectPaths;
}

/** Every object file a VM run of check will load, with what it is for (the phases' own defaults; missing ones are their phases' to report). */
export function vmRunObjects(o: RunObjects): { what: string; path: string }[] {
  const userObjects = Object.keys(o.objects).length > 0;
  const routing = { ...defaultObjects(), ...o.objects };
  const report = reportPhaseObjects({ userObjects, ...(o.reportObjects ? { objects: o.reportObjects } : {}) });
  const accel = o.accelObjects ?? (userObjects ? null : defaultAccelObjects());
  return [
    ...(['connect', 'sockops', 'sendmsg'] as const).map((r) => ({ what: r, path: routing[r] })),
    ...(report ? Object.entries(report).map(([r, path]) => ({ what: `report ${r}`, path })) : []),
    ...(accel
      ? [
          { what: 'acceleration', path: accel.ops },
          { what: 'acceleration', path: accel.redirect },
        ]
      : []),
  ].filter((x) => existsSync(x.path));
}

/** The line a VM run prints about the verifier; throws the verifier's one-line error for an object the kernel refuses. */
export async function verifyForVm(o: RunObjects, missing = missingCapabilities()): Promise<string> {
  const objects = vmRunObjects(o);
  if (missing.length > 0) return `kernel verifier: not run (not root: missing ${missing.join(', ')}): the VM runs programs the kernel may refuse to load; run as root to have them verified`;
  const { verifyObjects } = await import('../bpf/kernel/verify.js');
  try {
    verifyObjects(objects);
  } catch (e) {
    if (e instanceof KmeshCheckError && e.code === 'verifier') throw new KmeshCheckError('verifier', `${e.message}; the kernel would not load it, so the VM run stops before it starts`);
    throw e;
  }
  const files = new Set(objects.map((x) => x.path)).size;
  return `kernel verifier: loads all ${files} object files (the VM does not verify; each was loaded and closed, nothing attached)`;
}
