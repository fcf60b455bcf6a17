// A patched copy of the sources (a mutant) changes one or two files; the objects none of whose
// inputs it changed are the baseline build's, byte for byte. Compiling all six objects again made
// building every mutant take a minute, a tenth of the test suite's CPU. Which inputs an object has
// is what the compiler wrote in the baseline's dependency file (-MMD).

import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The files an object was compiled from, as its dependency file (make syntax, first rule) lists them. */
function inputs(depfile: string): string[] {
  const rule = readFileSync(depfile, 'utf8').replace(/\\\n/g, ' ').split('\n')[0] ?? '';
  return rule
    .slice(rule.indexOf(':') + 1)
    .split(/\s+/)
    .filter(Boolean);
}

const sources = (dir: string) =>
  readdirSync(dir)
    .filter((f) => /\.[ch]$/.test(f))
    .sort()
    .join('\n');

/**
 * The objects (file names) of the build in `baseline`, compiled from `from`, that a build of `src`
 * would compile again to the same bytes: every input under `from` has the same content in `src`
 * (inputs elsewhere, the system's headers, are shared). A file added or removed in `src` may change
 * which header an #include finds, so then none is.
 */
export function reusableObjects(baseline: string, from: string, src: string): string[] {
  if (!existsSync(baseline) || sources(from) !== sources(src)) return [];
  const same = (path: string) => {
    const rel = relative(from, path);
    if (rel.startsWith('..')) return true;
    const copy = join(src, rel);
    return existsSync(copy) && readFileSync(copy).equals(readFileSync(path));
  };
  return readdirSync(baseline)
    .filter((f) => f.endsWith('.bpf.d') && existsSync(join(baseline, f.replace(/\.bpf\.d$/, '.o'))))
    .filter((f) => inputs(join(baseline, f)).every(same))
    .map((f) => f.replace(/\.bpf\.d$/, '.o'));
}

/**
 * Puts the baseline's `objects` into `out` with dependency files naming `src`, so that make finds
 * them up to date. Called after make has run on the rest: the copies are then newer than everything
 * make compares them with (sources, flags).
 */
export function copyObjects(objects: readonly string[], baseline: string, from: string, src: string, out: string): void {
  for (const o of objects) {
    copyFileSync(join(baseline, o), join(out, o));
    const dep = o.replace(/\.o$/, '.bpf.d');
    writeFileSync(join(out, dep), readFileSync(join(baseline, dep), 'utf8').split(baseline).join(out).split(from).join(src));
  }
}
