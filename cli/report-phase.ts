// The connection-report phase of `kmesh-check check` (section 7): runs after the routing checks on
// the kernel executor with our objects (or --report-objects), says plainly when and why it skips.

import { existsSync } from 'node:fs';
import { isKmeshCheckError } from '../shared/errors.js';
import { defaultReportObjects } from '../bpf/kernel/report/run.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { formatReportFailure, runReportChecks, type ReportResult } from '../properties/report.js';
import { accelRuns } from './accel-phase.js';
import type { ExecutorName } from './executors.js';

export interface ReportPhase {
  readonly status: 'pass' | 'fail' | 'skipped';
  readonly why?: string;
  readonly result?: ReportResult;
}

export function reportPhase(o: { executor: ExecutorName; seed: number; runs: number; userObjects: boolean; objects?: ReportObjectPaths; log: (s: string) => void }): ReportPhase {
  const skip = (why: string): ReportPhase => {
    o.log(`connection reports (section 7): skipped: ${why}`);
    return { status: 'skipped', why };
  };
  if (o.executor !== 'kernel') return skip('its checks run on real sockets; use --executor kernel (as root) to run them');
  if (!o.objects && o.userObjects) return skip('--objects names other objects and no --report-objects was given');
  const objects = o.objects ?? defaultReportObjects();
  const missing = Object.values(objects).filter((p) => !existsSync(p));
  if (missing.length) return skip(`missing ${missing.join(', ')} (build with npm run build:bpf or give --report-objects)`);
  let result: ReportResult;
  try {
    result = runReportChecks({ seed: o.seed, runs: accelRuns(o.runs), objects });
  } catch (e) {
    if (isKmeshCheckError(e) && (e.code === 'object-content' || e.code === 'load')) return skip(e.message);
    throw e;
  }
  o.log(
    `connection reports (section 7): ${result.runs} cases on the kernel; exercised: ${Object.entries(result.exercised)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')} (report-periodic: hand-written waits in the test suite)`,
  );
  if (result.failure) {
    o.log('');
    o.log(formatReportFailure(result.failure));
    o.log('verdict (reports): FAIL: 1 counterexample');
    return { status: 'fail', result };
  }
  return { status: 'pass', result };
}
