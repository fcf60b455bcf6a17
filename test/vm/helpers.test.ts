// Maps and helpers: a compiled program exercising them (test/fixtures/vm/helpers.c) on both
// engines, checked value by value, and the map classes' userspace side.

import { describe, expect, it } from 'vitest';
import { Vm } from '../../bpf/vm/vm.js';
import { SK_MSG, VmSock, skMsgContext } from '../../bpf/vm/context.js';
import { HashMap, ArrayMap, RingBufMap, SkStorageMap, SockHashMap, ProgArrayMap, Errno, MapError, createMap, hashKey } from '../../bpf/vm/maps.js';
import { MapType, type MapDef } from '../../bpf/vm/link.js';
import { HelperId, INIT_NET_COOKIE, formatBpf, installHelpers } from '../../bpf/vm/helpers.js';
import { aluX, assemble, call, exit, ldx, mov64, movReg, type Insn } from '../support/asm.js';
import { ScriptedChoices } from '../../bpf/runner/choices.js';
import { fixtureObject, runRaw } from '../fixtures/vm/helpers.js';

function i64s(b: Uint8Array): bigint[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: b.length / 8 }, (_, i) => v.getBigInt64(i * 8, true));
}

describe.each(['interp', 'jit'] as const)('helpers in a compiled program (%s)', (engine) => {
  const vm = new Vm({ choices: new ScriptedChoices([{ point: 'prandom', value: 0xdeadbeef }]) });
  vm.machine.engine = engine;
  const obj = vm.load(fixtureObject('helpers', 'v3'));
  const sock = new VmSock(5, 'inet', 'tcp', 55);
  const result = vm.runConnect(vm.program('helpers_prog'), sock, { addr: '10.96.0.10', port: 80 });
  const out = i64s(vm.global(obj, 'out'));

  it('map update flags, lookup, delete and a full hash map', () => {
    expect(out.slice(0, 8)).toEqual([0n, BigInt(-Errno.EEXIST), BigInt(-Errno.ENOENT), 0n, 11n, 0n, BigInt(-Errno.ENOENT), BigInt(-Errno.E2BIG)]);
    const h = vm.map<HashMap>('h');
    expect(h.size).toBe(4);
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, 12, true);
    expect(h.get(key)).toEqual(new Uint8Array([11, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('array maps: out of range, NOEXIST, no delete; values change in place; percpu array', () => {
    expect(out.slice(8, 11)).toEqual([BigInt(-Errno.E2BIG), BigInt(-Errno.EEXIST), BigInt(-Errno.EINVAL)]);
    expect(vm.map<ArrayMap>('a').get(1)).toEqual(new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0]));
    expect(vm.map<ArrayMap>('pa').get(0)).toEqual(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('ring buffer: reserve + submit and output both deliver records in order', () => {
    expect(out[11]).toBe(0n);
    const recs = vm
      .map<RingBufMap>('rb')
      .drain()
      .map((r) => Buffer.from(r).toString('hex'));
    expect(recs).toEqual(['8877665544332211', 'efcdab0000000000']);
  });

  it('snprintf and trace_printk format like the kernel', () => {
    expect(out[12]).toBe(BigInt('-5-7-ff-vm'.length + 1));
    expect(Buffer.from(vm.global(obj, 'text')).toString('latin1').split('\0')[0]).toBe('-5-7-ff-vm');
    expect(vm.trace).toEqual([`port ${0x5000}`]);
  });

  it('prandom comes from the choice source; ktime is monotonic', () => {
    expect(out[13]).toBe(0xdeadbeefn);
    expect(out[15]! > out[14]!).toBe(true);
  });

  it('sk_storage_get: absent without F_CREATE, created with it, then found', () => {
    expect(out[16]).toBe(0n);
    expect(out[17]).toBe(42n);
    const s = vm.map<SkStorageMap>('ss').get(sock)!;
    expect(new DataView(s.buffer).getBigUint64(0, true)).toBe(42n);
  });

  it("netns cookie (of the context, and of NULL: the initial namespace, never the VM's), context reads and writes", () => {
    expect(out[18]).toBe(BigInt(vm.netnsCookie));
    expect(out[21]).toBe(BigInt(INIT_NET_COOKIE));
    expect(INIT_NET_COOKIE).not.toBe(vm.netnsCookie);
    expect(out[19]).toBe(0x5000n);
    expect(out[20]).toBe(6n);
    expect(result).toEqual({ verdict: 1, dest: { addr: '127.0.0.1', port: 0x9999 } });
  });
});

const def = (over: Partial<MapDef>): MapDef => ({ index: 0, name: 'm', type: MapType.HASH, keySize: 4, valueSize: 4, maxEntries: 2, flags: 0, internal: null, ...over });
const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};

describe('maps, userspace side', () => {
  it('hash: key and value sizes are checked, full maps refuse, deletes free room', () => {
    const m = new HashMap(def({}));
    m.set(u32(1), u32(10));
    m.set(u32(2), u32(20));
    expect(() => m.set(u32(3), u32(30))).toThrow(/update failed with errno 7 \(map full\)/);
    expect(() => m.set(new Uint8Array(3), u32(1))).toThrow(/key is 3 bytes, the map's key_size is 4/);
    expect(m.delete(u32(1))).toBe(true);
    m.set(u32(3), u32(30));
    expect(m.keys().map((k) => new DataView(k.buffer).getUint32(0, true))).toEqual([2, 3]);
  });

  it('hash: an update replaces the element; a pointer to the old value keeps the old bytes', () => {
    const m = new HashMap(def({ keySize: 16 }));
    const k = new Uint8Array(16).fill(7);
    m.set(k, u32(1));
    const old = m.lookup(k, 0)!;
    m.set(k, u32(2));
    expect(old.bytes).toEqual(u32(1));
    expect(m.lookup(k, 0)!.bytes).toEqual(u32(2));
  });

  it('hash: colliding hashes are told apart by their bytes', () => {
    const m = new HashMap(def({ keySize: 8, maxEntries: 5000 }));
    const seen = new Map<number, Uint8Array>();
    let a: Uint8Array | null = null,
      b: Uint8Array | null = null;
    let x = 12345;
    const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
    for (let i = 0; i < 400000 && !b; i++) {
      const k = new Uint8Array(8);
      new DataView(k.buffer).setUint32(0, next(), true);
      new DataView(k.buffer).setUint32(4, next(), true);
      const h = hashKey(k, 0, 8);
      const prev = seen.get(h);
      if (prev) {
        a = prev;
        b = k;
      } else seen.set(h, k);
    }
    expect(b).not.toBeNull();
    m.set(a!, u32(1));
    m.set(b!, u32(2));
    expect(m.get(a!)).toEqual(u32(1));
    expect(m.get(b!)).toEqual(u32(2));
    m.delete(a!);
    expect(m.get(a!)).toBeNull();
    expect(m.get(b!)).toEqual(u32(2));
  });

  it('hash: setBetweenRuns leaves the map as set would (entries, order, LRU eviction), across table growth', () => {
    for (const type of [MapType.HASH, MapType.LRU_HASH]) {
      const a = new HashMap(def({ type, maxEntries: 300 }));
      const b = new HashMap(def({ type, maxEntries: 300 }));
      const want = new Map<number, number>();
      let x = 99;
      const next = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
      for (let i = 0; i < 5000; i++) {
        const k = next(400);
        const v = next(1000);
        const r = next(10);
        if (r < 2) {
          expect(b.delete(u32(k))).toBe(a.delete(u32(k)));
          want.delete(k);
        } else if (r < 3) {
          expect(b.lookup(u32(k), 0)?.bytes ?? null).toEqual(a.lookup(u32(k), 0)?.bytes ?? null);
        } else if (a.size < 300 || type === MapType.LRU_HASH || want.has(k)) {
          a.set(u32(k), u32(v));
          b.setBetweenRuns(u32(k), u32(v));
          want.set(k, v);
        }
      }
      expect(b.keys()).toEqual(a.keys());
      expect(b.digest()).toBe(a.digest());
      expect(a.size).toBeGreaterThan(64);
      if (type === MapType.HASH) for (const [k, v] of want) expect(b.get(u32(k))).toEqual(u32(v));
      // Emptied with few entries left in a grown table: nothing of the old entries is found again.
      for (const k of a.keys()) if (a.keys().length > 10) a.delete(k);
      a.clear();
      for (let k = 0; k < 400; k++) expect(a.get(u32(k))).toBeNull();
      a.set(u32(7), u32(70));
      expect(a.keys()).toEqual([u32(7)]);
      expect(a.get(u32(7))).toEqual(u32(70));
    }
  });

  it('LRU hash evicts the least recently used entry instead of refusing', () => {
    const m = new HashMap(def({ type: MapType.LRU_HASH }));
    m.set(u32(1), u32(1));
    m.set(u32(2), u32(2));
    m.lookup(u32(1), 0);
    m.set(u32(3), u32(3));
    expect(m.get(u32(2))).toBeNull();
    expect(m.get(u32(1))).not.toBeNull();
  });

  it('prog arrays, sockhash and ring buffers keep their own rules', () => {
    const pa = new ProgArrayMap(def({ type: MapType.PROG_ARRAY }));
    expect(() => pa.set(2, null)).toThrow(/slot 2 is beyond max_entries 2/);
    expect(() => pa.lookup()).toThrow(MapError);
    const sh = new SockHashMap(def({ type: MapType.SOCKHASH }));
    const s1 = new VmSock(1, 'inet', 'tcp', 1);
    expect(sh.insert(u32(9), 0, s1, 1)).toBe(0);
    expect(sh.insert(u32(9), 0, s1, 1)).toBe(-Errno.EEXIST);
    expect(sh.has(s1)).toBe(true);
    sh.dropSocket(s1);
    expect(sh.has(s1)).toBe(false);
    const rb = new RingBufMap(def({ type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: 32 }));
    expect(rb.output(new Uint8Array(8))).toBe(true);
    expect(rb.output(new Uint8Array(8))).toBe(true);
    expect(rb.output(new Uint8Array(1))).toBe(false); // 2 x (8 + 8) = 32 bytes used
    expect(rb.drain().length).toBe(2);
    expect(rb.output(new Uint8Array(1))).toBe(true);
    expect(() => createMap(def({ type: 12 }))).toThrow(/map type 12 is not supported/);
    // Digests tell states apart even where records of varying length hold a separator's byte.
    const ring = (...records: string[]) => {
      const r = new RingBufMap(def({ type: MapType.RINGBUF, keySize: 0, valueSize: 0, maxEntries: 64 }));
      for (const t of records) r.output(new TextEncoder().encode(t));
      return r.digest();
    };
    expect(ring('a,b')).not.toBe(ring('a', 'b'));
    expect(ring('a', 'b')).toBe(ring('a', 'b'));
  });

  it('formats %d %u %x %s %c %% and widths like printf', () => {
    const args = [BigInt.asUintN(64, -3n), 4000000000n, 0xbeefn, 0n, 65n, 65n, 0n, 0n];
    expect(
      formatBpf(
        '%d|%u|%08x|%s|%c|%%|%5d|%-3u|%lld',
        (i) => args[i] ?? 0n,
        () => 'str',
      ),
    ).toBe('-3|4000000000|0000beef|str|A|%|   65|0  |0');
    expect(() =>
      formatBpf(
        '%q',
        () => 0n,
        () => '',
      ),
    ).toThrow(/unsupported conversion/);
  });
});

describe.each(['interp', 'jit'] as const)('bpf_msg_pull_data (%s)', (engine) => {
  const payload = new Uint8Array([10, 11, 12, 13, 14]);
  /** Runs `pull(start, end, flags)` on an sk_msg context of `payload`, then `after` with the context in r6. */
  const pull = (start: number, end: number, flags: number, after: Insn[]) => {
    const prog = assemble('pull', [movReg(6, 1), mov64(2, start), mov64(3, end), mov64(4, flags), call(HelperId.msg_pull_data), ...after, exit()]);
    const sock = new VmSock(1, 'inet', 'tcp', 1);
    return runRaw(
      prog,
      engine,
      (mem) => skMsgContext(mem, sock, payload).ctx,
      (m) => installHelpers(m, new Vm()),
    ).r0;
  };
  it('frames bytes [start, end) between data and data_end', () => {
    expect(pull(1, 3, 0, [])).toBe(0n);
    // data_end - data, then the first byte data points at.
    expect(pull(1, 3, 0, [ldx('dw', 2, 6, SK_MSG.data), ldx('dw', 0, 6, SK_MSG.data_end), aluX(true, 'sub', 0, 2)])).toBe(2n);
    expect(pull(1, 3, 0, [ldx('dw', 2, 6, SK_MSG.data), ldx('b', 0, 2, 0)])).toBe(11n);
    expect(pull(0, 5, 0, [ldx('dw', 2, 6, SK_MSG.data), ldx('dw', 0, 6, SK_MSG.data_end), aluX(true, 'sub', 0, 2)])).toBe(5n);
  });
  it('refuses flags, an empty range and one past the message (EINVAL), as the kernel does', () => {
    const einval = BigInt.asUintN(64, BigInt(-Errno.EINVAL));
    for (const [start, end, flags] of [
      [0, 3, 1],
      [2, 2, 0],
      [3, 1, 0],
      [0, 6, 0],
      [5, 6, 0],
    ] as const)
      expect(pull(start, end, flags, []), `${start} ${end} ${flags}`).toBe(einval);
  });
});
