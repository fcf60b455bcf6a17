// Address text is interned (parsed once per text, model/address.ts): these tests pin that every
// class of address still parses, formats and classifies exactly, that interned bytes are never
// handed out to be mutated, and that bad text keeps failing with the same one-line error.

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { AddressError, canonicalIpAddr, canonicalSockText, foldedIpAddr, formatIPv6, ipAddrBytes, ipAddrFromBytes, isAllZero, isIPv4Form, parseAddress, v4MappedInner } from '../../model/address.js';

const bytes = (...xs: number[]) => Uint8Array.from(xs);
const v6 = (words: number[]) => Uint8Array.from(words.flatMap((w) => [w >> 8, w & 0xff]));

describe('every class of address round-trips', () => {
  // [text, its bytes, canonical ip_addr, v4-mapped inner, all zero]
  const classes: [string, Uint8Array, string, string | null, boolean][] = [
    ['::', v6([0, 0, 0, 0, 0, 0, 0, 0]), '0.0.0.0', null, true],
    ['::1', v6([0, 0, 0, 0, 0, 0, 0, 1]), '::1', null, false],
    ['::2', v6([0, 0, 0, 0, 0, 0, 0, 2]), '::2', null, false],
    ['::a00:1', v6([0, 0, 0, 0, 0, 0, 0xa00, 1]), '::a00:1', null, false],
    ['a00:1::', v6([0xa00, 1, 0, 0, 0, 0, 0, 0]), '10.0.0.1', null, false],
    ['::ffff:10.0.0.1', v6([0, 0, 0, 0, 0, 0xffff, 0xa00, 1]), '::ffff:10.0.0.1', '10.0.0.1', false],
    ['::ffff:0.0.0.0', v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), '::ffff:0.0.0.0', '0.0.0.0', false],
    ['fd00::1', v6([0xfd00, 0, 0, 0, 0, 0, 0, 1]), 'fd00::1', null, false],
    ['fd00:ffff::1', v6([0xfd00, 0xffff, 0, 0, 0, 0, 0, 1]), 'fd00:ffff::1', null, false],
    ['0.0.0.0', bytes(0, 0, 0, 0), '0.0.0.0', null, true],
    ['0.0.0.2', bytes(0, 0, 0, 2), '0.0.0.2', null, false],
    ['127.0.0.1', bytes(127, 0, 0, 1), '127.0.0.1', null, false],
    ['127.255.255.254', bytes(127, 255, 255, 254), '127.255.255.254', null, false],
    ['10.255.0.1', bytes(10, 255, 0, 1), '10.255.0.1', null, false],
  ];

  it.each(classes)('%s', (text, b, ip, inner, zero) => {
    expect(parseAddress(text)).toEqual(b);
    expect(canonicalIpAddr(text)).toBe(ip);
    expect(isIPv4Form(ip)).toBe(!ip.includes(':'));
    expect(isAllZero(text)).toBe(zero);
    expect(v4MappedInner(text)).toBe(inner);
    expect(ipAddrFromBytes(ipAddrBytes(text))).toBe(ip);
    const family = b.length === 4 ? 'inet' : 'inet6';
    expect(canonicalSockText(family, text)).toBe(text);
    // Asked twice (the second answer comes from the memo): the same.
    expect(canonicalIpAddr(text)).toBe(ip);
    expect(canonicalSockText(family, text)).toBe(text);
  });

  it('writes one canonical spelling for the many an address has', () => {
    expect(canonicalSockText('inet6', '0:0:0:0:0:0:0:1')).toBe('::1');
    expect(canonicalSockText('inet6', 'FD00:0::0:1')).toBe('fd00::1');
    expect(canonicalSockText('inet6', '::ffff:a00:1')).toBe('::ffff:10.0.0.1');
    expect(canonicalSockText('inet6', '1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(canonicalSockText('inet6', '1:0:0:2:0:0:3:4')).toBe('1::2:0:0:3:4');
    expect(canonicalSockText('inet6', '1:2:3:4:5:6:0:8')).toBe('1:2:3:4:5:6:0:8');
    expect(canonicalIpAddr('::a00:1')).toBe('::a00:1');
  });
});

describe('folded keys (km_frontend and km_manage)', () => {
  it.each([
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::ffff:0.0.0.0', '0.0.0.0'],
    ['a00:1::', '10.0.0.1'],
    ['::a00:1', '::a00:1'],
    ['fd00::1', 'fd00::1'],
    ['::', '0.0.0.0'],
    ['::1', '::1'],
    ['127.0.0.1', '127.0.0.1'],
  ])('%s folds to %s', (text, key) => {
    expect(foldedIpAddr(text)).toBe(key);
    expect(foldedIpAddr(text)).toBe(key);
  });
});

describe('interning hands out no shared state', () => {
  it('parseAddress and ipAddrBytes return arrays the caller may change', () => {
    const a = parseAddress('10.0.0.1');
    a[0] = 99;
    expect(parseAddress('10.0.0.1')).toEqual(bytes(10, 0, 0, 1));
    const b = ipAddrBytes('fd00::1');
    b.fill(0);
    expect(ipAddrBytes('fd00::1')[0]).toBe(0xfd);
    expect(canonicalIpAddr('fd00::1')).toBe('fd00::1');
  });

  it('bad text fails every time with the same one-line error', () => {
    for (let i = 0; i < 2; i++) {
      expect(() => parseAddress('10.0.0')).toThrow(new AddressError('not an IP address: "10.0.0"'));
      expect(() => canonicalSockText('inet', 'fd00::1')).toThrow(new AddressError('an AF_INET socket address must be IPv4: fd00::1'));
      expect(() => canonicalSockText('inet6', '10.0.0.1')).toThrow(new AddressError('an AF_INET6 socket address must be IPv6 text: 10.0.0.1'));
      expect(() => canonicalSockText('inet6', '1::2::3')).toThrow(AddressError);
      expect(() => isAllZero('nope')).toThrow(AddressError);
    }
  });
});

describe('formatIPv6 is RFC 5952 text', () => {
  // Words drawn mostly zero, so that runs of zeros of every length and position occur.
  const word = fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 });
  test.prop([fc.array(word, { minLength: 8, maxLength: 8 })], { numRuns: 2000 })('agrees with the URL serializer and parses back', (words) => {
    const b = v6(words);
    const text = formatIPv6(b);
    expect(parseAddress(text)).toEqual(b);
    const mapped = words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff;
    // WHATWG URL hosts are RFC 5952 text too, except that they write v4-mapped addresses in hex.
    if (!mapped) expect(text).toBe(new URL(`http://[${text}]/`).hostname.slice(1, -1));
    else expect(text).toBe(`::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`);
  });

  it('reads at an offset', () => {
    const buf = new Uint8Array(20);
    buf.set(v6([0xfd00, 0, 0, 0, 0, 0, 0, 1]), 4);
    expect(formatIPv6(buf, 4)).toBe('fd00::1');
  });
});
