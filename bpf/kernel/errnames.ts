// errno numbers to names (e.g. 111 -> ECONNREFUSED), without loading libc: the parent decodes
// the worker's errno numbers too.

import { constants } from 'node:os';

const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);
ERRNO_NAMES.set(524, 'ENOTSUPP');

export function errnoName(n: number): string {
  return ERRNO_NAMES.get(Math.abs(n)) ?? `errno ${Math.abs(n)}`;
}
