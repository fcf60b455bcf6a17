// `kmesh-check replay`: one case, from a saved failure or from the phase, seed and path that a
// counterexample prints. Exit 1 when it still fails, 0 when it passes.

import type { ObjectPaths } from '../../model/executor.js';
import { judge } from '../../properties/judge.js';
import { caseSize } from '../../properties/minimize.js';
import { replayCounterexample, type Shape } from '../../properties/run.js';
import type { StateKind } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { readSavedFailure } from '../failure-db.js';
import { openExecutor, type ExecutorName } from '../executors.js';
import { formatCounterexample } from '../report.js';
import { formatCase } from '../../properties/format.js';
import { exhaustiveSetup, replayExhaustive } from '../exhaustive.js';

export interface ReplayOptions {
  readonly case?: string;
  readonly phase?: string;
  readonly seed?: number;
  readonly path?: string;
  readonly executor: ExecutorName;
  readonly why: string;
  readonly objects: Partial<ObjectPaths>;
}

function parsePhase(p: string): { kind: StateKind; shape: Shape } {
  const m = /^(consistent|raw)\/(single|sequence)$/.exec(p);
  if (!m) throw new KmeshCheckError('unsupported', `--phase must be consistent|raw / single|sequence, e.g. consistent/single (got ${p})`);
  return { kind: m[1] as StateKind, shape: m[2] as Shape };
}

export async function replayCommand(o: ReplayOptions): Promise<number> {
  if (!o.case && (o.phase === undefined || o.seed === undefined || o.path === undefined)) {
    throw new KmeshCheckError('unsupported', 'replay needs --case FILE, or --phase, --seed and --path from a counterexample');
  }
  const saved = o.case ? readSavedFailure(o.case) : null;
  const opened = await openExecutor(o.executor, o.objects, o.why);
  const log = (s: string) => process.stdout.write(s + '\n');
  log(`kmesh-check replay: executor ${opened.name} (${opened.why})`);
  try {
    const opts = { env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) };
    if (saved) {
      const j = await judge(saved.case, opts);
      if (!j.failure) {
        log(`saved failure ${saved.id} passes now`);
        log(formatCase(saved.case).join('\n'));
        return 0;
      }
      const size = caseSize(saved.case);
      log(formatCounterexample({ phase: saved.phase, seed: saved.seed, path: saved.path, case: saved.case, shrunkFrom: size, size, failure: j.failure, minimizeTries: 0 }, opened.name));
      return 1;
    }
    if (o.phase!.startsWith('exhaustive/')) {
      // An exhaustive finding replays from its choice sequence (the path); the seed is unused.
      const setup = await exhaustiveSetup(opened.name, opened.executor, o.objects);
      try {
        const r = await replayExhaustive(setup, o.phase!, o.path!, opened.env);
        if (!r.failure) {
          log(`the case at ${o.phase} path ${o.path} passes`);
          log(formatCase(r.case).join('\n'));
          return 0;
        }
        const size = caseSize(r.case);
        log(formatCounterexample({ phase: o.phase!, seed: o.seed!, path: o.path!, case: r.case, shrunkFrom: size, size, failure: r.failure, minimizeTries: 0 }, opened.name));
        return 1;
      } finally {
        await setup.close();
      }
    }
    const cx = await replayCounterexample(parsePhase(o.phase!), o.seed!, o.path!, { seed: o.seed!, runs: 1, states: 'both', ...opts });
    if (!cx) {
      log(`the case at seed ${o.seed} path ${o.path} passes`);
      return 0;
    }
    log(formatCounterexample(cx, opened.name));
    return 1;
  } finally {
    await opened.executor?.close();
  }
}
