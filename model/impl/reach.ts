// Canonical destination text. model/address interns it per text (the generators reuse few
// addresses); the kernel's answers per connect, route, listener and local address, come from
// environment.kernelConnect, which memoises per Environment.

import { canonicalSockText } from '../address.js';
import type { Family } from '../domain.js';

/** Canonical socket-address text (throws AddressError like canonicalSockText). */
export function canonicalDest(family: Family, text: string): string {
  return canonicalSockText(family, text);
}
