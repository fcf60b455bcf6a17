// km_manage as a control plane writes it: the entries that enrol a namespace without control
// connects (Case.enrolmentWrite), the same keys the programs write at a control connect, or one
// kind of them alone (Case.enrolmentKeys).

import type { ManageKeys } from '../../model/domain.js';
import type { Environment } from '../../model/environment.js';
import { enrolledLocalKeys } from '../../model/environment.js';
import { encodeManagerKeyAddr, encodeManagerKeyCookie, writeU32 } from './structs.js';

/**
 * The key-value pairs enrolling the namespace of cookie `cookie` and its enrolled locals (or, as
 * `keys` says, one of the two kinds), each with `value` (a u32).
 */
export function enrolmentEntries(cookie: bigint, env: Environment, written: { readonly value: number; readonly keys: ManageKeys | 'both' }): [Uint8Array, Uint8Array][] {
  const v = new Uint8Array(4);
  writeU32(v, 0, written.value);
  const netns: [Uint8Array, Uint8Array][] = written.keys === 'locals' ? [] : [[encodeManagerKeyCookie(cookie), v]];
  const locals = written.keys === 'cookie' ? [] : enrolledLocalKeys(env).map((ip): [Uint8Array, Uint8Array] => [encodeManagerKeyAddr(ip), v.slice()]);
  return [...netns, ...locals];
}
