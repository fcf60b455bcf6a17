// errno numbers to names (e.g. 111 -> ECONNREFUSED) and back, without loading libc: the parent
// decodes the worker's errno numbers, and the VM reports the kernel's errors by name.

import { constants } from 'node:os';

const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);
ERRNO_NAMES.set(524, 'ENOTSUPP');

export function errnoName(n: number): string {
  return ERRNO_NAMES.get(Math.abs(n)) ?? `errno ${Math.abs(n)}`;
}

const ERRNO_NUMBERS = new Map<string, number>([...ERRNO_NAMES].map(([n, name]) => [name, n]));

/** The errno number of a name errnoName gives (e.g. ECONNREFUSED -> 111): the VM reports names. */
export function errnoNumber(name: string): number {
  const n = ERRNO_NUMBERS.get(name);
  if (n === undefined) throw new Error(`unknown errno name ${name}`);
  return n;
}
