// Requests and replies between the acceleration executor and its worker (length-prefixed JSON
// frames of ../protocol.ts).

import type { AccelCase, AccelObservation } from '../../../model/accel/domain.js';
import type { KmeshCheckErrorCode } from '../../../shared/errors.js';
import type { AccelObjectPaths } from './loader.js';

export type AccelRequest = { readonly type: 'init'; readonly objects: AccelObjectPaths } | { readonly type: 'run'; readonly cases: readonly AccelCase[] } | { readonly type: 'close' };

export type AccelResponse = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: { readonly code: KmeshCheckErrorCode; readonly message: string } };

export interface AccelWorkerInfo {
  readonly pid: number;
  readonly cgroup: string;
}

export type AccelRunResult = AccelObservation[];
