// What a run says about the kernel's verifier, before it starts. The VM runs the programs it is
// given, so a VM run that passes says nothing of whether the kernel loads them; the kernel
// executor met a refused report or acceleration object only when that phase began, and stopped
// there (exit 1) where a refused routing object had stopped it at once (exit 2). Where this process
// may load programs, every object the run will check goes through the verifier first
// (bpf/kernel/verify.ts), and one it refuses stops the run in one line; elsewhere the run says so.

import { existsSync } from 'node:fs';
import type { ObjectPaths } from '../model/executor.js';
import { defaultAccelObjects, defaultObjects, type AccelObjectPaths } from '../shared/package.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { reportPhaseObjects } from './report-phase.js';
import { missingCapabilities } from '../bpf/kernel/privileges.js';
import { KmeshCheckError } from '../shared/errors.js';
import type { ObjectToVerify } from '../bpf/kernel/verify.js';

export interface RunObjects {
  readonly objects: Partial<ObjectPaths>;
  readonly reportObjects?: ReportObjectPaths;
  readonly accelObjects?: AccelObjectPaths;
}

/** The object files of each phase of a run of check, in load order (the phases' own defaults; missing ones are their phases' to report). */
export function runObjectGroups(o: RunObjects): ObjectToVerify[][] {
  const userObjects = Object.keys(o.objects).length > 0;
  const routing = { ...defaultObjects(), ...o.objects };
  const report = reportPhaseObjects({ userObjects, ...(o.reportObjects ? { objects: o.reportObjects } : {}) });
  const accel = o.accelObjects ?? (userObjects ? null : defaultAccelObjects());
  const groups = [
    (['connect', 'sockops', 'sendmsg'] as const).map((r) => ({ what: r, path: routing[r] })),
    report ? (['connect', 'sockops', 'sendmsg', 'skb'] as const).map((r) => ({ what: `report ${r}`, path: report[r] })) : [],
    accel ? [...new Set([accel.ops, accel.redirect])].map((path) => ({ what: 'acceleration', path })) : [],
  ];
  return groups.map((g) => g.filter((x) => existsSync(x.path))).filter((g) => g.length > 0);
}

/**
 * The line a run prints about the verifier; throws the verifier's one-line error for an object
 * the kernel refuses, so that a run of either executor stops on it before it starts.
 */
export async function verifyRunObjects(o: RunObjects, missing = missingCapabilities()): Promise<string> {
  const groups = runObjectGroups(o);
  if (missing.length > 0) return `kernel verifier: not run (not root: missing ${missing.join(', ')}): the VM runs programs the kernel may refuse to load; run as root to have them verified`;
  const { verifyObjects } = await import('../bpf/kernel/verify.js');
  try {
    verifyObjects(groups);
  } catch (e) {
    if (e instanceof KmeshCheckError && e.code === 'verifier') throw new KmeshCheckError('verifier', `${e.message}; the kernel would not load it, so the run stops before it starts`);
    throw e;
  }
  const files = new Set(groups.flat().map((x) => x.path)).size;
  return `kernel verifier: loads all ${files} object files (each phase's loaded and closed, nothing attached)`;
}
