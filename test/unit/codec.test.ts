// Pins the byte ABI of kmesh-dataplane.md section 2 (sizes and offsets typed in from its tables,
// not from abi.ts) and checks that every codec puts bytes where the document says and round-trips.

import { describe, expect, it } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import {
  MAPS,
  STRUCTS,
  offsetOf,
  buildTlv,
  parseTlv,
  decodeBackend,
  decodeEndpoint,
  decodeFrontend,
  decodeManagerKey,
  decodeService,
  decodeServiceValue,
  decodeSockStorage,
  decodeSockTuple,
  decodeState,
  diffSize,
  diffStates,
  encodeBackendKey,
  encodeBackendValue,
  encodeEndpointKey,
  encodeEndpointValue,
  encodeFrontendKey,
  encodeFrontendValue,
  encodeManagerKeyAddr,
  encodeManagerKeyCookie,
  encodeServiceKey,
  encodeServiceValue,
  encodeSockStorage,
  encodeSockTuple,
  encodeState,
  fromHex,
  portFromU32,
  portToU32,
  storageView,
  toHex,
  EMPTY_ENCODED,
} from '../../bpf/codec/index.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { Backend, MapState, Service } from '../../model/domain.js';
import { canonicalIpAddr } from '../../model/address.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('ABI table (document section 2)', () => {
  it('lists every map with the documented type, key size, value size and max_entries', () => {
    const doc: Array<[string, string, number, number, number]> = [
      ['km_frontend', 'hash', 16, 4, 105000],
      ['km_service', 'hash', 4, 132, 5000],
      ['km_endpoint', 'hash', 12, 4, 105000],
      ['km_backend', 'hash', 4, 80, 100000],
      ['km_manage', 'hash', 16, 4, 8192],
      ['km_sockstorage', 'sk_storage', 4, 64, 0],
      ['km_cgr_tailcall', 'prog_array', 4, 4, 8],
      ['km_cgr_tail6', 'prog_array', 4, 4, 8],
      ['km_socket', 'sockhash', 36, 4, 8192],
    ];
    expect(MAPS.map((m) => [m.name, m.type, m.keySize, m.valueSize, m.maxEntries])).toEqual(doc);
    for (const m of MAPS) {
      const k = (STRUCTS as Record<string, { size: number }>)[m.key];
      const v = (STRUCTS as Record<string, { size: number }>)[m.value];
      if (k) expect(k.size, `${m.name} key`).toBe(m.keySize);
      if (v) expect(v.size, `${m.name} value`).toBe(m.valueSize);
    }
  });

  it('has the documented struct sizes and field offsets', () => {
    const sizes: Record<string, number> = {
      ip_addr: 16,
      frontend_key: 16,
      frontend_value: 4,
      service_key: 4,
      service_value: 132,
      endpoint_key: 12,
      endpoint_value: 4,
      backend_key: 4,
      backend_value: 80,
      manager_key: 16,
      sock_storage_data: 64,
      bpf_sock_tuple: 36,
    };
    for (const [name, size] of Object.entries(sizes)) expect((STRUCTS as Record<string, { size: number }>)[name]?.size, name).toBe(size);
    const offsets: Array<[keyof typeof STRUCTS, string, number]> = [
      ['service_value', 'prio_endpoint_count', 0],
      ['service_value', 'lb_policy', 28],
      ['service_value', 'service_port', 32],
      ['service_value', 'target_port', 72],
      ['service_value', 'wp_addr', 112],
      ['service_value', 'waypoint_port', 128],
      ['endpoint_key', 'service_id', 0],
      ['endpoint_key', 'prio', 4],
      ['endpoint_key', 'backend_index', 8],
      ['backend_value', 'addr', 0],
      ['backend_value', 'service_count', 16],
      ['backend_value', 'service', 20],
      ['backend_value', 'wp_addr', 60],
      ['backend_value', 'waypoint_port', 76],
      ['manager_key', 'netns_cookie', 0],
      ['manager_key', 'addr', 0],
      ['sock_storage_data', 'connect_ns', 0],
      ['sock_storage_data', 'last_report_ns', 8],
      ['sock_storage_data', 'direction', 16],
      ['sock_storage_data', 'connect_success', 17],
      ['sock_storage_data', 'via_waypoint', 18],
      ['sock_storage_data', 'has_encoded', 19],
      ['sock_storage_data', 'has_set_ip', 20],
      ['sock_storage_data', 'sk_tuple', 24],
      ['bpf_sock_tuple', 'ipv4.daddr', 4],
      ['bpf_sock_tuple', 'ipv4.dport', 10],
      ['bpf_sock_tuple', 'ipv6.daddr', 16],
      ['bpf_sock_tuple', 'ipv6.dport', 34],
    ];
    for (const [s, field, off] of offsets) expect(offsetOf(s, field), `${s}.${field}`).toBe(off);
    expect(() => offsetOf('service_value', 'no_such_field')).toThrow();
  });
});

