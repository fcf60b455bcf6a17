// Output paths (--json, --junit, --coverage-out) are checked before a run: a typo in a report path
// should cost a second, not a whole run whose results are then lost.

import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KmeshCheckError } from '../shared/errors.js';

/** Throws a one-line error when `file` could not be written (missing folder, no permission, a directory). */
export function assertWritable(option: string, file: string): void {
  const path = resolve(file);
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new KmeshCheckError('unsupported', `${option} ${file}: is a directory; give a file name`);
    try {
      accessSync(path, constants.W_OK);
    } catch {
      throw new KmeshCheckError('unsupported', `${option} ${file}: the file is not writable; choose another path or fix its permissions`);
    }
    return;
  }
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new KmeshCheckError('unsupported', `${option} ${file}: folder ${dir} does not exist; create it first`);
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new KmeshCheckError('unsupported', `${option} ${file}: folder ${dir} is not writable; choose another path`);
  }
}
