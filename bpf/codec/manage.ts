// km_manage as a control plane writes it: the entries that enrol a namespace without control
// connects (Case.enrolmentWrite), the same keys the programs write at a control connect.

import type { Environment } from '../../model/environment.js';
import { enrolledLocalKeys } from '../../model/environment.js';
import { encodeManagerKeyAddr, encodeManagerKeyCookie, writeU32 } from './structs.js';

/** The key-value pairs enrolling the namespace of cookie `cookie` and its enrolled locals, each with `value` (a u32). */
export function enrolmentEntries(cookie: bigint, env: Environment, value: number): [Uint8Array, Uint8Array][] {
  const v = new Uint8Array(4);
  writeU32(v, 0, value);
  return [[encodeManagerKeyCookie(cookie), v], ...enrolledLocalKeys(env).map((ip): [Uint8Array, Uint8Array] => [encodeManagerKeyAddr(ip), v.slice()])];
}