describe('ports', () => {
  it('stores port 80 as the bytes 00 50 00 00', () => {
    expect(portToU32(80)).toBe(0x5000);
    const s = encodeServiceValue(service({ servicePorts: [80, 0, 0, 0, 0, 0, 0, 0, 0, 0] }));
    expect(hex(s.slice(32, 36))).toBe('00500000');
    expect(portFromU32(0x5000)).toBe(80);
    expect(portFromU32(0xbb01)).toBe(443);
  });
  it('rejects out-of-range ports with a codec error', () => {
    expect(() => portToU32(70000)).toThrow(KmeshCheckError);
    expect(() => encodeServiceValue(service({ servicePorts: [2 ** 32, 0, 0, 0, 0, 0, 0, 0, 0, 0] }))).toThrow(KmeshCheckError);
  });
  it('stores a map port with an upper half after the network-order port: 80+0x1<<16 is 00 50 01 00', () => {
    const s = encodeServiceValue(service({ servicePorts: [80 + 0x10000, 0, 0, 0, 0, 0, 0, 0, 0, 0], waypoint: { addr: '10.0.0.1', port: 0xabcd0000 } }));
    expect(hex(s.slice(32, 36))).toBe('00500100');
    expect(hex(s.slice(128, 132))).toBe('0000cdab');
    const back = decodeServiceValue(7, s);
    expect(back.servicePorts[0]).toBe(80 + 0x10000);
    expect(back.waypoint.port).toBe(0xabcd0000);
  });
});

function service(over: Partial<Service> = {}): Service {
  return {
    id: 7,
    endpointCounts: [0, 0, 0, 0, 0, 0, 0],
    lbPolicy: 0,
    servicePorts: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    targetPorts: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    waypoint: { addr: '0.0.0.0', port: 0 },
    ...over,
  };
}

