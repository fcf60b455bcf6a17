// Canonical destination text, memoised: the generators reuse few addresses and parsing text costs
// microseconds. (The kernel's answers per connect, route, listener and local address, come from
// environment.kernelConnect, which memoises per Environment.)

import { canonicalSockText } from '../address.js';
import type { Family } from '../domain.js';

const sockTexts = new Map<string, string>();

/** Canonical socket-address text (throws AddressError like canonicalSockText), memoised. */
export function canonicalDest(family: Family, text: string): string {
  const key = `${family}|${text}`;
  let t = sockTexts.get(key);
  if (t === undefined) {
    t = canonicalSockText(family, text);
    if (sockTexts.size > 50_000) sockTexts.clear();
    sockTexts.set(key, t);
  }
  return t;
}
