// The worker's side of a batch: the case runner over real sockets (sockets.ts), with runs of
// simple cases handed to the shim whole (whole-cases.ts). Observations leave as the bytes of
// bpf/runner/observations.ts, which the parent decodes.

import type { Case, StartEnrolment, StreamView } from '../../model/domain.js';
import { monitoringOf, startEnrolment } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { CaseRunner } from '../runner/case-runner.js';
import { ObsWriter } from '../runner/observations.js';
import type { FastPath } from './fastpath.js';
import type { LoadedDataPath } from './loader.js';
import { KernelSockets, type KernelSock } from './sockets.js';
import { WholeCases } from './whole-cases.js';

export interface KernelCasesOptions {
  /** Run simple cases whole inside the shim (default); off, every case goes operation by operation. */
  readonly wholeCases?: boolean;
}

/**
 * What a case asks of the namespace and the objects before its first operation, as one key: its
 * start enrolment and its enable_monitoring.
 */
export function startKey(c: Case): string {
  return startKeyOf(startEnrolment(c), monitoringOf(c));
}

/** The start key of an enrolment and enable_monitoring ('unknown' when either is). */
export function startKeyOf(enrolment: StartEnrolment | 'unknown', monitoring: boolean | 'unknown'): string {
  return enrolment === 'unknown' || monitoring === 'unknown' ? 'unknown' : `${String(enrolment)}/${monitoring ? 1 : 0}`;
}

/**
 * The order to run a batch's cases in: those asking for the start the namespace has (`current`,
 * a start key; or, when it is unknown, the first case's) first, then the others, each group in
 * batch order, those with the current enable_monitoring before the rest. Enrolment then changes
 * at most once per other start a batch holds, and enable_monitoring at most once, instead of at
 * up to every case: each enrolment change costs a refused control connect per enrolled local,
 * each monitoring change a flush of the whole cases and the global data taken again. A case's
 * observations do not depend on the cases run before it (each starts from the maps, enrolment
 * and globals it asks for), so only the parent's putting them back in batch order (inBatchOrder,
 * executor.ts) is needed.
 */
export function startOrder(cases: readonly Case[], current: string): number[] {
  // Groups by start key, the current one first, then each other in order of first appearance.
  const groups = new Map<string, number[]>([[current, []]]);
  for (let i = 0; i < cases.length; i++) {
    const e = startKey(cases[i]!);
    const g = groups.get(e);
    if (g) g.push(i);
    else groups.set(e, [i]);
  }
  const keys = [...groups.keys()].filter((k) => groups.get(k)!.length > 0);
  // The groups with the current monitoring (a key's last digit; when unknown, the first group's) before the others; the sort is stable.
  const lead = (current !== 'unknown' ? current : (keys[0] ?? '')).slice(-1);
  keys.sort((a, b) => Number(b.endsWith(lead)) - Number(a.endsWith(lead)));
  return keys.flatMap((k) => groups.get(k)!);
}

export class KernelCases {
  readonly sockets: KernelSockets;
  readonly runner: CaseRunner<KernelSock>;
  private readonly whole: WholeCases | null;

  constructor(dp: LoadedDataPath, env: Environment, fast: FastPath, opts: KernelCasesOptions = {}) {
    this.sockets = new KernelSockets(dp.maps, env, fast, dp.resettable, dp.setGlobal);
    this.runner = new CaseRunner(this.sockets, env, new ObsWriter());
    this.whole = opts.wholeCases === false ? null : new WholeCases(this.runner, this.sockets, fast, () => this.runner.sink, env);
  }

  /** Whether simple cases run whole inside the shim. */
  get wholeCasesOn(): boolean {
    return this.whole !== null;
  }

  /** Cases the shim ran whole (kf_run), for tests and diagnosis. */
  get casesRunWhole(): number {
    return this.whole?.casesRun ?? 0;
  }

  /** Milliseconds the shim spent running whole cases (kf_run). */
  get shimMs(): number {
    return this.whole?.shimMs ?? 0;
  }

  /**
   * Runs cases in the order startOrder gives; `offset` numbers them in error messages (their
   * index in the whole run). Returns their observations encoded (decodeObservations gives them
   * back), in the order they ran, and that order.
   */
  runCases(cases: readonly Case[], offset = 0): { bytes: Uint8Array; streams: StreamView[]; order: number[] } {
    const whole = this.whole;
    const order = startOrder(cases, startKeyOf(this.runner.enrolment, this.runner.monitoring));
    let i = 0;
    try {
      for (let k = 0; k < order.length; k++) {
        i = order[k]!;
        if (whole?.add(cases[i]!, i)) {
          if (whole.full) whole.run();
          continue;
        }
        whole?.run();
        this.runner.runCase(cases[i]!);
      }
      whole?.run();
    } catch (e) {
      // A failure inside kf_run belongs to the case it happened in, an earlier one.
      const at = whole && whole.failedCase >= 0 ? whole.failedCase : i;
      if (whole) {
        whole.failedCase = -1;
        whole.drop();
      }
      this.runner.sink.take();
      this.runner.recover();
      // Whichever path failed, km_manage may hold what the harness wrote (emptied before control connects again).
      this.sockets.manageUnknown();
      if (e instanceof KmeshCheckError) throw new KmeshCheckError(e.code, `case ${offset + at}: ${e.message}`);
      throw e;
    }
    return { ...this.runner.sink.take(), order };
  }

  /** Enrols or withdraws unless the namespace already is as asked. */
  ensureEnrolment(want: StartEnrolment): void {
    if (this.runner.enrolment !== want) this.runner.setEnrolment(want);
  }

  /** Empties the routing maps (someone else wrote them). */
  resetMaps(): void {
    this.sockets.resetMaps();
    this.runner.tracker.reset();
  }

  close(): void {
    this.sockets.closeAll();
  }
}
