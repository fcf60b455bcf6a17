// The child process of the bench's memory figure: one job of `runs` generated cases on the
// reference model, then its peak resident set size (getrusage's ru_maxrss) as one JSON line. A
// process of its own, so that the figure is that run's alone.

import { DEFAULT_ENVIRONMENT } from '../model/environment.js';
import { runChecks } from '../properties/run.js';
import { tuneV8 } from '../shared/v8-tuning.js';

// As a user's run (bin/kmesh-check.js) is tuned.
tuneV8();

const runs = Number(process.argv[2] ?? '200000');
const started = Date.now();
const r = await runChecks({ seed: 1, runs, states: 'both', env: DEFAULT_ENVIRONMENT });
process.stdout.write(JSON.stringify({ cases: r.cases, seconds: (Date.now() - started) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
