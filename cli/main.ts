// The kmesh-check command line. Exit codes: 0 every property holds, 1 a counterexample (or a
// failed requirement), 2 a usage or environment error. Usage errors are one line that names the
// subcommand's --help, and output paths are checked before a run rather than after it.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { KmeshCheckError, isKmeshCheckError } from '../shared/errors.js';
import { VmFault } from '../bpf/vm/program.js';
import type { ObjectPaths } from '../model/executor.js';
import { checkCommand } from './commands/check.js';
import { doctorCommand } from './commands/doctor.js';
import { replayCommand } from './commands/replay.js';
import { MUTANT_RUNS, mutantsCommand } from './commands/mutants.js';
import { JOBS_MODEL_RUNS, benchCommand } from './commands/bench.js';
import { mergeCommand } from './commands/merge.js';
import { baselineCommand } from './baseline.js';
import { docsCommand } from '../docs/gen/cli.js';
import { packageRoot } from '../shared/package.js';
import { defaultExecutorName, type ExecutorName } from './executors.js';
import { assertWritable } from './output-paths.js';
import { casesPerJob } from './jobs.js';
import { tuneV8ForRun } from '../shared/v8-tuning.js';
import { CHECK_EXAMPLES, EXIT_CODES, PROGRAM_EXAMPLES, nearest, usageLine } from './usage.js';

/**
 * check's budget: 22,000 connect cases and 2,200 DNS cases, 3 s on the VM and 5.5 s on the kernel
 * here (1.8 s and 3.1 s at 2,000 runs). At 2,000 runs, four of nine hand-made bugs of a bug hunt
 * (a hole in the port slots, a reply restored against the current DNS proxy, a rewritten
 * destination routed again, km_socket before the enrolment check) showed on some seeds only;
 * at 20,000 all four on the default seed.
 */
export const DEFAULT_RUNS = 20_000;
/** Runs from which check's exhaustive phase gets its whole time budget (scope 1 takes 1-2.5 s of it). */
export const FULL_EXHAUSTIVE_RUNS = 2000;
export { MUTANT_RUNS };
export const DEFAULT_SEED = 42;

function integer(name: string, min: number) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return Number(v);
  };
}

function duration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v);
  if (!m) throw new InvalidArgumentError('--time-limit must be a duration such as 90s, 5m or 1500ms');
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  // A zero budget would "pass" having checked nothing.
  if (!(ms >= 1)) throw new InvalidArgumentError('--time-limit must be more than zero, e.g. 90s, 5m or 1500ms');
  return ms;
}

function shard(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError('expected i/n with 1 <= i <= n, e.g. 2/4');
  return { index: index - 1, count };
}

/**
 * Object paths by role, as the object options take them: in the roles' order (a.o,b.o) or by name
 * (role=a.o; `names` maps each accepted name to its role), or both. A name no role has, a role
 * given twice or more paths than roles is a usage error that starts with `usage`.
 */
/** role=path in an object option (a role is letters and underscores: a path is never one). */
const ROLE_PATH = /^([A-Za-z_]+)=(.+)$/;

function rolePaths<R extends string>(usage: string, v: string, roles: readonly R[], names: Readonly<Record<string, R>>): Partial<Record<R, string>> {
  const out: Partial<Record<R, string>> = {};
  v.split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .forEach((p, i) => {
      const m = ROLE_PATH.exec(p);
      const role = m ? names[m[1]!] : roles[i];
      if (!role) throw new InvalidArgumentError(m ? `${usage}: no role is named '${m[1]}'` : `${usage}: ${i + 1} paths given, at most ${roles.length}`);
      if (out[role] !== undefined) throw new InvalidArgumentError(`${usage}: ${m ? m[1] : p} names an object given already`);
      out[role] = m ? m[2]! : p;
    });
  return out;
}

const ACCEL_USAGE = '--accel-objects takes one object holding ma_ops and ma_redirect, or two: ma_ops.o,ma_redirect.o (or ma_ops=...,ma_redirect=...)';

/** --accel-objects: one object holding both programs, or ma_ops.o,ma_redirect.o (or ma_ops=...,ma_redirect=...). */
function accelObjects(v: string): { ops: string; redirect: string } {
  const p = rolePaths(ACCEL_USAGE, v, ['ops', 'redirect'] as const, {
    ma_ops: 'ops',
    ma_redirect: 'redirect',
  });
  // One path alone holds both programs; one named alone leaves the other out.
  const one = p.ops ?? p.redirect;
  const named = v.split(',').some((x) => ROLE_PATH.test(x.trim()));
  if (one === undefined || (named && (p.ops === undefined || p.redirect === undefined))) {
    throw new InvalidArgumentError(`${ACCEL_USAGE}${named ? `: no ${p.ops === undefined ? 'ma_ops' : 'ma_redirect'}` : ''}`);
  }
  return { ops: p.ops ?? one, redirect: p.redirect ?? one };
}