describe('struct encodings', () => {
  it('frontend key/value: IPv4 in bytes 0..3, bytes 4..15 zero; IPv6 as 16 wire bytes', () => {
    expect(hex(encodeFrontendKey('10.0.0.1'))).toBe('0a000001' + '00'.repeat(12));
    expect(hex(encodeFrontendKey('fd00::1'))).toBe('fd00' + '00'.repeat(13) + '01');
    expect(hex(encodeFrontendValue(0x01020304))).toBe('04030201');
    expect(decodeFrontend(encodeFrontendKey('fd00::1'), encodeFrontendValue(5))).toEqual({ addr: 'fd00::1', upstreamId: 5 });
  });

  it('service value: 132 bytes at the documented offsets', () => {
    const s = service({
      endpointCounts: [1, 2, 3, 4, 5, 6, 7],
      lbPolicy: 2,
      servicePorts: [80, 443, 0, 0, 0, 0, 0, 0, 0, 8080],
      targetPorts: [8080, 8443, 0, 0, 0, 0, 0, 0, 0, 9090],
      waypoint: { addr: '10.9.0.1', port: 15008 },
    });
    const b = encodeServiceValue(s);
    expect(b.length).toBe(132);
    expect(hex(b.slice(0, 4))).toBe('01000000');
    expect(hex(b.slice(24, 28))).toBe('07000000');
    expect(hex(b.slice(28, 32))).toBe('02000000');
    expect(hex(b.slice(36, 40))).toBe('01bb0000'); // 443 network order
    expect(hex(b.slice(68, 72))).toBe('1f900000'); // service_port[9] = 8080
    expect(hex(b.slice(72, 76))).toBe('1f900000');
    expect(hex(b.slice(108, 112))).toBe('23820000'); // target_port[9] = 9090
    expect(hex(b.slice(112, 128))).toBe('0a090001' + '00'.repeat(12));
    expect(hex(b.slice(128, 132))).toBe('3aa00000'); // 15008
    expect(hex(encodeServiceKey(7))).toBe('07000000');
    expect(decodeService(encodeServiceKey(7), b)).toEqual(s);
  });

  it('service value: wrong array lengths are one-line codec errors', () => {
    expect(() => encodeServiceValue(service({ endpointCounts: [1] }))).toThrow(/endpointCounts must have exactly 7 entries, got 1/);
    expect(() => encodeServiceValue(service({ servicePorts: [80] }))).toThrow(KmeshCheckError);
  });

  it('endpoint key/value', () => {
    const k = encodeEndpointKey({ serviceId: 1, prio: 2, index: 3 });
    expect(hex(k)).toBe('010000000200000003000000');
    expect(hex(encodeEndpointValue(258))).toBe('02010000');
    expect(decodeEndpoint(k, encodeEndpointValue(258))).toEqual({ serviceId: 1, prio: 2, index: 3, backendUid: 258 });
  });

  it('backend value: 80 bytes at the documented offsets', () => {
    const be: Backend = { uid: 9, addr: 'fd00::9', services: [1, 2], waypoint: { addr: 'fd00::15', port: 15008 } };
    const b = encodeBackendValue(be);
    expect(b.length).toBe(80);
    expect(hex(b.slice(0, 16))).toBe('fd00' + '00'.repeat(13) + '09');
    expect(hex(b.slice(16, 20))).toBe('02000000');
    expect(hex(b.slice(20, 28))).toBe('0100000002000000');
    expect(hex(b.slice(28, 60))).toBe('00'.repeat(32));
    expect(hex(b.slice(60, 76))).toBe('fd00' + '00'.repeat(13) + '15');
    expect(hex(b.slice(76, 80))).toBe('3aa00000');
    expect(decodeBackend(encodeBackendKey(9), b)).toEqual(be);
    expect(() => encodeBackendValue({ ...be, services: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] })).toThrow(/at most 10 fit/);
  });

  it('manager key: netns cookie form and ip_addr form', () => {
    const c = encodeManagerKeyCookie(0x0102030405060708n);
    expect(hex(c)).toBe('0807060504030201' + '00'.repeat(8));
    expect(decodeManagerKey(c).cookie).toBe(0x0102030405060708n);
    const a = encodeManagerKeyAddr('10.255.0.1');
    expect(hex(a)).toBe('0aff0001' + '00'.repeat(12));
    expect(decodeManagerKey(a).addr).toBe('10.255.0.1');
    expect(decodeManagerKey(encodeManagerKeyAddr('fd00:ffff::1')).addr).toBe('fd00:ffff::1');
  });

  it('bpf_sock_tuple: ipv4 and ipv6 views', () => {
    const t4 = encodeSockTuple({ family: 'inet', src: { addr: '10.255.0.1', port: 40000 }, dst: { addr: '10.0.0.5', port: 80 } });
    expect(t4.length).toBe(36);
    expect(hex(t4.slice(0, 12))).toBe('0aff0001' + '0a000005' + '9c40' + '0050');
    expect(hex(t4.slice(12))).toBe('00'.repeat(24));
    expect(decodeSockTuple(t4, 'inet')).toEqual({ family: 'inet', src: { addr: '10.255.0.1', port: 40000 }, dst: { addr: '10.0.0.5', port: 80 } });
    const t6 = encodeSockTuple({ family: 'inet6', src: { addr: 'fd00:ffff::1', port: 1 }, dst: { addr: '::ffff:10.0.0.5', port: 443 } });
    expect(hex(t6.slice(16, 32))).toBe('00'.repeat(10) + 'ffff0a000005');
    expect(hex(t6.slice(32, 36))).toBe('000101bb');
    expect(decodeSockTuple(t6, 'inet6').dst).toEqual({ addr: '::ffff:10.0.0.5', port: 443 });
    expect(() => encodeSockTuple({ family: 'inet', src: { addr: 'fd00::1', port: 1 }, dst: { addr: '10.0.0.1', port: 1 } })).toThrow(KmeshCheckError);
  });

  it('sock_storage_data: flags and the original destination in each view', () => {
    const b = new Uint8Array(64);
    b[18] = 1; // via_waypoint
    b[20] = 1; // has_set_ip
    b.set([10, 0, 0, 7], 24 + 4); // ipv4 daddr
    b.set([0x1f, 0x90], 24 + 10); // ipv4 dport 8080
    expect(storageView(b, 'inet')).toEqual({ viaWaypoint: true, hasSetIp: true, hasEncoded: false, original: { addr: '10.0.0.7', port: 8080 } });
    const b6 = new Uint8Array(64);
    b6[19] = 2; // any non-zero byte reads as true
    b6[20] = 1;
    b6.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 7], 24 + 16);
    b6.set([0, 80], 24 + 34);
    expect(storageView(b6, 'inet6')).toEqual({ viaWaypoint: false, hasSetIp: true, hasEncoded: true, original: { addr: '::ffff:10.0.0.7', port: 80 } });
    b6[20] = 0;
    expect(storageView(b6, 'inet6').original).toBeNull();
    const raw = decodeSockStorage(b);
    expect(raw.viaWaypoint).toBe(1);
    expect(encodeSockStorage(raw)).toEqual(b);
  });
});

