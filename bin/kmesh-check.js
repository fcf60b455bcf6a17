#!/usr/bin/env node
// Entry point of the kmesh-check command: the compiled CLI lives in dist/ (npm run build).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const tuning = fileURLToPath(new URL('../dist/shared/v8-tuning.js', import.meta.url));
for (const [file, name] of [
  [main, 'dist/cli/main.js'],
  [tuning, 'dist/shared/v8-tuning.js'],
]) {
  if (!existsSync(file)) {
    console.error(`kmesh-check: not built yet (${name} missing): run \`npm run build\` or \`bash scripts/setup.sh\``);
    process.exit(2);
  }
}
// A reader that stops early (`kmesh-check check | head`) is not an error: the run goes on to its
// end (and its clean-up) with nothing more printed, instead of dying on an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code !== 'EPIPE') throw e;
  });
}
// Compiler tuning first, before any of the checker's code runs (shared/v8-tuning.ts says why).
const { tuneV8 } = await import(tuning);
tuneV8();
const { run } = await import(main);
process.exitCode = await run(process.argv);
