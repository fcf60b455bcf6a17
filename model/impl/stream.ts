// What a listener receives on a connection (section 4; interpretation.md, item 11): on the first
// message of a socket in km_socket whose storage says via_waypoint and not has_encoded, the
// original-destination prefix, then every payload in order. Bytes as lowercase hex.

import { parseAddress } from '../address.js';
import { payloadHexFor, type Family, type SockAddr, type SocketId, type StorageView, type StreamView } from '../domain.js';

const TLV_TYPE_ORIG_DST = 0x01;
const TLV_TYPE_END = 0xfe;

function hex(bytes: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += ((bytes[i] ?? 0) | 0x100).toString(16).slice(1);
  return out;
}

/** The prefix bytes: 01 | u32 length | address (4 or 16 B) | port (2 B) | fe 00 00 00 00. */
export function tlvBytes(family: Family, original: SockAddr): Uint8Array {
  const addr = parseAddress(original.addr);
  const addrLen = family === 'inet' ? 4 : 16;
  if (addr.length !== addrLen) throw new Error(`model: a ${family} TLV needs a ${addrLen}-byte address, got ${original.addr}`);
  const b = new Uint8Array(1 + 4 + addrLen + 2 + 5);
  b[0] = TLV_TYPE_ORIG_DST;
  b[4] = addrLen + 2;
  b.set(addr, 5);
  b[5 + addrLen] = original.port >>> 8;
  b[6 + addrLen] = original.port & 0xff;
  b[7 + addrLen] = TLV_TYPE_END;
  return b;
}

// Not frozen: a frozen object has a shape of its own, and every other stream is a plain literal.
export const EMPTY_STREAM: StreamView = { tlv: null, payloadIntact: true, hex: '' };

export interface SendResult {
  readonly stream: StreamView;
  readonly storage: StorageView | null;
  readonly sent: number;
}

/** `messages` more messages on a connected TCP socket, starting at sequence number `sent`. */
export function sendMessages(sock: SocketId, family: Family, inSockhash: boolean, storage: StorageView | null, stream: StreamView, sent: number, messages: number): SendResult {
  let hexOut = stream.hex;
  let tlv = stream.tlv;
  let st = storage;
  for (let k = 0; k < messages; k++) {
    // sendmsg_prog runs only for km_socket members.
    if (inSockhash && st && st.viaWaypoint && !st.hasEncoded) {
      st = { viaWaypoint: st.viaWaypoint, hasSetIp: st.hasSetIp, hasEncoded: true, original: st.original };
      const original = st.original ?? { addr: family === 'inet' ? '0.0.0.0' : '::', port: 0 };
      hexOut += hex(tlvBytes(family, original));
      if (tlv === null) tlv = { form: family, original };
    }
    hexOut += payloadHexFor(sock, sent + k);
  }
  return { stream: { tlv, payloadIntact: true, hex: hexOut }, storage: st, sent: sent + messages };
}