const REPORT_USAGE = '--report-objects takes four objects, connect.o,sockops.o,sendmsg.o,cgroup_skb.o (or connect=...,sockops=...,sendmsg=...,cgroup_skb=...)';

/** --report-objects: all four objects of the report paths. */
function reportObjects(v: string): { connect: string; sockops: string; sendmsg: string; skb: string } {
  const p = rolePaths(REPORT_USAGE, v, ['connect', 'sockops', 'sendmsg', 'skb'] as const, { connect: 'connect', sockops: 'sockops', sendmsg: 'sendmsg', cgroup_skb: 'skb', skb: 'skb' });
  const { connect, sockops, sendmsg, skb } = p;
  if (connect === undefined || sockops === undefined || sendmsg === undefined || skb === undefined) {
    const missing = (['connect', 'sockops', 'sendmsg', 'skb'] as const).filter((r) => p[r] === undefined).map((r) => (r === 'skb' ? 'cgroup_skb' : r));
    throw new InvalidArgumentError(`${REPORT_USAGE}: no ${missing.join(', ')}`);
  }
  return { connect, sockops, sendmsg, skb };
}

/** --objects connect.o,sockops.o,sendmsg.o or connect=...,sockops=...,sendmsg=... (the others ours). */
function objects(v: string): Partial<ObjectPaths> {
  return rolePaths('--objects takes connect.o,sockops.o,sendmsg.o (or connect=...,sockops=...,sendmsg=...)', v, ['connect', 'sockops', 'sendmsg'] as const, {
    connect: 'connect',
    sockops: 'sockops',
    sendmsg: 'sendmsg',
  });
}

function executorOption(): Option {
  return new Option('--executor <name>', 'kernel | vm | model | all (default: kernel when root, else vm)').choices(['kernel', 'vm', 'model', 'all']);
}

