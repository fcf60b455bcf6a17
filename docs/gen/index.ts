// The generated spec documentation: `renderSpec()` builds docs/spec.md from the code and
// `checkSpecFresh(root)` tells whether the committed file still matches it.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../shared/package.js';
import { renderSpecFrom, SPEC_PATH } from './render.js';

export { SPEC_PATH } from './render.js';
export { PATH_DOCS } from './paths.js';
export { findExamples, type Example } from './examples.js';

/** docs/spec.md as the code says it should be (readings from this package's interpretation.md). */
export function renderSpec(): string {
  return renderSpecFrom(packageRoot());
}

/** A short line diff: the first differing region with a little context, at most `max` lines. */
export function lineDiff(expected: string, actual: string, max = 12): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const out = [`@@ line ${start + 1}: expected ${endA - start} line(s), found ${endB - start} @@`];
  const from = Math.max(0, start - 2);
  for (let i = from; i < start; i++) out.push(`  ${a[i]}`);
  const removed = a.slice(start, endA).map((l) => `- ${l}`);
  const added = b.slice(start, endB).map((l) => `+ ${l}`);
  const body = [...removed, ...added];
  out.push(...body.slice(0, max));
  if (body.length > max) out.push(`  ... ${body.length - max} more changed line(s)`);
  return out.join('\n');
}

/** Whether `root`/docs/spec.md equals renderSpec(); when not, a short diff (- expected, + found). */
export function checkSpecFresh(root: string): { fresh: boolean; diff?: string } {
  const path = join(root, SPEC_PATH);
  let actual: string;
  try {
    actual = readFileSync(path, 'utf8');
  } catch {
    return { fresh: false, diff: `${SPEC_PATH} does not exist under ${root}` };
  }
  const expected = renderSpec();
  if (actual === expected) return { fresh: true };
  return { fresh: false, diff: lineDiff(expected, actual) };
}
