// The stream a listener received, as the checker sees it: an optional original-destination
// prefix (the TLV) and whether the rest is exactly the payload the socket took, in order.

import type { StreamView } from '../../model/domain.js';
import { toHex } from '../codec/state.js';
import { parseTlv } from '../codec/tlv.js';

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Bytes a complete stream must hold: the payload, plus the prefix once one has started (a TLV of
 * type 0x01 whose length byte says 6, 16 bytes in all, or 18, 28 bytes in all).
 */
export function wantedLength(got: Uint8Array, expectedLength: number): number {
  if (got.length >= 5 && got[0] === 0x01 && got[1] === 0 && got[2] === 0 && got[3] === 0) {
    if (got[4] === 6) return expectedLength + 16;
    if (got[4] === 18) return expectedLength + 28;
  }
  return expectedLength;
}

export function streamView(got: Uint8Array, expected: Uint8Array): StreamView {
  const parsed = parseTlv(got);
  const rest = parsed ? got.subarray(parsed.size) : got;
  return { tlv: parsed ? parsed.tlv : null, payloadIntact: sameBytes(rest, expected), hex: toHex(got) };
}
