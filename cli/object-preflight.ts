// The report and acceleration objects a user names, looked at before any work: each must exist,
// be a BPF ELF object, hold the programs of its role, and define the maps of its section's table
// as the table says. Otherwise their phase could only be skipped or stop after the routing phases
// had run, and a run meant to check them would end without having run them. Pure ELF and BTF
// reading (bpf/vm/elf.ts, link.ts): the same answer for every executor.

import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { ACCEL_MAPS, ACCEL_PROGRAMS, checkAccelMapShape, type AccelMapName } from '../bpf/codec/accel.js';
import { REPORT_PROGRAMS, checkReportMap } from '../bpf/codec/report.js';
import { ElfError, loadElf, programNames } from '../bpf/vm/elf.js';
import { linkObject, type MapDef } from '../bpf/vm/link.js';
import { KmeshCheckError } from '../shared/errors.js';

/** The programs an object holds; a one-line error when it is missing or no BPF object. */
function programsOf(what: string, option: string, path: string): string[] {
  if (!existsSync(path)) throw new KmeshCheckError('object-file', `${what} object ${path} does not exist: build it (npm run build:bpf) or give the right path to ${option}`);
  try {
    return programNames(loadElf(path));
  } catch (e) {
    if (e instanceof ElfError) throw new KmeshCheckError('object-file', `${e.message} (the ${what} object given to ${option})`);
    throw e;
  }
}

/**
 * The maps an object defines, as its BTF says; none when this reader cannot link the object (the
 * phase's own loader then says what is wrong, or loads it).
 */
function mapsOf(path: string): readonly MapDef[] {
  try {
    return linkObject(path).maps;
  } catch {
    return [];
  }
}

const missingText = (what: string, option: string, name: string, where: string, have: readonly string[]) =>
  `${what}: no program '${name}' in ${where} (programs there: ${have.join(', ') || 'none'}): give ${option} the object that holds it`;

/** Throws a one-line error (object-file, object-content, abi-mismatch) for the first named object that cannot serve its role. */
export function preflightSectionObjects(o: { readonly report?: Readonly<Record<keyof typeof REPORT_PROGRAMS, string>>; readonly accel?: { readonly ops: string; readonly redirect: string } }): void {
  if (o.report) {
    for (const role of Object.keys(REPORT_PROGRAMS) as Array<keyof typeof REPORT_PROGRAMS>) {
      const path = o.report[role];
      const have = programsOf('report', '--report-objects', path);
      const name = REPORT_PROGRAMS[role].find((p) => !have.includes(p));
      if (name !== undefined) throw new KmeshCheckError('object-content', missingText('connection reports', '--report-objects', name, `the ${role} object ${path}`, have));
      for (const m of mapsOf(path)) checkReportMap(`map ${m.name} in ${basename(path)}`, m.name, m);
    }
  }
  if (o.accel) {
    // One object may hold both programs, or each its own.
    const paths = [...new Set([o.accel.ops, o.accel.redirect])];
    const have = paths.flatMap((p) => programsOf('acceleration', '--accel-objects', p));
    for (const name of [ACCEL_PROGRAMS.ops, ACCEL_PROGRAMS.redirect]) {
      if (!have.includes(name)) throw new KmeshCheckError('object-content', missingText('acceleration', '--accel-objects', name, paths.map((p) => basename(p)).join(' or '), have));
    }
    const accelMap = (n: string): n is AccelMapName => ACCEL_MAPS.some((m) => m.name === n);
    for (const p of paths) for (const m of mapsOf(p)) if (accelMap(m.name)) checkAccelMapShape(`map ${m.name} in ${basename(p)}`, m.name, m);
  }
}
