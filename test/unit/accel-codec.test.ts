// Pins the byte layouts of section 8 (sizes and offsets typed in from kmesh-dataplane.md, not
// taken from bpf/codec/accel.ts) and checks that the codecs put bytes there and round-trip.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACCEL_MAPS,
  SOCK_KEY_OFFSETS,
  SOCK_KEY_SIZE,
  SOCK_PARAM_OFFSETS,
  SOCK_PARAM_SIZE,
  decodeSockKey,
  decodeSockParam,
  encodeSockKey,
  encodeSockParam,
  sockKeyPortHighBits,
} from '../../bpf/codec/accel.js';
import { EMPTY_FILTER } from '../../model/accel/domain.js';
import { filterArb } from '../../generators/accel.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('acceleration ABI (section 8)', () => {
  it('sizes and offsets are those of the document', () => {
    expect(SOCK_KEY_SIZE).toBe(24);
    expect(SOCK_KEY_OFFSETS).toEqual({ sip4: 0, dip4: 4, sport: 8, dport: 12, netnsCookie: 16 });
    expect(SOCK_PARAM_SIZE).toBe(490);
    expect(SOCK_PARAM_OFFSETS).toEqual({ acceptCidrs: 0, returnCidrs: 81, acceptPorts: 162, returnPorts: 243, dump: 324 });
    expect(SOCK_PARAM_OFFSETS.dump + 166).toBe(SOCK_PARAM_SIZE);
    expect(ACCEL_MAPS.map((m) => [m.name, m.type, m.keySize, m.valueSize, m.maxEntries])).toEqual([
      ['sock_ops_map', 18, 24, 4, 196608],
      ['sock_proxy_map', 1, 24, 24, 196608],
      ['sock_param_map', 2, 4, 490, 1],
    ]);
  });

  it('sock_key: addresses in network order, ports network order in the low 16 bits, cookie little-endian u64', () => {
    const b = encodeSockKey({ local: '127.0.0.1', remote: '10.1.2.3', localPort: 80, remotePort: 40000, cookie: 0x0102030405060708n });
    expect(hex(b)).toBe('7f000001' + '0a010203' + '00500000' + '9c400000' + '0807060504030201');
    expect(sockKeyPortHighBits(b)).toBe(0);
    expect(decodeSockKey(b)).toEqual({ local: '127.0.0.1', remote: '10.1.2.3', localPort: 80, remotePort: 40000, cookie: 0x0102030405060708n });
  });

  it('sock_key rejects IPv6 and wrong lengths with a one-line codec error', () => {
    expect(() => encodeSockKey({ local: '::1', remote: '127.0.0.1', localPort: 1, remotePort: 1, cookie: 0n })).toThrow(/IPv4 only/);
    expect(() => decodeSockKey(new Uint8Array(23))).toThrow(/24 bytes/);
  });

  it('sock_param: each list is a u8 count then (u32, u32) pairs in host order', () => {
    const b = encodeSockParam({
      acceptCidrs: [{ ip: '127.0.0.0', mask: 0xff000000 }],
      returnCidrs: [
        { ip: '10.0.0.1', mask: 0xffffffff },
        { ip: '0.0.0.0', mask: 0 },
      ],
      acceptPorts: [{ begin: 8080, end: 8081 }],
      returnPorts: [],
    });
    expect(b.length).toBe(490);
    expect(hex(b.subarray(0, 9))).toBe('01' + '0000007f' + '000000ff');
    expect(b[81]).toBe(2);
    expect(hex(b.subarray(82, 98))).toBe('0100000a' + 'ffffffff' + '00000000' + '00000000');
    expect(hex(b.subarray(162, 171))).toBe('01' + '901f0000' + '911f0000');
    expect(b[243]).toBe(0);
    expect(b.subarray(324).every((x) => x === 0)).toBe(true);
    // Past each count, stale pairs that match everything: a program must read only `count` of them.
    expect(hex(b.subarray(9, 17))).toBe('00000000' + '00000000');
    expect(hex(b.subarray(171, 179))).toBe('00000000' + 'ffff0000');
    const empty = encodeSockParam(EMPTY_FILTER);
    expect([0, 81, 162, 243].map((o) => empty[o])).toEqual([0, 0, 0, 0]);
    expect(hex(empty.subarray(244 + 9 * 8, 324))).toBe('00000000' + 'ffff0000');
    expect(decodeSockParam(empty)).toEqual(EMPTY_FILTER);
  });

  it('sock_param: more than 10 entries is refused; a raw count above 10 decodes as 10', () => {
    const many = Array.from({ length: 11 }, () => ({ begin: 1, end: 2 }));
    expect(() => encodeSockParam({ ...EMPTY_FILTER, acceptPorts: many })).toThrow(/at most 10/);
    const b = encodeSockParam({ ...EMPTY_FILTER, returnPorts: many.slice(0, 10) });
    b[243] = 200;
    expect(decodeSockParam(b).returnPorts).toHaveLength(10);
    expect(decodeSockParam(b).countBytes).toEqual({ returnPorts: 200 });
    // A full list's count byte of its own is written as given; a list not full may have none.
    const full = { ...EMPTY_FILTER, returnPorts: many.slice(0, 10), countBytes: { returnPorts: 255 } };
    expect(encodeSockParam(full)[243]).toBe(255);
    expect(decodeSockParam(encodeSockParam(full))).toEqual(full);
    expect(() => encodeSockParam({ ...full, returnPorts: many.slice(0, 9) })).toThrow(/only for a full list of 10, which has 9/);
    expect(() => encodeSockParam({ ...full, countBytes: { returnPorts: 10 } })).toThrow(/11\.\.255/);
  });

  it('sock_param round-trips every generated filter', () => {
    fc.assert(
      fc.property(filterArb, (f) => {
        expect(decodeSockParam(encodeSockParam(f))).toEqual(f);
      }),
      { seed: 15, numRuns: 300 },
    );
  });
});
