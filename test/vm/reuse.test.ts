// What the VM reuses between cases to spare allocations must be indistinguishable from new:
// hash-map entries userspace freed, and sockets the executor closed.

import { describe, expect, it } from 'vitest';
import { HashMap } from '../../bpf/vm/maps.js';
import { MapType, type MapDef } from '../../bpf/vm/link.js';
import { TCP_ESTABLISHED, VmSock } from '../../bpf/vm/context.js';

const def: MapDef = { index: 0, name: 'm', type: MapType.HASH, keySize: 8, valueSize: 4, maxEntries: 4, flags: 0, internal: null };
const bytes = (...b: number[]) => Uint8Array.from(b);

describe('hash map entries freed by userspace', () => {
  it('hold the next key and value whole, and a replaced value keeps its bytes for its holders', () => {
    const m = new HashMap(def);
    m.set(bytes(1, 1, 1, 1, 1, 1, 1, 1), bytes(9, 9, 9, 9));
    m.set(bytes(2, 2, 2, 2, 2, 2, 2, 2), bytes(8, 8, 8, 8));
    m.clear();
    expect(m.delete(bytes(1, 1, 1, 1, 1, 1, 1, 1))).toBe(false);
    m.set(bytes(3, 0, 0, 0, 0, 0, 0, 3), bytes(1, 2, 3, 4));
    const held = m.lookup(bytes(3, 0, 0, 0, 0, 0, 0, 3), 0)!;
    // a program-side update replaces the element: the holder keeps the old bytes
    expect(m.update(bytes(3, 0, 0, 0, 0, 0, 0, 3), 0, bytes(5, 6, 7, 8), 0, 0)).toBe(0);
    expect([...held.bytes]).toEqual([1, 2, 3, 4]);
    expect(m.delete(bytes(3, 0, 0, 0, 0, 0, 0, 3))).toBe(true);
    m.set(bytes(4, 4, 4, 4, 4, 4, 4, 4), bytes(7, 7, 7, 7));
    expect(m.keys().map((k) => [...k])).toEqual([[4, 4, 4, 4, 4, 4, 4, 4]]);
    expect([...m.get(bytes(4, 4, 4, 4, 4, 4, 4, 4))!]).toEqual([7, 7, 7, 7]);
    expect(m.get(bytes(3, 0, 0, 0, 0, 0, 0, 3))).toBeNull();
    // The digest: key then value, one character per byte.
    expect(m.digest()).toBe('\x04'.repeat(8) + '\x07'.repeat(4));
  });
});

describe('a reused socket', () => {
  it('is the fresh socket of its new id and cookie', () => {
    const used = new VmSock(3, 'inet6', 'tcp', 0x1003);
    used.setEnds({ addr: 'fd00::1', port: 40000 }, { addr: '::ffff:10.0.0.1', port: 80 }, TCP_ESTABLISHED);
    used.cbFlags = 0x7;
    used.netnsCookie = 42;
    used.tcpRegion!.bytes.fill(0xee);
    used.sockRegion.bytes.fill(0xdd);
    used.reuse(5, 0x1009);
    const fresh = new VmSock(5, 'inet6', 'tcp', 0x1009);
    for (const s of [used, fresh]) expect(s.id === 5 && s.cookie === 0x1009).toBe(true);
    expect([used.state, used.cbFlags, used.netnsCookie, used.local, used.remote]).toEqual([fresh.state, fresh.cbFlags, fresh.netnsCookie, fresh.local, fresh.remote]);
    expect([used.sockRegion.name, used.tcpRegion!.name]).toEqual([fresh.sockRegion.name, fresh.tcpRegion!.name]);
    expect(used.sockRegion.bytes).toEqual(fresh.sockRegion.bytes);
    expect(used.tcpRegion!.bytes).toEqual(fresh.tcpRegion!.bytes);
  });
});
