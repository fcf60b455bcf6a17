// A browsable, self-contained HTML page of C source coverage: per file, every source line coloured
// by whether the run reached it, with hit counts and branch outcomes. Sources are read from the
// paths BTF line info names when they exist on this machine; otherwise the page shows the line
// texts the compiler stored in BTF, so it is still useful for objects built elsewhere.

import { existsSync, readFileSync } from 'node:fs';
import { fileTotals, totals, type CoverageTotals, type SourceFileCoverage } from './lcov.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function pct(hit: number, found: number): string {
  return found === 0 ? '-' : `${((100 * hit) / found).toFixed(1)}%`;
}

function sourceLines(f: SourceFileCoverage, read: (path: string) => string | null): { lines: string[]; fromDisk: boolean } {
  const text = read(f.path);
  if (text !== null) return { lines: text.split('\n'), fromDisk: true };
  const last = Math.max(0, ...f.lines.keys());
  return { lines: Array.from({ length: last }, (_, i) => f.text.get(i + 1) ?? ''), fromDisk: false };
}

function readIfPresent(path: string): string | null {
  try {
    return existsSync(path) ? readFileSync(path, 'utf8') : null;
  } catch {
    return null;
  }
}

function totalsCells(t: CoverageTotals): string {
  return `<td>${t.linesHit}/${t.linesFound}</td><td>${pct(t.linesHit, t.linesFound)}</td><td>${t.branchesHit}/${t.branchesFound}</td><td>${pct(t.branchesHit, t.branchesFound)}</td>`;
}

const STYLE = `body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}
.summary td,.summary th{border:1px solid #ccc;padding:2px 8px;text-align:right}.summary td:first-child{text-align:left}
.src{font-family:monospace;font-size:13px;margin-bottom:2em}.src td{padding:0 6px;white-space:pre;vertical-align:top}
.num,.hits{color:#666;text-align:right}.hit{background:#d7f5d7}.miss{background:#f8d0d0}.partial .br{color:#a05a00;font-weight:bold}
.br{color:#666}.note{color:#666;font-style:italic}`;

/** The page. `read` returns a source file's text, or null when it is not available here. */
export function coverageHtml(files: readonly SourceFileCoverage[], title = 'kmesh-check C source coverage', read: (path: string) => string | null = readIfPresent): string {
  const all = totals(files);
  const out: string[] = [
    '<!DOCTYPE html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head><body>`,
    `<h1>${esc(title)}</h1>`,
    '<p>Lines and branches of the BPF programs the userspace VM ran, placed by BTF line info. Green: ran; red: never ran; uncoloured: no code.</p>',
    '<table class="summary" id="summary"><tr><th>file</th><th>lines</th><th>%</th><th>branches</th><th>%</th></tr>',
  ];
  files.forEach((f, i) => out.push(`<tr><td><a href="#file-${i}">${esc(f.path)}</a></td>${totalsCells(fileTotals(f))}</tr>`));
  out.push(`<tr id="total"><td><b>total</b></td>${totalsCells(all)}</tr></table>`);
  files.forEach((f, i) => {
    const { lines, fromDisk } = sourceLines(f, read);
    const branchesByLine = new Map<number, { hit: number; found: number }>();
    for (const b of f.branches) {
      const cur = branchesByLine.get(b.line) ?? { hit: 0, found: 0 };
      cur.found += 2;
      cur.hit += (b.taken > 0 ? 1 : 0) + (b.fallthrough > 0 ? 1 : 0);
      branchesByLine.set(b.line, cur);
    }
    out.push(`<h2 id="file-${i}">${esc(f.path)}</h2>`);
    if (!fromDisk) out.push('<p class="note">source not found on this machine: showing the line texts recorded in BTF</p>');
    out.push(`<table class="src" data-file="${esc(f.path)}">`);
    lines.forEach((text, k) => {
      const n = k + 1;
      const hits = f.lines.get(n);
      const br = branchesByLine.get(n);
      const cls = hits === undefined ? 'line' : hits > 0 ? `line hit${br && br.hit < br.found ? ' partial' : ''}` : 'line miss';
      const brCell = br ? `branches ${br.hit}/${br.found}` : '';
      out.push(
        `<tr class="${cls}" data-line="${n}"${hits !== undefined ? ` data-hits="${hits}"` : ''}><td class="num">${n}</td><td class="hits">${hits ?? ''}</td><td class="br">${brCell}</td><td>${esc(text)}</td></tr>`,
      );
    });
    out.push('</table>');
  });
  out.push('</body></html>');
  return out.join('\n') + '\n';
}
