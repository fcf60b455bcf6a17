// --coverage-out: the VM's coverage as an lcov tracefile plus an HTML page beside it
// (lcov.info -> lcov.html), and the line the check prints about them.

import { writeFileSync } from 'node:fs';
import type { CoverageSummary } from '../bpf/vm/coverage.js';
import { sourceCoverage, toLcov, totals } from '../bpf/vm/lcov.js';
import { coverageHtml } from '../bpf/vm/coverage-html.js';

export function htmlPathFor(lcovFile: string): string {
  const swapped = lcovFile.replace(/\.[^./]+$/, '.html');
  return swapped === lcovFile ? `${lcovFile}.html` : swapped;
}

/** Writes both files; returns a one-line summary naming them. */
export function writeCoverageFiles(summary: CoverageSummary, lcovFile: string): string {
  const files = sourceCoverage(summary);
  const html = htmlPathFor(lcovFile);
  writeFileSync(lcovFile, toLcov(files));
  writeFileSync(html, coverageHtml(files));
  const t = totals(files);
  return `C source coverage: lines ${t.linesHit}/${t.linesFound}, branches ${t.branchesHit}/${t.branchesFound} in ${files.length} files: ${lcovFile} (lcov), ${html} (HTML)`;
}
