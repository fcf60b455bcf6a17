// The failure database: every counterexample is saved under .kmesh-check/failures and replayed
// first on the next run, until it passes; then it is removed.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Case } from '../model/domain.js';
import type { Counterexample } from '../properties/run.js';
import { KmeshCheckError } from '../shared/errors.js';

export interface SavedFailure {
  readonly id: string;
  readonly savedAt: string;
  readonly executor: string;
  readonly invariant: string;
  readonly phase: string;
  readonly seed: number;
  readonly path: string;
  readonly case: Case;
  /** Object paths the failure was found on (null: our own objects or the model). */
  readonly objects: Record<string, string> | null;
}

export class FailureDb {
  constructor(readonly dir: string) {}

  static at(root: string): FailureDb {
    return new FailureDb(join(root, '.kmesh-check', 'failures'));
  }

  private file(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** Paths of a saved failure and of its exports (regression test, bpftool batch file). */
  files(id: string): { json: string; test: string; bpftool: string } {
    return { json: this.file(id), test: join(this.dir, `${id}.test.ts`), bpftool: join(this.dir, `${id}.bpftool`) };
  }

  save(cx: Counterexample, executor: string, objects: Record<string, string> | null = null): SavedFailure {
    const id = createHash('sha256').update(JSON.stringify(cx.case)).digest('hex').slice(0, 12);
    const entry: SavedFailure = {
      id,
      savedAt: new Date().toISOString(),
      executor,
      invariant: cx.failure.invariant,
      phase: cx.phase,
      seed: cx.seed,
      path: cx.path,
      case: cx.case,
      objects,
    };
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.file(id), JSON.stringify(entry, null, 2) + '\n');
    return entry;
  }

  list(): SavedFailure[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((n) => n.endsWith('.json'))
      .sort()
      .map((n) => readSavedFailure(join(this.dir, n)));
  }

  remove(id: string): void {
    for (const f of Object.values(this.files(id))) rmSync(f, { force: true });
  }
}

/** Reads one saved failure, with a one-line error for a corrupt file. */
export function readSavedFailure(path: string): SavedFailure {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KmeshCheckError('codec', `${path} is not a readable saved failure (${(e as Error).message}): delete it or restore it from version control`);
  }
  const d = data as Partial<SavedFailure>;
  const c = d.case as Partial<Case> | undefined;
  if (!c || !c.state || !Array.isArray(c.ops) || typeof c.enrolled !== 'boolean' || (c.kind !== 'consistent' && c.kind !== 'raw')) {
    throw new KmeshCheckError('codec', `${path} is not a saved kmesh-check failure (no valid "case"): delete it or restore it from version control`);
  }
  return d as SavedFailure;
}
