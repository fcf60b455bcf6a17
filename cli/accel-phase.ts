// The acceleration phase of `kmesh-check check`: runs section 8's checks after the routing checks
// when the acceleration objects are there, and says plainly when and why it skips them (objects
// that lack these programs are checked for routing alone, never refused for it).

import { existsSync } from 'node:fs';
import { AccelKernelExecutor, defaultAccelObjects } from '../bpf/kernel/accel/executor.js';
import type { AccelObjectPaths } from '../bpf/kernel/accel/loader.js';
import { AccelVmExecutor } from '../bpf/vm/accel-executor.js';
import { formatCoverage, type CoverageSummary } from '../bpf/vm/coverage.js';
import type { AccelExecutor } from '../model/accel/executor.js';
import { isKmeshCheckError } from '../shared/errors.js';
import { runAccelChecks, type AccelResult, type AccelRunOptions } from '../properties/accel.js';
import { runAccelExhaustive } from '../properties/accel-exhaustive.js';
import { partText } from '../generators/shard.js';
import type { ExecutorName } from './executors.js';
import type { Shard } from '../generators/shard.js';
import { refusedObjects, stoppedPhase } from './phase-stopped.js';

export interface AccelPhaseOptions {
  readonly executor: ExecutorName;
  readonly seed: number;
  /** The routing run's budget; the acceleration phase takes accelRuns of it. */
  readonly runs: number;
  /** --accel-objects; when absent, ours, unless --objects pointed elsewhere. */
  readonly objects?: AccelObjectPaths;
  readonly userObjects: boolean;
  readonly log: (s: string) => void;
  /** Findings shrunk at most, and saved cases to judge first (printed and saved by check: cli/section-findings.ts). */
  readonly maxFindings?: AccelRunOptions['maxFindings'];
  readonly saved?: AccelRunOptions['saved'];
  /** check --exhaustive: enumerate the acceleration domain at this scope instead of sampling it. */
  readonly exhaustiveScope?: number;
  /** --shard: enumerate only this shard's part of the domain. */
  readonly shard?: Shard;
  /** --stop-at-first: sampling ends at the first failing case. */
  readonly stopAtFirst?: boolean;
}

export interface AccelPhase {
  readonly status: 'pass' | 'fail' | 'skipped' | 'stopped';
  readonly why?: string;
  readonly result?: AccelResult;
  /** On the VM: the acceleration programs' coverage over the phase's cases. */
  readonly coverage?: CoverageSummary;
}

/**
 * Cases of the acceleration phase (and, half as many again with a clock, the report phase) for a
 * routing budget of `runs`: a tenth of it, 20 to 300, up to the default budget (20,000), then in
 * proportion (--runs 100000: 1,500), so that a larger budget searches these phases deeper too.
 */
export function accelRuns(runs: number): number {
  return Math.max(20, Math.min(300, Math.round(runs / 10)), Math.round((300 * runs) / 20_000));
}

export async function accelPhase(o: AccelPhaseOptions): Promise<AccelPhase> {
  const skip = (why: string): AccelPhase => {
    o.log(`acceleration (section 8): skipped: ${why}`);
    return { status: 'skipped', why };
  };
  if (o.executor === 'model') return skip('--executor model runs no compiled objects; use --executor vm or kernel');
  if (!o.objects && o.userObjects) return skip('--objects names other objects and no --accel-objects was given');
  const objects = o.objects ?? defaultAccelObjects();
  const missing = [objects.ops, objects.redirect].filter((p) => !existsSync(p));
  if (missing.length) return skip(`no acceleration objects at ${missing.join(', ')} (build them with npm run build:bpf or give --accel-objects)`);
  let ex: AccelExecutor;
  try {
    ex = o.executor === 'kernel' ? await AccelKernelExecutor.start(objects) : await AccelVmExecutor.start(objects);
  } catch (e) {
    // Ours that cannot serve are skipped with the reason; objects the user named stop the phase and fail the run.
    if (isKmeshCheckError(e) && e.code === 'object-content' && !o.objects) return skip(e.message);
    const refused = o.objects ? refusedObjects('acceleration (section 8)', '--accel-objects', e, o.log) : null;
    if (refused) return refused;
    throw e;
  }
  try {
    const sampled = {
      seed: o.seed,
      runs: accelRuns(o.runs),
      executor: ex,
      ...(o.maxFindings !== undefined ? { maxFindings: o.maxFindings } : {}),
      ...(o.saved ? { saved: o.saved } : {}),
      ...(o.stopAtFirst ? { stopAtFirst: true } : {}),
    };
    const enumerated =
      o.exhaustiveScope !== undefined
        ? await runAccelExhaustive({
            scope: o.exhaustiveScope,
            executor: ex,
            ...(o.saved ? { saved: o.saved } : {}),
            ...(o.shard ? { shard: o.shard } : {}),
            ...(o.stopAtFirst ? { stopAtFirst: true } : {}),
          })
        : null;
    const result = enumerated ?? (await runAccelChecks(sampled));
    const seen = Object.entries(result.exercised)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    const how = enumerated ? `exhaustive scope ${enumerated.scope} (${partText(enumerated.enumeration)}), ${enumerated.complete ? 'complete' : 'incomplete'}: ` : '';
    o.log(`acceleration (section 8): ${how}${result.runs} cases on the ${ex.name === 'vm' ? 'VM' : 'kernel'}; exercised: ${seen}`);
    const coverage = ex instanceof AccelVmExecutor ? ex.coverage() : undefined;
    if (coverage) o.log(`program coverage (vm, acceleration)\n${formatCoverage(coverage)}`);
    // check prints and saves each finding (cli/section-findings.ts); the phase counts them.
    const broken = result.findings.length + result.replayed.filter((r) => r !== null).length;
    if (broken) o.log(`acceleration (section 8): ${broken} finding${broken === 1 ? '' : 's'} (printed below)`);
    return { status: broken ? 'fail' : 'pass', result, ...(coverage ? { coverage } : {}) };
  } catch (e) {
    const stopped = stoppedPhase('acceleration (section 8)', e, o.log);
    if (stopped) return stopped;
    throw e;
  } finally {
    await ex.close();
  }
}