describe('TLV', () => {
  it('builds the 16-byte AF_INET form', () => {
    expect(hex(buildTlv('inet', { addr: '10.0.0.7', port: 80 }))).toBe('01' + '00000006' + '0a000007' + '0050' + 'fe00000000');
  });
  it('builds the 28-byte AF_INET6 form, v4-mapped kept mapped', () => {
    const b = buildTlv('inet6', { addr: '::ffff:10.0.0.7', port: 443 });
    expect(b.length).toBe(28);
    expect(hex(b)).toBe('01' + '00000012' + '00'.repeat(10) + 'ffff0a000007' + '01bb' + 'fe00000000');
  });
  it('parses both forms and leaves the payload after them', () => {
    const t = buildTlv('inet6', { addr: 'fd00::5', port: 15008 });
    const stream = new Uint8Array([...t, 0x68, 0x69]);
    expect(parseTlv(stream)).toEqual({ tlv: { form: 'inet6', original: { addr: 'fd00::5', port: 15008 } }, size: 28 });
    expect(parseTlv(buildTlv('inet', { addr: '1.2.3.4', port: 1 }))?.tlv).toEqual({ form: 'inet', original: { addr: '1.2.3.4', port: 1 } });
  });
  it('rejects truncated or malformed prefixes', () => {
    const t = buildTlv('inet', { addr: '10.0.0.7', port: 80 });
    expect(parseTlv(t.slice(0, 15))).toBeNull();
    const bad = t.slice();
    bad[11] = 0xfd;
    expect(parseTlv(bad)).toBeNull();
    expect(parseTlv(new TextEncoder().encode('kmesh-check s0 m0;'))).toBeNull();
    expect(() => buildTlv('inet', { addr: 'fd00::1', port: 1 })).toThrow(KmeshCheckError);
  });
});

// ---- round trips over arbitrary values ---------------------------------------------------------

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 0, max: 0xffff });
/** A map port: mostly a port, sometimes with an upper half (a raw state's). */
const mapPort = fc.oneof({ arbitrary: port, weight: 3 }, { arbitrary: u32, weight: 1 });
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
const ipAddr = fc.oneof(
  ipv4,
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => canonicalIpAddr(Buffer.from(b).toString('hex').match(/.{4}/g)!.join(':'))),
);
const waypoint = fc.record({ addr: ipAddr, port: mapPort });
const serviceArb = fc.record({
  id: u32,
  endpointCounts: fc.array(u32, { minLength: 7, maxLength: 7 }),
  lbPolicy: u32,
  servicePorts: fc.array(mapPort, { minLength: 10, maxLength: 10 }),
  targetPorts: fc.array(mapPort, { minLength: 10, maxLength: 10 }),
  waypoint,
});
const backendArb = fc.record({ uid: u32, addr: ipAddr, services: fc.array(u32, { maxLength: 10 }), waypoint });

