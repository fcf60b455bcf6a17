// Every mutant in cli/mutants.ts builds, changes the code of the object it names (and only that
// object), and passes the verifier. A mutant that compiles to the default code is no mutant; one
// the verifier rejects cannot be run against the checker.

import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { KmeshCheckError } from '../../shared/errors.js';
import { captureLibbpfLog, libbpf, takeLibbpfLog } from '../../bpf/kernel/libbpf.js';
import { summariseVerifierLog } from '../../bpf/kernel/loader.js';
import { packageRoot } from '../../bpf/kernel/paths.js';
import { MUTANTS, buildAllMutants, buildBaseline, buildMutant, mutantObjects, mutantPatch } from '../../cli/mutants.js';
import { applyPatch } from '../../cli/mutant-patch.js';
import type { ObjectPaths } from '../../model/executor.js';

const root = packageRoot();
const OBJECTS = ['connect', 'sockops', 'sendmsg'] as const;
/** Programs each object must load, by name. */
const PROGRAMS: Record<keyof ObjectPaths, string[]> = {
  connect: ['cgroup_connect4_prog', 'cgroup_connect6_prog'],
  sockops: ['sockops_prog'],
  sendmsg: ['sendmsg_prog'],
};

/** Instructions and relocations, without the header line that names the file. */
function disassembly(path: string): string {
  const r = spawnSync('llvm-objdump', ['-d', '-r', path], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`llvm-objdump -d ${path} failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => !l.includes(path))
    .join('\n');
}

/**
 * Opens and loads an object through libbpf (the kernel verifier runs on every program), checks
 * that each expected program got an fd, and closes it: nothing stays in the kernel. Hash maps are
 * shrunk first, which the verifier does not look at, so that loading stays cheap.
 */
function verify(path: string, expected: readonly string[]): string[] {
  const obj = libbpf.objectOpenFile(path, null);
  if (!obj) throw new Error(`libbpf cannot open ${path}`);
  try {
    for (let m = libbpf.nextMap(obj, null); m; m = libbpf.nextMap(obj, m)) {
      if (libbpf.mapMaxEntries(m) > 64) libbpf.mapSetMaxEntries(m, 64);
    }
    takeLibbpfLog();
    const err = libbpf.objectLoad(obj);
    if (err !== 0) {
      const s = summariseVerifierLog(takeLibbpfLog());
      throw new Error(`loading ${path} failed (${err}): ${s ? `${s.program}: ${s.message} ${s.instructions.join(' | ')}` : 'no verifier log'}`);
    }
    const loaded: string[] = [];
    for (let p = libbpf.nextProgram(obj, null); p; p = libbpf.nextProgram(obj, p)) {
      if (libbpf.programFd(p) >= 0) loaded.push(libbpf.programName(p));
    }
    expect(loaded.sort()).toEqual([...expected].sort());
    return loaded;
  } finally {
    libbpf.objectClose(obj);
  }
}

let baseline: ObjectPaths;
let built: ReadonlyMap<string, ObjectPaths>;
const baseDis = new Map<string, string>();

beforeAll(() => {
  captureLibbpfLog();
  baseline = buildBaseline(root);
  built = buildAllMutants(root);
  for (const o of OBJECTS) baseDis.set(o, disassembly(baseline[o]));
});

describe('the mutant catalogue', () => {
  it('has at least 14 mutants with unique kebab-case names and one-sentence descriptions', () => {
    expect(MUTANTS.length).toBeGreaterThanOrEqual(14);
    expect(new Set(MUTANTS.map((m) => m.name)).size).toBe(MUTANTS.length);
    for (const m of MUTANTS) {
      expect(m.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(m.description).toMatch(/^[A-Za-z].*\.$/);
      expect(m.description.slice(0, -1)).not.toMatch(/\.\s/);
    }
  });

  it('has one patch in bpf/mutants per mutant, and the production sources carry no mutation switch', () => {
    const patches = readdirSync(join(root, 'bpf/mutants')).filter((f) => f.endsWith('.patch'));
    expect(patches.map((f) => f.replace(/\.patch$/, '')).sort()).toEqual(MUTANTS.map((m) => m.name).sort());
    for (const m of MUTANTS) expect(mutantPatch(m.name, root)).toBe(join(root, 'bpf/mutants', `${m.name}.patch`));
    const src = join(root, 'bpf/src');
    const text = readdirSync(src)
      .filter((f) => /\.[ch]$/.test(f))
      .map((f) => readFileSync(join(src, f), 'utf8'))
      .join('\n');
    expect(text).not.toMatch(/MUTANT|[Mm]utant/);
  });

  it('refuses a patch that no longer fits the production source, with a one-line error', () => {
    const files = new Map([['route.h', 'a\nb\nc\n']]);
    expect(applyPatch(files, '--- a/route.h\n+++ b/route.h\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n').get('route.h')).toBe('a\nB\nc\n');
    expect(() => applyPatch(files, '--- a/route.h\n+++ b/route.h\n@@ -1,2 +1,2 @@\n a\n-x\n+B\n')).toThrow(/^route\.h no longer contains the lines a hunk changes$/);
    expect(() => applyPatch(files, '--- a/other.h\n+++ b/other.h\n@@ -1 +1 @@\n-a\n+b\n')).toThrow(/other\.h, which is not a production source/);
  });

  it('rejects an unknown mutant with a one-line error naming the known ones', () => {
    let error: unknown;
    try {
      buildMutant('no-such-mutant', root);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KmeshCheckError);
    const msg = (error as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).toContain("unknown mutant 'no-such-mutant'");
    expect(msg).toContain(MUTANTS[0]!.name);
  });
});

describe('building the mutants', () => {
  it('puts each mutant in build/mutants/<name>/', () => {
    for (const m of MUTANTS) {
      const paths = built.get(m.name);
      expect(paths).toEqual(mutantObjects(m.name, root));
      expect(paths!.connect).toBe(join(root, 'build/mutants', m.name, 'cgroup_sock.o'));
    }
  });

  it('is idempotent: a second build rewrites nothing', () => {
    const name = MUTANTS[0]!.name;
    const paths = built.get(name)!;
    const before = OBJECTS.map((o) => statSync(paths[o]).mtimeMs);
    expect(buildMutant(name, root)).toEqual(paths);
    expect(OBJECTS.map((o) => statSync(paths[o]).mtimeMs)).toEqual(before);
  });

  it.each(MUTANTS.map((m) => [m.name, m] as const))('%s changes the code of its object and of no other', (_name, m) => {
    const paths = built.get(m.name)!;
    for (const o of OBJECTS) {
      const same = disassembly(paths[o]) === baseDis.get(o);
      expect({ object: o, same }).toEqual({ object: o, same: o !== m.object });
    }
  });
});

describe('the verifier', () => {
  it('accepts every program of the default build', () => {
    for (const o of OBJECTS) verify(baseline[o], PROGRAMS[o]);
  });

  it.each(MUTANTS.map((m) => [m.name, m] as const))('accepts every program of %s', (_name, m) => {
    const paths = built.get(m.name)!;
    for (const o of OBJECTS) verify(paths[o], PROGRAMS[o]);
  });
});
