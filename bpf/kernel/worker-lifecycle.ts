// The worker side of a harness worker (worker-process.ts is the parent side): how a request's
// error is answered, and how the worker releases what it holds (links, cgroup, namespace fds) when
// its parent closes stdin, on a terminating signal, and on exit.

import { isKmeshCheckError, KmeshCheckError, type KmeshCheckErrorCode } from '../../shared/errors.js';

/** The error half of a response: ours as they are, anything else as an internal error with its stack. */
export function errorReply(e: unknown): { readonly ok: false; readonly error: { readonly code: KmeshCheckErrorCode; readonly message: string } } {
  const err = isKmeshCheckError(e) ? e : new KmeshCheckError('worker', `internal error: ${(e as Error).stack ?? String(e)}`);
  return { ok: false, error: { code: err.code, message: err.message } };
}

/** Runs `cleanup` (idempotent) before the worker ends, however it ends. */
export function cleanUpOnExit(cleanup: () => void): void {
  process.stdin.on('end', () => {
    cleanup();
    process.exit(0);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      cleanup();
      process.exit(0);
    });
  }
  process.on('exit', cleanup);
}