describe('round trips', () => {
  test.prop([serviceArb, backendArb, u32, u32, u32, u32, ipAddr], { numRuns: 300 })('service, backend, endpoint, frontend', (s, be, sid, prio, idx, uid, addr) => {
    expect(decodeService(encodeServiceKey(s.id), encodeServiceValue(s))).toEqual(s);
    expect(decodeBackend(encodeBackendKey(be.uid), encodeBackendValue(be))).toEqual(be);
    expect(decodeEndpoint(encodeEndpointKey({ serviceId: sid, prio, index: idx }), encodeEndpointValue(uid))).toEqual({ serviceId: sid, prio, index: idx, backendUid: uid });
    expect(decodeFrontend(encodeFrontendKey(addr), encodeFrontendValue(uid))).toEqual({ addr, upstreamId: uid });
  });

  test.prop([fc.uint8Array({ maxLength: 64 })])('hex helpers are inverse', (b) => {
    expect(fromHex(toHex(b))).toEqual(b);
  });
});

describe('encodeState and diffStates', () => {
  const base: MapState = {
    frontends: [{ addr: '10.1.0.1', upstreamId: 1 }],
    services: [service({ id: 1, endpointCounts: [1, 0, 0, 0, 0, 0, 0], servicePorts: [80, 0, 0, 0, 0, 0, 0, 0, 0, 0], targetPorts: [8080, 0, 0, 0, 0, 0, 0, 0, 0, 0] })],
    endpoints: [{ serviceId: 1, prio: 0, index: 1, backendUid: 5 }],
    backends: [{ uid: 5, addr: '10.2.0.5', services: [1], waypoint: { addr: '0.0.0.0', port: 0 } }],
  };

  it('keys maps by name and entries by key hex', () => {
    const enc = encodeState(base);
    expect([...enc.keys()]).toEqual(['km_frontend', 'km_service', 'km_endpoint', 'km_backend']);
    expect([...enc.get('km_frontend')!.keys()]).toEqual(['0a010001' + '00'.repeat(12)]);
    expect(hex(enc.get('km_frontend')!.get('0a010001' + '00'.repeat(12))!)).toBe('01000000');
    expect(enc.get('km_service')!.get('01000000')!.length).toBe(132);
    expect(decodeState(enc)).toEqual(base);
  });

  it('costs only the changes', () => {
    const a = encodeState(base);
    expect(diffSize(diffStates(a, a))).toBe(0);
    const next: MapState = { ...base, backends: [{ ...base.backends[0]!, addr: '10.2.0.6' }], frontends: [] };
    const d = diffStates(a, encodeState(next));
    expect(d.get('km_backend')!.updates.map(([k]) => k)).toEqual(['05000000']);
    expect(d.get('km_frontend')!.deletes).toEqual(['0a010001' + '00'.repeat(12)]);
    expect(diffSize(d)).toBe(2);
    const fromEmpty = diffStates(EMPTY_ENCODED, a);
    expect(diffSize(fromEmpty)).toBe(4);
  });

  const frontends = fc.array(fc.record({ addr: ipv4, upstreamId: u32 }), { maxLength: 6 });
  test.prop([frontends, frontends], { numRuns: 200 })('applying a diff to the old contents gives the new contents', (f1, f2) => {
    const a = encodeState({ ...base, frontends: f1 });
    const b = encodeState({ ...base, frontends: f2 });
    const d = diffStates(a, b).get('km_frontend')!;
    const m = new Map(a.get('km_frontend')!);
    for (const k of d.deletes) m.delete(k);
    for (const [k, v] of d.updates) m.set(k, v);
    expect(m).toEqual(b.get('km_frontend'));
  });
});
