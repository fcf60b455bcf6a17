// The one interface every executor speaks (DESIGN.md): load objects, set a map state, run
// operations, return abstract observations. Executors take whole cases so that a batch crosses a
// process boundary once; map states are applied as diffs against what is loaded.

import type { Case, IpAddr, MapState, Observation } from './domain.js';
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
  /**
   * Cases per run() call that pay for themselves (default: properties/batch.ts DEFAULT_BATCH_SIZE).
   * An executor in another process wants many, one round trip each; one in this process few, as a
   * batch's model side stays alive until the batch is judged, which the garbage collector pays for.
   */
  readonly batchSize?: number;
  /**
   * Set when every run of a case draws the same prandom values (the VM starts each case from its
   * seed): runs of one case are then identical, and a case whose outcome depends on its draws runs
   * once (properties/judge.ts). Absent: the executor draws its own values (the kernel), so repeats
   * of such a case can show outcomes one run does not.
   */
  readonly sameDrawsEachRun?: boolean;
  /** Runs each case on fresh sockets, in order; returns one observation per operation. */
  run(cases: readonly Case[]): Promise<Observation[][]>;
  /** Releases everything: links, cgroups, processes. Safe to call twice. */
  close(): Promise<void>;

  // ---- optional capabilities: present when the executor can offer them -------------------------

  /** Instruction and branch coverage of the programs since the last reset (the VM). */
  coverage?(): CoverageSummary;
  resetCoverage?(): void;

  /**
   * From now on run() and outcomeSets() go to a thread of their own, so that the caller's thread
   * prepares the next batch meanwhile (the VM; the kernel's runs are in its harness process).
   */
  runInThread?(): Promise<void>;
  /** Brings the coverage of the runs made in that thread into coverage(). */
  collectThreadCoverage?(): Promise<void>;

  /**
   * Every outcome of a case over every prandom value of the domain (the VM, which can replay a
   * case under chosen answers to its choice points). The exhaustive phase compares these sets.
   * Throws OutcomeSetLimitError when the case has more than `maxRuns` paths, or when the choice
   * points of a path alone make more than `forecast` combinations.
   */
  outcomeSet?(c: Case, opts: OutcomeSetOptions): readonly ExecutorOutcome[];
  /**
   * outcomeSet of each case (null where that throws OutcomeSetLimitError), for a batch at once: a
   * VM whose runs go to a thread of their own enumerates there, after the runs asked for before.
   */
  outcomeSets?(cases: readonly Case[], opts: OutcomeSetOptions): Promise<Array<readonly ExecutorOutcome[] | null>>;
  /**
   * From now on a program-side miss in a routing map asks `source` instead of missing: the maps
   * start empty, and an entry or field is decided when the program first reads it (the VM).
   * Bounded-exhaustive exploration (properties/explore.ts) drives its enumeration by these reads.
   */
  lazyMaps?(source: () => LazyMapSource): LazyMaps;
}

export interface OutcomeSetOptions {
  readonly prandomDomain?: readonly number[];
  readonly maxRuns?: number;
  readonly prune?: boolean;
  readonly forecast?: number;
}

/** One outcome of an outcome set: what a run observed, and the answers to its choice points that gave it. */
export interface ExecutorOutcome {
  readonly observations: readonly Observation[];
  readonly choices?: readonly { readonly point: string; readonly value: number }[];
  /** The most prandom draws one pass (program entry) of the run made. */
  readonly mostDrawsInAPass?: number;
}

/**
 * What decides lazily read routing-map entries, in domain terms (generators/exhaustive/decisions.ts
 * implements it): null for an absent entry, else its value or field.
 */
export interface LazyMapSource {
  frontend(key: IpAddr): number | null;
  service(id: number): unknown | null;
  serviceField(id: number, name: string): number | string;
  endpoint(serviceId: number, prio: number, index: number): number | null;
  backend(uid: number): unknown | null;
  backendField(uid: number, name: string): number | string;
  /** The entries decided so far, as a map state (the ports it names listen, as in the concrete case). */
  toState(): MapState;
}

/** Lazily decided maps, attached: clear() forgets every decided entry, detach() unhooks and empties them. */
export interface LazyMaps {
  clear(): void;
  detach(): void;
}

// Coverage of the data path's programs, in source terms (BTF line info), for reports.

export interface BranchCoverage {
  readonly pc: number;
  /** Short form of `path` (last two parts) for text reports. */
  readonly file: string;
  /** The source file as BTF line info names it (usually absolute, as the compiler saw it). */
  readonly path: string;
  readonly line: number;
  readonly executed: number;
  readonly taken: number;
  /** executed - taken */
  readonly fallthrough: number;
}

export interface LineCoverage {
  /** Short form of `path` (last two parts) for text reports. */
  readonly file: string;
  /** The source file as BTF line info names it. */
  readonly path: string;
  readonly line: number;
  readonly text: string;
  /** Times the line's most-run instruction ran (0: never reached). */
  readonly hits: number;
}

export interface ProgramCoverage {
  readonly program: string;
  readonly section: string;
  /** Where the program's C function starts (its first instruction's line), when BTF says. */
  readonly entry: { readonly path: string; readonly line: number } | null;
  /** Times the program was entered. */
  readonly runs: number;
  readonly instructions: number;
  readonly executedInstructions: number;
  /** The instructions never run, by index (so that shards' reports merge to the instructions any of them ran). */
  readonly unexecutedPcs?: readonly number[];
  /** Conditional jumps. */
  readonly branches: number;
  /** Conditional jumps seen both taken and not taken. */
  readonly branchesBothWays: number;
  readonly branchDetails: readonly BranchCoverage[];
  readonly lines: readonly LineCoverage[];
  /** Lines with code that never ran, as "file:line". */
  readonly uncoveredLines: readonly string[];
}

export interface CoverageSummary {
  readonly programs: readonly ProgramCoverage[];
  readonly instructions: number;
  readonly executedInstructions: number;
  readonly branches: number;
  readonly branchesBothWays: number;
}

/** An outcome set that would take more than its `maxRuns` runs of the case. */
export class OutcomeSetLimitError extends Error {}
