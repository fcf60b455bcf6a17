// The connection-report phase of `kmesh-check check` (section 7): runs after the routing checks on
// the kernel executor (real sockets; the cases that let time pass on the VM with the same objects)
// or on the VM (its clock an input: generated waits, periodic reports included), with
// our objects or --report-objects; says plainly when and why it skips. Its findings are printed
// and saved by check (cli/section-findings.ts), like every other finding.

import { existsSync } from 'node:fs';
import { isKmeshCheckError } from '../shared/errors.js';
import { defaultReportObjects } from '../bpf/kernel/report/run.js';
import type { ReportObjectPaths } from '../bpf/kernel/report/loader.js';
import { runReportChecks, timedReportRunner, type ReportResult } from '../properties/report.js';
import { accelRuns } from './accel-phase.js';
import { formatCoverage } from '../bpf/vm/coverage.js';
import { refusedObjects, stoppedPhase } from './phase-stopped.js';
import type { ExecutorName } from './executors.js';
import { partText, type Shard } from '../generators/shard.js';
import type { SectionRunOptions } from '../properties/section-check.js';

export interface ReportPhase {
  readonly status: 'pass' | 'fail' | 'skipped' | 'stopped';
  readonly why?: string;
  readonly result?: ReportResult;
}

export interface ReportPhaseOptions {
  readonly executor: ExecutorName;
  readonly seed: number;
  readonly runs: number;
  readonly userObjects: boolean;
  readonly objects?: ReportObjectPaths;
  readonly maxFindings?: number;
  /** Saved cases of this phase to judge first. */
  readonly saved?: SectionRunOptions['saved'];
  /** check --exhaustive: every case of the report domain at this scope (on the VM; sampled on the kernel). */
  readonly exhaustiveScope?: number;
  /** --shard: enumerate only this shard's part of the domain. */
  readonly shard?: Shard;
  /** --stop-at-first: sampling ends at the first failing case. */
  readonly stopAtFirst?: boolean;
  readonly log: (s: string) => void;
}

/** The objects the phase runs: --report-objects, else ours (none when --objects points elsewhere). */
export function reportPhaseObjects(o: Pick<ReportPhaseOptions, 'objects' | 'userObjects'>): ReportObjectPaths | null {
  if (!o.objects && o.userObjects) return null;
  return o.objects ?? defaultReportObjects();
}

export async function reportPhase(o: ReportPhaseOptions): Promise<ReportPhase> {
  const skip = (why: string): ReportPhase => {
    o.log(`connection reports (section 7): skipped: ${why}`);
    return { status: 'skipped', why };
  };
  if (o.executor !== 'kernel' && o.executor !== 'vm') return skip('its checks run compiled programs; use --executor vm or --executor kernel');
  const objects = reportPhaseObjects(o);
  if (!objects) return skip('--objects names other objects and no --report-objects was given');
  const missing = Object.values(objects).filter((p) => !existsSync(p));
  if (missing.length) return skip(`missing ${missing.join(', ')} (build with npm run build:bpf or give --report-objects)`);
  // On the kernel the cases that let time pass run on the VM, when it can load the objects.
  const timed = o.executor === 'kernel' ? timedReportRunner(objects) : null;
  let result: ReportResult;
  try {
    result = await runReportChecks({
      ...(timed ? { timed } : {}),
      seed: o.seed,
      // On the kernel with the VM for the timed cases, half of them are timed (reportSpec) and the
      // budget grows by half: as many real-socket cases as before and twice the timed ones, the only
      // ones that check periodic reports there.
      runs: timed && 'runner' in timed ? Math.round(accelRuns(o.runs) * 1.5) : accelRuns(o.runs),
      executor: o.executor,
      objects,
      ...(o.maxFindings !== undefined ? { maxFindings: o.maxFindings } : {}),
      ...(o.saved ? { saved: o.saved } : {}),
      ...(o.exhaustiveScope !== undefined && o.executor === 'vm' ? { exhaustiveScope: o.exhaustiveScope } : {}),
      ...(o.shard ? { shard: o.shard } : {}),
      ...(o.stopAtFirst ? { stopAtFirst: true } : {}),
    });
  } catch (e) {
    // Objects the user named that cannot serve fail the run (check's preflight catches most of them first); ours are skipped.
    if (isKmeshCheckError(e) && (e.code === 'object-content' || e.code === 'load') && !o.objects) return skip(e.message);
    const refused = o.objects ? refusedObjects('connection reports (section 7)', '--report-objects', e, o.log) : null;
    if (refused) return refused;
    const stopped = stoppedPhase('connection reports (section 7)', e, o.log);
    if (stopped) return stopped;
    throw e;
  }
  const seen = Object.entries(result.exercised)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const periodic =
    o.executor === 'vm'
      ? ' (generated waits: the VM clock is an input)'
      : timed && 'runner' in timed
        ? "; the cases that let time pass ran on the VM, whose clock is an input (the kernel's cannot be moved)"
        : `; no case lets time pass, since the VM cannot run these objects (${timed && 'why' in timed ? timed.why : ''})`;
  const how = result.enumeration ? `every case of scope ${result.enumeration.scope} (${partText(result.enumeration)})` : `${result.runs} cases`;
  o.log(`connection reports (section 7): ${how} on the ${o.executor}; exercised: ${seen}${periodic}`);
  if (result.coverage) o.log(`program coverage (vm, connection reports)\n${formatCoverage(result.coverage)}`);
  const broken = result.findings.length + result.replayed.filter((r) => r !== null).length;
  if (broken) o.log(`connection reports (section 7): ${broken} finding${broken === 1 ? '' : 's'} (printed below)`);
  return { status: broken ? 'fail' : 'pass', result };
}
