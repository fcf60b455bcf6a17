// Pins the connection-report records of section 7 (offsets typed in from kmesh-dataplane.md):
// tcp_probe_info (128 B) and ringbuf_msg_type (40 B), ports host order, addresses network order;
// unwritten bytes are visible to the decoder; and the VM's ring buffer hands out poisoned (or
// earlier) memory, as the kernel's does, so that a byte a program leaves unwritten shows.

import { describe, expect, it } from 'vitest';
import {
  AUTH_REQUEST_SIZE,
  TCP_PROBE_INFO_SIZE,
  TCP_PROBE_OFFSETS,
  decodeAuthRequest,
  decodeTcpProbeInfo,
  encodeAuthKey,
  encodeAuthRequest,
  encodeTcpProbeInfo,
  type TcpProbeFields,
} from '../../bpf/codec/report.js';
import { MapType, type MapDef } from '../../bpf/vm/link.js';
import { RINGBUF_POISON, RingBufMap } from '../../bpf/vm/maps.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const FIELDS: TcpProbeFields = {
  tuple: { family: 'inet', client: { addr: '10.0.0.1', port: 40000 }, server: { addr: '10.0.0.2', port: 8080 } },
  original: { addr: '10.96.0.1', port: 80 },
  sentBytes: 5,
  receivedBytes: 7,
  connSuccess: 1,
  direction: 2,
  state: 1,
  durationNs: 3n,
  startNs: 100n,
  lastReportNs: 103n,
  protocol: 6,
  srttUs: 11,
  rttMin: 12,
  totalRetrans: 13,
  lostOut: 14,
  padding: 0,
};

describe('tcp_probe_info (section 7)', () => {
  it('offsets are those of the document', () => {
    expect(TCP_PROBE_INFO_SIZE).toBe(128);
    expect(TCP_PROBE_OFFSETS).toEqual({
      type: 0,
      tuple: 4,
      original: 40,
      sentBytes: 60,
      receivedBytes: 64,
      connSuccess: 68,
      direction: 72,
      state: 76,
      durationNs: 80,
      startNs: 88,
      lastReportNs: 96,
      protocol: 104,
      srttUs: 108,
      rttMin: 112,
      totalRetrans: 116,
      lostOut: 120,
      padding: 124,
    });
    expect(AUTH_REQUEST_SIZE).toBe(40);
  });

  it('IPv4 view: saddr 4, daddr 8, sport 12, dport 14 (host order), original addr 40 port 44', () => {
    const b = encodeTcpProbeInfo(FIELDS);
    expect(hex(b.subarray(0, 4))).toBe('00000000');
    expect(hex(b.subarray(4, 16))).toBe('0a000001' + '0a000002' + '409c' + '901f');
    expect(b.subarray(16, 40).every((x) => x === 0)).toBe(true);
    expect(hex(b.subarray(40, 46))).toBe('0a600001' + '5000');
    expect(hex(b.subarray(104, 108))).toBe('06000000');
    expect(decodeTcpProbeInfo(b)).toEqual({ ...FIELDS, type: 0, unusedNonZero: 0 });
  });

  it('IPv6 view: saddr 4, daddr 20, sport 36, dport 38, original addr 40 port 56', () => {
    const tuple = { family: 'inet6' as const, client: { addr: 'fd00::1', port: 1 }, server: { addr: 'fd00::2', port: 2 } };
    const b = encodeTcpProbeInfo({ ...FIELDS, tuple, original: { addr: 'fd00::9', port: 0x1234 } });
    expect(hex(b.subarray(0, 4))).toBe('01000000');
    expect(b[4]).toBe(0xfd);
    expect(b[19]).toBe(1);
    expect(b[35]).toBe(2);
    expect(hex(b.subarray(36, 40))).toBe('0100' + '0200');
    expect(b[55]).toBe(9);
    expect(hex(b.subarray(56, 58))).toBe('3412');
    expect(decodeTcpProbeInfo(b).tuple).toEqual(tuple);
  });

  it('unwritten bytes show: padding, bytes beyond the view, an unknown type', () => {
    const b = encodeTcpProbeInfo(FIELDS);
    b[125] = RINGBUF_POISON;
    b[20] = RINGBUF_POISON;
    b[50] = RINGBUF_POISON;
    const r = decodeTcpProbeInfo(b);
    expect(r.padding).not.toBe(0);
    expect(r.unusedNonZero).toBe(2);
    // Where they are: one in the tuple, one in the original destination, beyond the IPv4 view.
    expect(r.unusedAt).toEqual([20, 50]);
    b[0] = 7;
    expect(decodeTcpProbeInfo(b).tuple).toBeNull();
  });

  it('no recorded original destination decodes as null', () => {
    expect(decodeTcpProbeInfo(encodeTcpProbeInfo({ ...FIELDS, original: null })).original).toBeNull();
  });
});

describe('ringbuf_msg_type and the km_auth_res key', () => {
  it('type, then the tuple client to server, ports host order, unused bytes zero', () => {
    const t = { family: 'inet' as const, client: { addr: '10.0.0.1', port: 40000 }, server: { addr: '10.0.0.2', port: 8080 } };
    const b = encodeAuthRequest(t);
    expect(hex(b.subarray(0, 16))).toBe('00000000' + '0a000001' + '0a000002' + '409c901f');
    expect(decodeAuthRequest(b)).toEqual({ type: 0, tuple: t, unusedNonZero: 0 });
    expect(hex(encodeAuthKey(t))).toBe(hex(b.subarray(4)));
    b[39] = 1;
    expect(decodeAuthRequest(b).unusedNonZero).toBe(1);
  });
});

describe('VM ring buffer memory', () => {
  const def: MapDef = { index: 0, name: 'rb', type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: 64, flags: 0, internal: null };
  it('a fresh record holds the poison; a later one at the same place holds an earlier record; clear() restores the poison', () => {
    const rb = new RingBufMap(def);
    const first = rb.reserve(8)!;
    expect([...first.bytes]).toEqual(Array(8).fill(RINGBUF_POISON));
    first.bytes.fill(1);
    rb.commit(first, false);
    rb.drain();
    // 64 bytes of ring: records of 8 (+ 8 header) wrap after four.
    for (let i = 0; i < 3; i++) {
      const r = rb.reserve(8)!;
      r.bytes.fill(2);
      rb.commit(r, false);
      rb.drain();
    }
    expect([...rb.reserve(8)!.bytes]).toEqual(Array(8).fill(1));
    rb.clear();
    expect([...rb.reserve(8)!.bytes]).toEqual(Array(8).fill(RINGBUF_POISON));
  });
});

describe('report docs', () => {
  it('the generated spec has section 8 with every report invariant and the readings', async () => {
    const { renderSpec } = await import('../../docs/gen/index.js');
    const { REPORT_SECTION } = await import('../../docs/gen/report-docs.js');
    const { reportInvariants } = await import('../../model/report/invariants.js');
    const spec = renderSpec();
    const section = spec.slice(spec.indexOf(`## ${REPORT_SECTION}`));
    expect(spec).toContain(`## ${REPORT_SECTION}`);
    for (const inv of reportInvariants) expect(section).toContain(`### ${inv.name}\n\n> ${inv.statement}`);
    for (const id of ['R1', 'R2', 'R3', 'R4', 'R5']) expect(section).toContain(`- ${id}. `);
  });
});
