// `kmesh-check replay` for the report and acceleration phases: a saved failure of theirs (on its
// own objects and executor unless told otherwise), or --phase report|accel with the seed and path
// a finding printed (shrunk again from there, as check did). Exit 1 when it still fails.

import { AccelKernelExecutor, defaultAccelObjects } from '../bpf/kernel/accel/executor.js';
import type { AccelObjectPaths } from '../bpf/kernel/accel/loader.js';
import { AccelVmExecutor } from '../bpf/vm/accel-executor.js';
import type { AccelExecutor } from '../model/accel/executor.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { defaultReportObjects } from '../bpf/kernel/report/run.js';
import { accelSpec } from '../properties/accel.js';
import { reportSpec, timedReportRunner } from '../properties/report.js';
import { judgeSectionCase, shrinkSection, type SectionPhase, type SectionSpec } from '../properties/section-check.js';
import { KmeshCheckError } from '../shared/errors.js';
import type { ExecutorName } from './executors.js';
import type { SavedSectionFailure } from './failure-db.js';
import { formatSectionFinding, type SectionRunContext } from './section-findings.js';

export interface SectionReplayOptions {
  readonly phase: SectionPhase;
  readonly executor: ExecutorName;
  readonly saved?: SavedSectionFailure;
  /** The file `saved` was read from (its replay line names it). */
  readonly savedFile?: string;
  readonly seed?: number;
  readonly path?: string;
  readonly reportObjects?: ReportObjectPaths;
  readonly accelObjects?: AccelObjectPaths;
  readonly log: (s: string) => void;
}

/** The phase's spec on an executor, and how to release it. */
async function openSpec(o: SectionReplayOptions): Promise<{ spec: SectionSpec<unknown, unknown>; run: SectionRunContext; close: () => Promise<void> }> {
  if (o.executor !== 'kernel' && o.executor !== 'vm') throw new KmeshCheckError('unsupported', `the ${o.phase} phase runs compiled programs: replay it with --executor vm or --executor kernel`);
  const savedObjects = (o.saved?.objects ?? null) as Record<string, string> | null;
  if (o.phase === 'report') {
    const objects = o.reportObjects ?? (savedObjects as ReportObjectPaths | null) ?? defaultReportObjects();
    const flag = o.reportObjects || savedObjects ? `--report-objects ${objects.connect},${objects.sockops},${objects.sendmsg},${objects.skb}` : null;
    // As check built it: on the kernel, the VM takes the cases that let time pass when it can.
    const timed = o.executor === 'kernel' ? timedReportRunner(objects) : null;
    const spec = reportSpec({ executor: o.executor, objects, ...(timed ? { timed } : {}) });
    return { spec: spec as SectionSpec<unknown, unknown>, run: { executor: o.executor, objectsFlag: flag }, close: () => Promise.resolve() };
  }
  const objects = o.accelObjects ?? (savedObjects as AccelObjectPaths | null) ?? defaultAccelObjects();
  const ex: AccelExecutor = o.executor === 'kernel' ? await AccelKernelExecutor.start(objects) : await AccelVmExecutor.start(objects);
  const flag = o.accelObjects || savedObjects ? `--accel-objects ${objects.ops},${objects.redirect}` : null;
  return { spec: accelSpec(ex) as SectionSpec<unknown, unknown>, run: { executor: o.executor, objectsFlag: flag }, close: () => ex.close() };
}

export async function replaySection(o: SectionReplayOptions): Promise<number> {
  const { spec, run, close } = await openSpec(o);
  try {
    const f = o.saved ? await judgeSectionCase(spec, o.saved.case, { seed: o.saved.seed, path: o.saved.path }) : await shrinkSection(spec, o.seed!, o.path!);
    if (!f) {
      o.log(o.saved ? `saved failure ${o.saved.id} passes now` : `the case at ${o.phase} seed ${o.seed} path ${o.path} passes`);
      if (o.saved) o.log(spec.formatCase(o.saved.case).join('\n'));
      return 0;
    }
    o.log(formatSectionFinding(spec, f, o.savedFile !== undefined ? { ...run, caseFile: o.savedFile } : run, o.saved ? 'SAVED FAILURE' : 'FINDING'));
    return 1;
  } finally {
    await close();
  }
}
