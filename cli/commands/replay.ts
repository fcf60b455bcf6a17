// `kmesh-check replay`: one case, from a saved failure (on the objects and executor it was saved
// with, unless told otherwise) or from the phase, seed and path a finding prints (its replay line
// names the objects and executor too, so it reproduces the finding verbatim). The finding is
// explained on the VM. Exit 1 when it still fails, 0 when it passes.

import { preflightSectionObjects } from '../object-preflight.js';
import { resolve } from 'node:path';
import type { ObjectPaths } from '../../model/executor.js';
import { caseSize } from '../../properties/minimize.js';
import { replayCounterexample } from '../../properties/run.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { ModelInputError, OutcomeLimitError } from '../../model/impl/index.js';
import { isSectionFailure, objectsArgument, readSavedFailure } from '../failure-db.js';
import { replaySection } from '../section-replay.js';
import type { ReportObjectPaths } from '../../bpf/kernel/report/loader.js';
import type { AccelObjectPaths } from '../../bpf/kernel/accel/loader.js';
import { openExecutor, type ExecutorName } from '../executors.js';
import { formatCounterexample, type RunContext } from '../report.js';
import { formatCase } from '../../properties/format.js';
import { explainFinding, formatExplanation } from '../explain.js';
import { runIdentity } from './check.js';
import { exhaustiveSetup, judgeSaved, replayExhaustive, savedCounterexample, withExactVm } from '../exhaustive.js';
import { signatureOf } from '../../properties/signature.js';

export interface ReplayOptions {
  readonly case?: string;
  readonly phase?: string;
  readonly seed?: number;
  readonly path?: string;
  /** Undefined: the saved failure's executor (or the default). */
  readonly executor: ExecutorName;
  /** Whether --executor was given (a saved failure otherwise replays on its own executor). */
  readonly executorGiven?: boolean;
  readonly why: string;
  readonly objects: Partial<ObjectPaths>;
  readonly explain?: boolean;
  /** Objects of the report and acceleration phases (--phase report|accel). */
  readonly reportObjects?: ReportObjectPaths;
  readonly accelObjects?: AccelObjectPaths;
}

function checkPhase(p: string): string {
  if (p === 'report' || p === 'accel' || /^(consistent|raw)\/(single|sequence|dns)$/.test(p) || /^target\/[a-z0-9-]+:[a-z0-9()-]+\/(consistent|raw|both)\/(single|sequence|dns)$/.test(p)) return p;
  throw new KmeshCheckError('unsupported', `--phase must be consistent|raw / single|sequence|dns (e.g. consistent/single), report, accel, or a target/... phase a finding printed (got ${p})`);
}

export async function replayCommand(o: ReplayOptions): Promise<number> {
  if (!o.case && (o.phase === undefined || o.seed === undefined || o.path === undefined)) {
    throw new KmeshCheckError('unsupported', 'replay needs --case FILE, or --phase, --seed and --path from a finding');
  }
  const any = o.case ? readSavedFailure(o.case) : null;
  const log = (s: string) => process.stdout.write(s + '\n');
  preflightSectionObjects({ ...(o.reportObjects ? { report: o.reportObjects } : {}), ...(o.accelObjects ? { accel: o.accelObjects } : {}) });
  // The report and acceleration phases replay on their own executors and objects.
  const sectionPhase = any && isSectionFailure(any) ? any.phase : o.phase === 'report' || o.phase === 'accel' ? o.phase : null;
  if (sectionPhase) {
    const sectionSaved = any && isSectionFailure(any) ? any : undefined;
    return replaySection({
      phase: sectionPhase,
      executor: sectionSaved && !o.executorGiven ? (sectionSaved.executor as ExecutorName) : o.executor,
      log,
      ...(sectionSaved ? { saved: sectionSaved, savedFile: o.case! } : { seed: o.seed!, path: o.path! }),
      ...(o.reportObjects ? { reportObjects: o.reportObjects } : {}),
      ...(o.accelObjects ? { accelObjects: o.accelObjects } : {}),
    });
  }
  const saved = any && !isSectionFailure(any) ? any : null;
  // A saved failure replays on its own objects and executor unless the command says otherwise.
  const objects: Partial<ObjectPaths> = Object.keys(o.objects).length ? o.objects : ((saved?.objects ?? {}) as Partial<ObjectPaths>);
  const executor: ExecutorName = saved && !o.executorGiven ? (saved.executor as ExecutorName) : o.executor;
  const why = saved && !o.executorGiven ? `the executor ${saved.id} was saved from` : o.why;
  const opened = await openExecutor(executor, objects, why);
  log(`kmesh-check replay: executor ${opened.name} (${opened.why})${Object.keys(objects).length ? `, objects ${objectsArgument(objects as Record<string, string>)}` : ''}`);
  const given = Object.fromEntries(Object.entries(objects).map(([k, v]) => [k, resolve(v as string)]));
  const run: RunContext = { executor: opened.name, objects: Object.keys(given).length ? objectsArgument(given) : null };
  const identity = runIdentity(opened.name, objects);
  const explain = async (c: Parameters<typeof explainFinding>[0]) => {
    if (o.explain === false || opened.name === 'model') return;
    const x = await explainFinding(c, opened.env, identity.objects ?? {});
    if (x)
      log(
        formatExplanation(x)
          .map((l) => `  ${l}`)
          .join('\n'),
      );
  };
  try {
    const opts = { env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) };
    if (saved) {
      let j;
      try {
        j = await judgeSaved(saved, { name: opened.name, executor: opened.executor, objects, env: opened.env });
      } catch (e) {
        if (e instanceof ModelInputError || e instanceof OutcomeLimitError) throw new KmeshCheckError('codec', `${o.case}: cannot be replayed (${e.message})`);
        throw e;
      }
      if (!j.failure || !j.signature) {
        log(`saved failure ${saved.id} passes now`);
        log(formatCase(saved.case).join('\n'));
        return 0;
      }
      log(formatCounterexample(savedCounterexample(saved, { failure: j.failure, signature: j.signature }, o.case!), run, 'SAVED FAILURE'));
      await explain(saved.case);
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
        log(
          formatCounterexample(
            {
              phase: o.phase!,
              seed: o.seed ?? 0,
              path: o.path!,
              case: r.case,
              shrunkFrom: size,
              size,
              failure: r.failure,
              minimizeTries: 0,
              signature: signatureOf(r.case, r.failure, opened.env),
              hits: 0,
            },
            run,
            'FINDING',
          ),
        );
        await explain(r.case);
        return 1;
      } finally {
        await setup.close();
      }
    }
    const cx = await withExactVm(opened.name, opened.executor, o.objects, (exact) =>
      replayCounterexample(checkPhase(o.phase!), o.seed!, o.path!, { seed: o.seed!, runs: 1, states: 'both', ...opts, ...(exact ? { exact } : {}) }),
    );
    if (!cx) {
      log(`the case at seed ${o.seed} path ${o.path} passes`);
      return 0;
    }
    log(formatCounterexample({ ...cx, hits: 0 }, run, 'FINDING'));
    await explain(cx.case);
    return 1;
  } finally {
    await opened.executor?.close();
  }
}
