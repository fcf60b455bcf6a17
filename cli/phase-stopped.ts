// A section phase (acceleration, connection reports) that stops half-way: its error is the
// phase's outcome, not the run's, so that the findings of the other phases are still printed,
// saved and counted. The run's verdict fails (check adds the stopped phases to it).

import { isKmeshCheckError } from '../shared/errors.js';

export interface StoppedPhase {
  readonly status: 'stopped';
  readonly why: string;
}

/**
 * The phase's outcome for an error raised while it ran its cases, or null when the error is not
 * one to contain (a bug of ours, a signal): the harness could not carry a case out (a connect
 * that did not reach the case's server, a socket call that failed) or its worker died. A data
 * path under test that routes the phase's own connects elsewhere stops it this way.
 */
/** The errors of objects that cannot serve a phase: missing or no ELF, without a program or map, refused by the ABI, the verifier or libbpf. */
const OBJECT_ERRORS: ReadonlySet<string> = new Set(['object-file', 'object-content', 'abi-mismatch', 'verifier', 'load']);

/**
 * The phase's outcome when objects the user named for it cannot serve (check's preflight catches
 * most of them before any work): the phase stops and the run fails, the other phases' findings
 * printed as they are; null for any other error.
 */
export function refusedObjects(label: string, option: string, e: unknown, log: (s: string) => void): StoppedPhase | null {
  if (!isKmeshCheckError(e) || !OBJECT_ERRORS.has(e.code)) return null;
  log(`${label}: STOPPED: the objects given to ${option} cannot serve: ${e.message}. The other phases' findings stand; the run fails.`);
  return { status: 'stopped', why: e.message };
}

export function stoppedPhase(label: string, e: unknown, log: (s: string) => void): StoppedPhase | null {
  if (!isKmeshCheckError(e) || (e.code !== 'environment' && e.code !== 'worker')) return null;
  log(`${label}: STOPPED: ${e.message}. The other phases' findings stand; the run fails. If the objects under test route this phase's connects elsewhere, their routing findings above say how.`);
  return { status: 'stopped', why: e.message };
}
