// C source coverage files from the VM: the lcov tracefile is accepted by lcov's own genhtml with
// the same line and branch counts as the VM's coverage, the HTML page renders in a real headless
// browser showing covered and uncovered lines, and `check --coverage-out` writes both.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import type { CoverageSummary } from '../../bpf/vm/coverage.js';
import { sourceCoverage, toLcov, totals, type SourceFileCoverage } from '../../bpf/vm/lcov.js';
import { coverageHtml } from '../../bpf/vm/coverage-html.js';
import { LbPolicy, NO_WAYPOINT, type Case, type MapState } from '../../model/domain.js';
import { dataPathObjects, ROOT } from '../fixtures/vm/helpers.js';
import { findChromium, headless } from '../helpers/chromium.js';
import { decodePng } from '../helpers/png.js';

const ports = (...p: number[]) => [...p, ...new Array<number>(10 - p.length).fill(0)];
const STATE: MapState = {
  frontends: [{ addr: '10.96.0.10', upstreamId: 1 }],
  services: [{ id: 1, endpointCounts: [2, 0, 0, 0, 0, 0, 0], lbPolicy: LbPolicy.random, servicePorts: ports(80), targetPorts: ports(8080), waypoint: NO_WAYPOINT }],
  endpoints: [
    { serviceId: 1, prio: 0, index: 1, backendUid: 101 },
    { serviceId: 1, prio: 0, index: 2, backendUid: 102 },
  ],
  backends: [
    { uid: 0, addr: '10.0.0.53', services: [], waypoint: NO_WAYPOINT },
    { uid: 101, addr: '10.0.1.1', services: [1], waypoint: NO_WAYPOINT },
    { uid: 102, addr: '10.0.1.2', services: [1], waypoint: NO_WAYPOINT },
  ],
};
const CONNECT: Case = {
  state: STATE,
  kind: 'consistent',
  enrolled: true,
  ops: [
    { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
    { op: 'connect', sock: 1, dest: { addr: '10.96.0.10', port: 80 } },
  ],
};

let summary: CoverageSummary;
let files: SourceFileCoverage[];
const dir = mkdtempSync(join(tmpdir(), 'kc-coverage-'));

beforeAll(async () => {
  const ex = await createVmExecutor({ objects: dataPathObjects() });
  ex.resetCoverage();
  await ex.run([CONNECT]);
  summary = ex.coverage();
  files = sourceCoverage(summary);
});

/** "lines......: 57.1% (92 of 161 lines)" -> [92, 161] */
function genhtmlCount(out: string, what: 'lines' | 'branches' | 'functions'): [number, number] {
  const m = new RegExp(`${what}\\.*: [\\d.]+% \\((\\d+) of (\\d+) ${what}\\)`).exec(out);
  if (!m) throw new Error(`genhtml printed no ${what} total:\n${out}`);
  return [Number(m[1]), Number(m[2])];
}

describe('lcov tracefile', () => {
  it('names our C files and counts what the VM counted, line by line and branch by branch', () => {
    const paths = files.map((f) => f.path);
    expect(paths).toContain(join(ROOT, 'bpf/src/cgroup_sock.bpf.c'));
    expect(paths.some((p) => p.endsWith('/dns.h'))).toBe(true);
    for (const p of paths) expect(existsSync(p), p).toBe(true);

    // Independently of lcov.ts: distinct (file, line) pairs and whether any program ran them.
    const lineHits = new Map<string, number>();
    for (const p of summary.programs) for (const l of p.lines) lineHits.set(`${l.path}:${l.line}`, Math.max(lineHits.get(`${l.path}:${l.line}`) ?? 0, l.hits));
    const hitLines = [...lineHits.values()].filter((h) => h > 0).length;
    const outcomes = summary.programs.flatMap((p) => p.branchDetails.flatMap((b) => [b.taken, b.fallthrough]));
    const t = totals(files);
    expect(t).toEqual({ linesFound: lineHits.size, linesHit: hitLines, branchesFound: 2 * summary.branches, branchesHit: outcomes.filter((n) => n > 0).length });
    // One connect leaves code unreached (the DNS path), so the counts are not trivially full.
    expect(t.linesHit).toBeGreaterThan(0);
    expect(t.linesHit).toBeLessThan(t.linesFound);

    const text = toLcov(files);
    const records = text.split('end_of_record\n').filter(Boolean);
    expect(records).toHaveLength(files.length);
    for (const r of records)
      expect(r).toMatch(/^TN:.*\nSF:\/.+\n(FN:\d+,\w+\n)*(FNDA:\d+,\w+\n)*(FNF:\d+\nFNH:\d+\n)?(DA:\d+,\d+\n)+(BRDA:\d+,\d+,[01],(\d+|-)\n)*BRF:\d+\nBRH:\d+\nLF:\d+\nLH:\d+\n$/);
  });

  it('is accepted by genhtml, which reports the same totals', () => {
    const lcov = join(dir, 'lcov.info');
    writeFileSync(lcov, toLcov(files));
    const r = spawnSync('genhtml', ['--branch-coverage', lcov, '-o', join(dir, 'genhtml')], { encoding: 'utf8' });
    if (r.error) throw new Error('genhtml not found: run bash scripts/setup.sh (it installs lcov)');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/WARNING|ERROR/i);
    const out = r.stdout + r.stderr;
    const t = totals(files);
    expect(genhtmlCount(out, 'lines')).toEqual([t.linesHit, t.linesFound]);
    expect(genhtmlCount(out, 'branches')).toEqual([t.branchesHit, t.branchesFound]);
    // Functions: the BPF programs, entered or not.
    const programs = summary.programs.filter((p) => p.entry);
    expect(programs).toHaveLength(summary.programs.length);
    expect(genhtmlCount(out, 'functions')).toEqual([programs.filter((p) => p.runs > 0).length, programs.length]);
    expect(existsSync(join(dir, 'genhtml/index.html'))).toBe(true);
  });
});

