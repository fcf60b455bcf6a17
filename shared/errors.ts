// The one error type the bpf/ layer throws: a one-line message that says what is wrong and what to
// do, and a stable `code` that callers (CLI, tests) can branch on without parsing text.

export type KmeshCheckErrorCode =
  /** Not enough privileges for bpf(), cgroups or network namespaces. */
  | 'privileges'
  /** A file that should be a BPF ELF object is missing or not ELF. */
  | 'object-file'
  /** An object lacks a program or map that the ABI requires. */
  | 'object-content'
  /** A map's type, key size or value size differs from the ABI table. */
  | 'abi-mismatch'
  /** The verifier rejected a program. */
  | 'verifier'
  /** libbpf could not open or load an object for another reason. */
  | 'load'
  /** Attaching a program (cgroup, sockhash, prog array) failed. */
  | 'attach'
  /** The harness could not build its namespace, routes or cgroup. */
  | 'environment'
  /** Bad input to a codec (wrong lengths, out-of-range values). */
  | 'codec'
  /** The compiled worker is missing or older than its sources. */
  | 'build'
  /** The worker process died or broke the protocol. */
  | 'worker'
  /** A request the executor cannot carry out (e.g. test-run of a program with no fallback). */
  | 'unsupported'
  /** A command-line value that names nothing (a replay path of no case). */
  | 'usage';

export class KmeshCheckError extends Error {
  constructor(
    readonly code: KmeshCheckErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KmeshCheckError';
  }

  toJSON(): { code: KmeshCheckErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isKmeshCheckError(e: unknown): e is KmeshCheckError {
  return e instanceof KmeshCheckError;
}

/** The privilege message, the same wherever the lack is detected. */
export const NEEDS_ROOT = 'needs root (CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN): run as root or with sudo';