function resolveExecutor(name: string | undefined): { names: ExecutorName[]; why: string } {
  if (name === undefined) {
    const d = defaultExecutorName();
    return { names: [d.name], why: d.why };
  }
  if (name === 'all') return { names: ['model', 'vm', 'kernel'], why: 'asked for with --executor all' };
  return { names: [name as ExecutorName], why: `asked for with --executor ${name}` };
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Checks every output path given before any work starts. */
function checkOutputs(o: Record<string, unknown>, options: readonly [key: string, flag: string][]): void {
  for (const [key, flag] of options) {
    const v = o[key];
    if (typeof v === 'string') assertWritable(flag, v);
  }
}

export function buildProgram(root: string, setExit: (code: number) => void): Command {
  const program = new Command('kmesh-check')
    .description('Property-based model checker for Kmesh-style eBPF data paths')
    .version(packageVersion(), '-V, --version', 'print the version of kmesh-check')
    .addHelpText('after', `\n${PROGRAM_EXAMPLES}\n\n${EXIT_CODES}\n`)
    .exitOverride();

  program
    .command('check', { isDefault: true })
    .description('check a data path against the reference model and the spec (the main job)')
    .option('--seed <n>', 'seed of the run', integer('--seed', -2147483648), DEFAULT_SEED)
    .option('--runs <n>', 'generated cases (split over state kinds and shapes)', integer('--runs', 1), DEFAULT_RUNS)
    .option('--time-limit <duration>', 'stop generating after this long (e.g. 90s, 5m)', duration)
    .addOption(executorOption())
    .option('--objects <paths>', 'connect,sockops,sendmsg object paths, in that order or by role (connect=a.o,sendmsg=b.o; the others ours) (default: ours in build/bpf)', objects)
    .option(
      '--accel-objects <paths>',
      'ma_ops,ma_redirect object paths of same-node acceleration, in that order or by role (ma_ops=a.o,ma_redirect=b.o), or one object with both (default: ours, unless --objects is given)',
      accelObjects,
    )
    .option(
      '--report-objects <paths>',
      'connect,sockops,sendmsg,cgroup_skb object paths for the connection reports, in that order or by role (connect=a.o,...,cgroup_skb=d.o) (default: ours, unless --objects is given)',
      reportObjects,
    )
    .addOption(new Option('--states <kind>', 'consistent | raw | both').choices(['consistent', 'raw', 'both']).default('both'))
    .option('--json <file>', 'write the JSON report')
    .option('--junit <file>', 'write JUnit XML')
    .option('--coverage-out <file>', 'vm executor: write C source line and branch coverage in lcov format (and an HTML page beside it)')
    .option('--shard <i/n>', 'run shard i of n of the seed space', shard)
    .option(
      '--jobs <n>',
      'run the random phases as n parts at once, each on its own executor (default: one per two cores, at most one per 1000 runs; on the VM and the model, one per core from 100,000 runs each), and, when given, the exhaustive exploration too (split by its top-level choices); the report does not depend on n',
      integer('--jobs', 1),
    )
    .option('--no-failure-db', 'neither replay nor save failures in .kmesh-check/')
    .option('--max-findings <n>', 'distinct findings to shrink and report at most', integer('--max-findings', 1), 10)
    .option('--stop-at-first', 'stop at the first failing case (for bisecting)')
    .option('--baseline <file>', 'accepted findings (kmesh-check baseline): reported as known, not failing the run')
    .option('--no-explain', 'do not explain findings on the VM')
    .option('--exhaustive', 'only the bounded-exhaustive phase: every case within --scope (no random sampling)')
    .option('--scope <n>', 'scope of the exhaustive phase (default 1; scope N allows N - 1 deviations from scope 1, docs/spec.md section 10)', integer('--scope', 1))
    .addHelpText('after', `\n${CHECK_EXAMPLES}\n\n${EXIT_CODES}\n`)
    .action(async (o) => {
      const { names, why } = resolveExecutor(o.executor);
      checkOutputs(o, [
        ['json', '--json'],
        ['junit', '--junit'],
        ['coverageOut', '--coverage-out'],
      ]);
      if (o.coverageOut && !names.includes('vm')) {
        throw new KmeshCheckError('unsupported', '--coverage-out needs the userspace VM, which counts what each instruction did: add --executor vm (or all)');
      }
      // Before any checking code compiles: a long run goes back to V8's inline budget.
      if (o.exhaustive !== true) tuneV8ForRun(Math.min(...names.map((n) => casesPerJob(o.runs, n, o.jobs, o.shard))));
      let worst = 0;
      for (const executor of names) {
        const code = await checkCommand({
          seed: o.seed,
          runs: o.runs,
          timeLimitMs: o.timeLimit,
          executor,
          why,
          objects: o.objects ?? {},
          states: o.states,
          json: names.length > 1 && o.json ? o.json.replace(/(\.json)?$/, `.${executor}.json`) : o.json,
          junit: names.length > 1 && o.junit ? o.junit.replace(/(\.xml)?$/, `.${executor}.xml`) : o.junit,
          ...(executor === 'vm' && o.coverageOut ? { coverageOut: o.coverageOut as string } : {}),
          shard: o.shard,
          root,
          failureDb: o.failureDb,
          ...(o.accelObjects ? { accelObjects: o.accelObjects } : {}),
          ...(o.reportObjects ? { reportObjects: o.reportObjects } : {}),
          maxFindings: o.maxFindings,
          stopAtFirst: o.stopAtFirst === true,
          baseline: o.baseline,
          explain: o.explain,
          exhaustive: o.exhaustive === true,
          ...(o.scope !== undefined ? { scope: o.scope } : {}),
          fullExhaustiveRuns: FULL_EXHAUSTIVE_RUNS,
          ...(o.jobs !== undefined ? { jobs: o.jobs as number } : {}),
        });
        worst = Math.max(worst, code);
      }
      setExit(worst);
    });

  program
    .command('replay')
    .description('replay one case: a saved failure file, or a phase, seed and path')
    .option('--case <file>', 'a saved failure (.kmesh-check/failures/*.json)')
    .option('--phase <kind/shape>', 'phase of the run, e.g. consistent/single')
    .option('--seed <n>', 'seed printed with the counterexample', integer('--seed', -2147483648))
    .option('--path <path>', 'path printed with the counterexample')
    .addOption(executorOption())
    .option('--objects <paths>', "connect,sockops,sendmsg object paths (default: a saved failure's own)", objects)
    .option('--report-objects <paths>', "connect,sockops,sendmsg,cgroup_skb object paths for --phase report (default: a saved failure's own, else ours)", reportObjects)
    .option('--accel-objects <paths>', "ma_ops,ma_redirect object paths for --phase accel (default: a saved failure's own, else ours)", accelObjects)
    .option('--no-explain', 'do not explain the finding on the VM')
    .action(async (o) => {
      const { names, why } = resolveExecutor(o.executor);
      setExit(await replayCommand({ ...o, executor: names[0]!, executorGiven: o.executor !== undefined, why, objects: o.objects ?? {} }));
    });

  program
    .command('baseline')
    .description('accept the findings of a JSON report: check --baseline FILE then fails only on new ones')
    .requiredOption('--from <report>', 'a JSON report written by check --json')
    .requiredOption('--out <file>', 'the baseline file to write')
    .option('--merge', 'keep the findings already accepted in --out')
    .action((o) => {
      checkOutputs(o, [['out', '--out']]);
      setExit(baselineCommand({ from: o.from, out: o.out, merge: !!o.merge }));
    });

  program
    .command('doctor')
    .description('check that this machine can run the kernel executor')
    .action(async () => setExit(await doctorCommand()));

  program
    .command('mutants')
    .description('run the checker against every mutant of our data path and print the mutation score')
    .option('--seed <n>', 'seed of every run', integer('--seed', -2147483648), DEFAULT_SEED)
    .option('--runs <n>', 'budget per mutant', integer('--runs', 1), MUTANT_RUNS)
    .addOption(executorOption())
    .option('--only <names>', 'comma-separated mutant names', (v: string) => v.split(','))
    .option('--json <file>', 'write the JSON report')
    .action(async (o) => {
      const { names, why } = resolveExecutor(o.executor);
      checkOutputs(o, [['json', '--json']]);
      setExit(await mutantsCommand({ executor: names[0]!, why, seed: o.seed, runs: o.runs, json: o.json, only: o.only }));
    });

  program
    .command('bench')
    .description('measure the executors against their baselines')
    .option('--json <file>', 'write the figures as JSON')
    .option('--cases <n>', 'single-connect cases per kernel round', integer('--cases', 100), 20000)
    .option('--no-mutants', 'skip the median time to kill a mutant')
    .option('--runs <n>', 'runs of each end-to-end measurement', integer('--runs', 100), 5000)
    .option(
      '--long-runs <n>',
      'runs of the long VM and kernel runs (the model 5x as many; they give the kernel --jobs figure and the peak memory of a 200k-case run too; 0 skips them)',
      integer('--long-runs', 0),
      40000,
    )
    .option(
      '--jobs-runs <n>',
      "runs of the model run of CI length (the VM's: half as many) that give the --jobs figures of the model and the VM and their peak memory (0 skips them)",
      integer('--jobs-runs', 0),
      JOBS_MODEL_RUNS,
    )
    .action(async (o) => {
      checkOutputs(o, [['json', '--json']]);
      setExit(await benchCommand({ json: o.json, cases: o.cases, mutants: o.mutants, runs: o.runs, longRuns: o.longRuns, jobsRuns: o.jobsRuns }));
    });

  program
    .command('docs')
    .description('generate docs/spec.md from model/spec (--check: fail when the committed file is stale)')
    .option('--check', 'exit 1 when docs/spec.md differs from what model/spec generates')
    .action((o) => setExit(docsCommand({ check: !!o.check, root: packageRoot() })));

  program
    .command('merge')
    .description('combine the JSON reports of shards into one verdict')
    .argument('<reports...>', 'JSON reports written by check --json')
    .option('--json <file>', 'write the merged report')
    .action((files: string[], o) => {
      checkOutputs(o, [['json', '--json']]);
      setExit(mergeCommand(files, o));
    });

  // Usage errors: one line naming the subcommand's --help, not the whole help.
  for (const cmd of [program, ...program.commands]) {
    const name = cmd === program ? '' : cmd.name();
    cmd.configureOutput({ outputError: (str, write) => write(usageLine(name, str)) });
  }
  return program;
}

/** A first word that is no command would otherwise reach the default command as an argument. */
function unknownCommand(program: Command, argv: readonly string[]): string | null {
  const first = argv[2];
  if (first === undefined || first.startsWith('-')) return null;
  const names = program.commands.map((c) => c.name());
  if (names.includes(first) || first === 'help') return null;
  const near = nearest(first, names);
  return `kmesh-check: unknown command '${first}'${near ? ` (did you mean ${near}?)` : ''}; commands: ${names.join(', ')} (see kmesh-check --help)\n`;
}

/** Runs the command line; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  let code = 0;
  // Failures are saved beside where the user runs the command, like a test runner's cache.
  const program = buildProgram(process.cwd(), (c) => (code = c));
  const unknown = unknownCommand(program, argv);
  if (unknown) {
    process.stderr.write(unknown);
    return 2;
  }
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isKmeshCheckError(e)) {
      process.stderr.write(`kmesh-check: ${e.message}\n`);
      return 2;
    }
    if (e instanceof VmFault) {
      // No program the kernel loads faults: the VM met what the verifier rejects, or what it lacks.
      process.stderr.write(`kmesh-check: the VM stopped on a program fault, ${e.message}; with --executor kernel (as root) the kernel's verifier says whether it loads the objects\n`);
      return 2;
    }
    throw e;
  }
}