describe('HTML page', () => {
  it('marks each line with code as run or never run, with its count, and falls back to BTF text without sources', () => {
    const html = coverageHtml(files);
    const t = totals(files);
    expect(html.match(/class="line hit[^"]*"/g)?.length).toBe(t.linesHit);
    expect(html.match(/class="line miss"/g)?.length).toBe(t.linesFound - t.linesHit);
    const noDisk = coverageHtml(files, 'x', () => null);
    expect(noDisk).toMatch(/source not found on this machine/);
    expect(noDisk.match(/class="line miss"/g)?.length).toBe(t.linesFound - t.linesHit);
  });

  it('renders in headless chromium, showing covered (green) and uncovered (red) lines', () => {
    const browser = findChromium();
    if (!browser.path) {
      console.warn(`\n!!! SKIPPED: HTML coverage page not tested in a browser: ${browser.why} !!!\n`);
      return;
    }
    // The file with the most never-run lines that also has run ones, so one screenshot shows both.
    const both = files.filter((f) => [...f.lines.values()].some((h) => h > 0) && [...f.lines.values()].some((h) => h === 0));
    const f = both.sort((a, b) => [...b.lines.values()].filter((h) => h === 0).length - [...a.lines.values()].filter((h) => h === 0).length)[0]!;
    const page = join(dir, 'page.html');
    writeFileSync(page, coverageHtml([f]));
    const url = pathToFileURL(page).href;

    const dom = headless(browser.path, ['--dump-dom'], url);
    expect(dom.status, dom.err).toBe(0);
    expect(dom.out).toMatch(/<table class="src"/);
    const rendered = dom.out.match(/<tr class="line (hit|miss)[^"]*" data-line="\d+" data-hits="\d+">/g) ?? [];
    expect(rendered.filter((r) => r.startsWith('<tr class="line miss')).length).toBe([...f.lines.values()].filter((h) => h === 0).length);
    expect(rendered.filter((r) => r.startsWith('<tr class="line hit')).length).toBe([...f.lines.values()].filter((h) => h > 0).length);

    const lines = readFileSync(f.path, 'utf8').split('\n').length;
    const shot = join(dir, 'shot.png');
    const s = headless(browser.path, [`--screenshot=${shot}`, `--window-size=900,${Math.min(8000, 300 + 20 * lines)}`, '--hide-scrollbars'], url);
    expect(existsSync(shot), s.err).toBe(true);
    const img = decodePng(readFileSync(shot));
    let green = 0,
      red = 0;
    for (let y = 0; y < img.height; y += 2) {
      for (let x = 0; x < img.width; x += 4) {
        const [r, g, b] = img.rgb(x, y);
        if (r === 0xd7 && g === 0xf5 && b === 0xd7) green++;
        if (r === 0xf8 && g === 0xd0 && b === 0xd0) red++;
      }
    }
    expect(green, 'covered lines drawn green').toBeGreaterThan(100);
    expect(red, 'uncovered lines drawn red').toBeGreaterThan(100);
  }, 240_000);
});
