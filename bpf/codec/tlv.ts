// The original-destination prefix that sendmsg_prog pushes in front of a waypoint-bound socket's
// first message (kmesh-dataplane.md section 4): type 01, big-endian u32 length, address, port,
// then the end marker fe 00 00 00 00. 16 bytes on AF_INET sockets, 28 on AF_INET6.

import { formatIPv4, formatIPv6, parseAddress } from '../../model/address.js';
import type { Family, SockAddr, Tlv } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { TLV } from './abi.js';

export function buildTlv(form: Family, original: SockAddr): Uint8Array {
  const shape = TLV[form];
  const addr = parseAddress(original.addr);
  if (addr.length !== shape.addrBytes) {
    throw new KmeshCheckError('codec', `a ${form} TLV needs a ${shape.addrBytes}-byte address, got ${original.addr}`);
  }
  if (!Number.isInteger(original.port) || original.port < 0 || original.port > 0xffff) {
    throw new KmeshCheckError('codec', `TLV port must be 0..65535, got ${original.port}`);
  }
  const b = new Uint8Array(shape.size);
  b[0] = TLV.typeOrigDst;
  b[1] = 0;
  b[2] = 0;
  b[3] = 0;
  b[4] = shape.length;
  b.set(addr, 5);
  const p = 5 + shape.addrBytes;
  b[p] = original.port >>> 8;
  b[p + 1] = original.port & 0xff;
  b[p + 2] = TLV.typeEnd; // followed by four zero bytes (its length)
  return b;
}

/**
 * Parses a prefix at the start of `bytes`. Returns the TLV and its size, or null when the bytes do
 * not start with a complete, well-formed prefix of either form.
 */
export function parseTlv(bytes: Uint8Array): { tlv: Tlv; size: number } | null {
  if (bytes.length < 5 || bytes[0] !== TLV.typeOrigDst || bytes[1] !== 0 || bytes[2] !== 0 || bytes[3] !== 0) return null;
  const form: Family | null = bytes[4] === TLV.inet.length ? 'inet' : bytes[4] === TLV.inet6.length ? 'inet6' : null;
  if (form === null) return null;
  const shape = TLV[form];
  if (bytes.length < shape.size) return null;
  const p = 5 + shape.addrBytes;
  if (bytes[p + 2] !== TLV.typeEnd || bytes[p + 3] !== 0 || bytes[p + 4] !== 0 || bytes[p + 5] !== 0 || bytes[p + 6] !== 0) {
    return null;
  }
  const addr = form === 'inet' ? formatIPv4(bytes, 5) : formatIPv6(bytes, 5);
  const port = ((bytes[p] ?? 0) << 8) | (bytes[p + 1] ?? 0);
  return { tlv: { form, original: { addr, port } }, size: shape.size };
}
