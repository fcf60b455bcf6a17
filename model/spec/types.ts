// The shape of the normative semantics: named invariants over a case, its environment and the
// observations of one run (plus the model's pass records when the run comes from the model).

import type { Case, Observation, Operation } from '../domain.js';
import type { Environment } from '../environment.js';
import type { PassRecord } from './passes.js';

export interface SpecStep {
  readonly op: Operation;
  readonly observation: Observation;
  /** The connect program's passes for this operation; absent for executor runs. */
  readonly passes?: readonly PassRecord[];
}

export interface SpecContext {
  readonly case: Case;
  readonly env: Environment;
  readonly steps: readonly SpecStep[];
}

/**
 * A context that carries the views derived from it (spec/facts.ts) in the object itself: judging
 * builds one per run, and a side-table (WeakMap) entry per run costs more, with its collection,
 * than every lookup of the views together. Any other SpecContext, a plain object or a spread copy
 * of this one (private fields are not copied), gets a side-table entry instead.
 */
export class SpecRun implements SpecContext {
  readonly case: Case;
  readonly env: Environment;
  readonly steps: readonly SpecStep[];
  readonly #derived: object = {};

  constructor(c: Case, env: Environment, steps: readonly SpecStep[]) {
    this.case = c;
    this.env = env;
    this.steps = steps;
  }

  /** The derived-views slot of a SpecRun; undefined for any other context. */
  static derivedOf(ctx: SpecContext): object | undefined {
    return #derived in ctx ? ctx.#derived : undefined;
  }
}

/**
 * A violation's `shape` (the section phases' invariants give one): what kind of element broke
 * which rule, in words that do not depend on the case's numbers ("IPv4 pair (return-port):
 * redirected"). Two bugs that break one invariant differ in it where they differ in kind; a
 * baseline accepts a finding on the shapes it was hit on, as it accepts a routing one on its model
 * paths.
 */
export type Verdict = { readonly status: 'holds' } | { readonly status: 'vacuous' } | { readonly status: 'violated'; readonly detail: string; readonly shape?: string };

export interface Invariant {
  readonly name: string;
  /** One sentence: what must hold (the generated docs print it). */
  readonly statement: string;
  /**
   * 'passes': only meaningful with the model's pass records; skipped on executor runs. An invariant
   * without it may still read the pass records when a trace has them, but only to check more: on the
   * same observations without them it never fails where it held, nor is exercised where it was vacuous
   * (the judge relies on it to pass an executor run identical to a model trace unchecked).
   */
  readonly needs?: 'passes';
  check(ctx: SpecContext): Verdict;
}

export const HOLDS: Verdict = { status: 'holds' };
export const VACUOUS: Verdict = { status: 'vacuous' };

export function violated(detail: string, shape?: string): Verdict {
  return shape === undefined ? { status: 'violated', detail } : { status: 'violated', detail, shape };
}

/** Collects the first violation while checking; `exercise()` decides holds vs vacuous. */
export class Checker {
  private detail: string | null = null;
  private shape: string | undefined;
  private used = false;

  /** Marks that the case exercised the invariant. */
  exercise(): void {
    this.used = true;
  }

  /** Records a violation (the first one wins) and its shape; returns whether `ok` held. Does not mark exercised. */
  expect(ok: boolean, detail: () => string, shape?: () => string): boolean {
    if (!ok && this.detail === null) {
      this.detail = detail();
      this.shape = shape?.();
    }
    return ok;
  }

  get failed(): boolean {
    return this.detail !== null;
  }

  verdict(): Verdict {
    if (this.detail !== null) return violated(this.detail, this.shape);
    return this.used ? HOLDS : VACUOUS;
  }
}
