// The one interface every executor speaks (DESIGN.md): load objects, set a map state, run
// operations, return abstract observations. Executors take whole cases so that a batch crosses a
// process boundary once; map states are applied as diffs against what is loaded.

import type { Case, Observation } from './domain.js';
import type { Environment } from './environment.js';

/** Paths of the three compiled objects: the connect object (connect4 + connect6), sockops, sk_msg. */
export interface ObjectPaths {
  readonly connect: string;
  readonly sockops: string;
  readonly sendmsg: string;
}

export interface Executor {
  readonly name: string;
  /** The environment the executor built (addresses, routes, listeners). */
  readonly environment: Environment;
  /**
   * The section 6 hooks the objects have and the executor runs ('sendmsg4', 'recvmsg4',
   * 'recvmsg6'); absent for an executor that runs none (the model).
   */
  readonly dnsHooks?: readonly string[];
  /** Runs each case on fresh sockets, in order; returns one observation per operation. */
  run(cases: readonly Case[]): Promise<Observation[][]>;
  /** Releases everything: links, cgroups, processes. Safe to call twice. */
  close(): Promise<void>;
}
