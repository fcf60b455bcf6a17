// The kernel executor's two paths through the C shim: the case runner's one call per operation,
// and whole simple cases in one call (kf_run); and its two ways of writing maps: bpf() syscalls,
// and the map writer program. The shim builds and is used, the byte encoding of observations
// decodes to the same objects, and both paths observe exactly the same things on the same
// generated cases (the runner's path with map writes by syscalls, kf_run's through the writer).

import { connect, send, service, socket } from '../../model/builders.js';
import { buildMutant } from '../../cli/mutants.js';
import fc from 'fast-check';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import koffi from 'koffi';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Case, MapState, Observation, Service, StartEnrolment } from '../../model/domain.js';
import { ControlPort, enrolmentFields, startEnrolment } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { caseArb } from '../../generators/index.js';
import { traceKey } from '../../properties/observation.js';
import { PROG, RUN_STATUS, buildMapWriter, buildShim, fastPath } from '../../bpf/kernel/fastpath.js';
import { mapOpRecord } from '../../bpf/kernel/map-writes.js';
import { libbpf } from '../../bpf/kernel/libbpf.js';
import { libc } from '../../bpf/kernel/libc.js';
import { benchCases } from '../../bpf/kernel/bench.js';
import { ObsWriter, decodeObservations } from '../../bpf/runner/observations.js';
import { createKernelExecutor, type KernelExecutor } from '../../bpf/kernel/executor.js';

function sockaddrIn(addr: number[], port: number): Uint8Array {
  const b = new Uint8Array(128);
  b[0] = 2;
  b[2] = port >> 8;
  b[3] = port & 0xff;
  b.set(addr, 4);
  return b;
}

function sockaddrIn6(addr: number[], port: number): Uint8Array {
  const b = new Uint8Array(128);
  b[0] = 10;
  b[2] = port >> 8;
  b[3] = port & 0xff;
  b.set(addr, 8);
  return b;
}

describe('observation encoding', () => {
  it('decodes every kind of record to the observation the worker saw', () => {
    const w = new ObsWriter();
    const storage = new Uint8Array(64);
    w.socket(0);
    w.connect(0, -1, sockaddrIn([10, 2, 0, 1], 8080), null, 'inet', true);
    w.connect(3, 111, null, storage, 'inet6', false);
    w.endCase();
    w.apply();
    w.send(2, { tlv: null, payloadIntact: true, hex: '6b' }, null, 'inet');
    w.connect(2, -1, sockaddrIn6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 443), null, 'inet6', false);
    w.close(2);
    w.endCase();
    w.endCase();
    const { bytes, streams } = w.take();
    const obs = decodeObservations(bytes, streams);
    const expected: Observation[][] = [
      [
        { op: 'socket', sock: 0 },
        { op: 'connect', sock: 0, peer: { addr: '10.2.0.1', port: 8080 }, error: null, storage: null, inSockhash: true },
        { op: 'connect', sock: 3, peer: null, error: 'ECONNREFUSED', storage: { viaWaypoint: false, hasSetIp: false, hasEncoded: false, original: null }, inSockhash: false },
      ],
      [
        { op: 'apply', sock: null },
        { op: 'send', sock: 2, stream: { tlv: null, payloadIntact: true, hex: '6b' }, storage: null },
        { op: 'connect', sock: 2, peer: { addr: 'fd00::1', port: 443 }, error: null, storage: null, inSockhash: false },
        { op: 'close', sock: 2 },
      ],
      [],
    ];
    expect(obs).toEqual(expected);
    // Same keys in the same order as the objects the worker used to send as JSON.
    expect(JSON.stringify(obs)).toBe(JSON.stringify(expected));
    expect(w.take().bytes.length).toBe(0);
  });

  it('rejects a corrupt record with a one-line error', () => {
    expect(() => decodeObservations(new Uint8Array([9]), [])).toThrow(/corrupt observation record 9/);
  });
});

/** km_manage keys of the default environment's enrolled locals, sorted (each namespace adds its netns cookie). */
const LOCAL_KEYS = ['0aff0001' + '00'.repeat(12), '7f000001' + '00'.repeat(12), 'fd00ffff' + '00'.repeat(11) + '01'];

const benchService: Service = service(1, { counts: [1], ports: [[80, 8080]] });

/** Generated cases whose outcome is determined (no random load-balancing choice). */
function deterministicCases(): Case[] {
  const out: Case[] = [];
  for (const kind of ['consistent', 'raw'] as const) {
    for (const shape of ['single', 'sequence'] as const) {
      for (const c of fc.sample(caseArb({ kind, shape }), { seed: 77, numRuns: 150 })) {
        if (new Set(outcomes(c, DEFAULT_ENVIRONMENT).map((t) => traceKey(t.observations))).size === 1) out.push(c);
      }
    }
  }
  return out;
}

describe('the shim build', () => {
  it('says what failed when the source does not compile', () => {
    const root = mkdtempSync(join(tmpdir(), 'kmesh-shim-'));
    try {
      mkdirSync(join(root, 'bpf/user'), { recursive: true });
      writeFileSync(join(root, 'bpf/user/fastpath.c'), 'this is not C\n');
      expect(() => buildShim(root)).toThrow(/^compiling .*fastpath\.c failed: .*error/);
      expect(existsSync(join(root, 'build/shim/libkmeshfast.so'))).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('kf_run stops, writing nothing, when its output has no room for a record', () => {
    const fast = fastPath()!;
    const status = new Int32Array(RUN_STATUS.words);
    const program = Uint8Array.of(PROG.end);
    const small = new Uint8Array(64);
    expect(fast.run(program, program.length, small, small.length, status)).toBe(0);
    expect(status[RUN_STATUS.code]).toBe(RUN_STATUS.bug);
    const room = new Uint8Array(256);
    expect(fast.run(program, program.length, room, room.length, status)).toBe(1);
    expect(status[RUN_STATUS.code]).toBe(RUN_STATUS.ok);
  });
});

describe('kf_run and the maps outside the ABI', () => {
  it('puts them back before each case, but not where a program goes on with the case before (P_CONTINUE)', () => {
    if (process.geteuid?.() !== 0) throw new Error('creating a BPF map requires root');
    const fast = fastPath()!;
    const fd = libbpf.mapCreate(1 /* BPF_MAP_TYPE_HASH */, 'kc_continue', 4, 4, 8, null);
    expect(fd).toBeGreaterThan(0);
    try {
      expect(fast.setResets(Int32Array.of(fd, 1, 4, 4, 8), 1)).toBe(0);
      const key = Uint8Array.of(1, 0, 0, 0);
      const held = () => libbpf.mapLookup(fd, key, new Uint8Array(4)) === 0;
      const run = (ops: number[], code: number = RUN_STATUS.ok) => {
        const status = new Int32Array(RUN_STATUS.words);
        const out = new Uint8Array(256);
        fast.run(Uint8Array.from(ops), ops.length, out, out.length, status);
        expect(status[RUN_STATUS.code]).toBe(code);
      };
      expect(libbpf.mapUpdate(fd, key, Uint8Array.of(7, 0, 0, 0), 0)).toBe(0);
      run([PROG.continue, PROG.end]);
      expect(held()).toBe(true);
      run([PROG.end]);
      expect(held()).toBe(false);
      // Only a program's first record continues a case: after a case's end it is a worker bug.
      expect(libbpf.mapUpdate(fd, key, Uint8Array.of(7, 0, 0, 0), 0)).toBe(0);
      run([PROG.end, PROG.continue, PROG.end], RUN_STATUS.bug);
      expect(held()).toBe(false);
    } finally {
      fast.setResets(new Int32Array(0), 0);
      libc.close(fd);
    }
  });
});

describe('the map writer', () => {
  /** kf_map_ops records: [key, value] writes, [key, null] deletes; 4-byte keys, values of `valueSize` bytes starting with the number. */
  function records(fd: number, ops: ReadonlyArray<readonly [number, number | null]>, valueSize = 4): Uint8Array {
    const parts: number[] = [];
    const put = {
      i32: (v: number) => parts.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff),
      bytes: (b: Uint8Array) => parts.push(...b),
      zeros: (n: number) => parts.push(...new Array<number>(n).fill(0)),
    };
    const u32 = (v: number) => new Uint8Array(Uint32Array.of(v).buffer);
    const value = (v: number) => {
      const b = new Uint8Array(valueSize).fill(v & 0xff);
      b.set(u32(v));
      return b;
    };
    for (const [k, v] of ops) mapOpRecord(put, fd, u32(k), v === null ? null : value(v));
    return Uint8Array.from(parts);
  }

  it('makes the writes by syscalls from the run the program could not make on, and stays on syscalls', () => {
    if (process.geteuid?.() !== 0) throw new Error('creating a BPF map requires root');
    const fast = fastPath()!;
    const fds = () => new Set(readdirSync('/proc/self/fd'));
    // The listing's own directory fd is gone by the time it is read.
    const link = (f: string) => {
      try {
        return readlinkSync(`/proc/self/fd/${f}`, { encoding: 'utf8' });
      } catch {
        return '';
      }
    };
    const before = fds();
    expect(fast.writerOpen(buildMapWriter())).toBe(0);
    const progs = [...fds()].filter((f) => !before.has(f) && link(f) === 'anon_inode:bpf-prog');
    expect(progs).toHaveLength(1);
    const map = libbpf.mapCreate(1 /* BPF_MAP_TYPE_HASH */, 'kc_gone', 4, 4, 1000, null);
    const devNull = openSync('/dev/null', 'r');
    try {
      expect(fast.writerMaps(Int32Array.of(map), 1)).toBe(1);
      // The program's fd now names /dev/null: its next run fails before anything is written.
      const dup2 = koffi.load('libc.so.6').func('int dup2(int oldfd, int newfd)') as (a: number, b: number) => number;
      expect(dup2(devNull, Number(progs[0]))).toBe(Number(progs[0]));
      const ops = Array.from({ length: 300 }, (_, i) => [i + 1, 1000 + i] as const);
      const runs = fast.writerRuns();
      const rc = new Int32Array(1);
      expect(fast.mapOps(records(map, ops), ops.length, rc)).toBe(-1);
      // One run tried, then every record by syscalls; and the writer is gone for later calls.
      expect(fast.writerRuns() - runs).toBe(1);
      const v = new Uint8Array(4);
      expect(ops.every(([k, x]) => libbpf.mapLookup(map, new Uint8Array(Uint32Array.of(k).buffer), v) === 0 && new Uint32Array(v.buffer)[0] === x)).toBe(true);
      expect(fast.writerCheck()).toBe(-19 /* ENODEV: unloaded */);
    } finally {
      fast.writerMaps(new Int32Array(0), 0);
      libc.close(map);
      libc.close(devNull);
    }
  });

  it('splits a batch at its data limit too, with the same failure and contents as the syscalls', () => {
    if (process.geteuid?.() !== 0) throw new Error('creating a BPF map requires root');
    const fast = fastPath()!;
    expect(fast.writerOpen(buildMapWriter())).toBe(0);
    // Values of km_service's size: 240 records fill the program's 32 KB of data; the 251st key overflows.
    const fds = [0, 1].map((i) => libbpf.mapCreate(1 /* BPF_MAP_TYPE_HASH */, `kc_wide${i}`, 4, 132, 250, null));
    try {
      const ops = Array.from({ length: 300 }, (_, i) => [i + 1, 1000 + i] as const);
      const results = fds.map((fd, i) => {
        expect(fast.writerMaps(Int32Array.of(fds[0]!), 1)).toBe(1);
        const rc = new Int32Array(1);
        const runs = fast.writerRuns();
        const failed = fast.mapOps(records(fd, ops, 132), ops.length, rc);
        expect(fast.writerRuns() - runs).toBe(i === 0 ? 2 : 0);
        const v = new Uint8Array(132);
        const held = [1, 250, 251].map((k) => (libbpf.mapLookup(fd, new Uint8Array(Uint32Array.of(k).buffer), v) === 0 ? Buffer.from(v).toString('hex') : null));
        return { failed, rc: rc[0], held };
      });
      expect(results[0]).toMatchObject({ failed: 250, rc: -7 /* E2BIG */ });
      expect(results[0]!.held[2]).toBeNull();
      expect(results[1]).toEqual(results[0]);
    } finally {
      fast.writerMaps(new Int32Array(0), 0);
      for (const fd of fds) libc.close(fd);
    }
  });

  it('makes the writes and deletes the syscalls make, in order, with the same failure', () => {
    if (process.geteuid?.() !== 0) throw new Error('creating a BPF map requires root');
    const fast = fastPath()!;
    // An object that is not there: an error, and the writes would go by syscalls.
    expect(fast.writerOpen(join(tmpdir(), 'kc-no-such-writer.bpf.o'))).toBeLessThan(0);
    expect(fast.writerMaps(Int32Array.of(0), 1)).toBeLessThan(0);
    expect(fast.writerCheck()).toBe(-19 /* ENODEV */);
    expect(fast.writerOpen(buildMapWriter())).toBe(0);
    // Its trial writes on a map of its own (what openMapWriter asks before the worker uses it).
    const runs = fast.writerRuns();
    expect(fast.writerCheck()).toBe(0);
    expect(fast.writerRuns() - runs).toBe(1);
    // Two maps of two entries: a third key overflows (E2BIG), as a full routing map does.
    const fds = [0, 1].map((i) => libbpf.mapCreate(1 /* BPF_MAP_TYPE_HASH */, `kc_writer${i}`, 4, 4, 2, null));
    try {
      // A delete of a missing key, two writes, a rewrite, a delete, then more than a batch of
      // rewrites (runs of MW_OPS), then a third key: its index and E2BIG, nothing after it made.
      const ops: Array<readonly [number, number | null]> = [
        [9, null],
        [1, 10],
        [2, 20],
        [1, 11],
        [2, null],
        [2, 21],
      ];
      for (let i = 0; i < 600; i++) ops.push([1, 100 + i]);
      const overflow = ops.length;
      ops.push([3, 30], [1, 12]);
      const results = fds.map((fd, i) => {
        // The first map registered with the writer, the second not (its records go by syscalls).
        expect(fast.writerMaps(Int32Array.of(fds[0]!), 1)).toBe(1);
        const rc = new Int32Array(1);
        const buf = records(fd, ops);
        const runs = fast.writerRuns();
        const failed = fast.mapOps(buf, ops.length, rc);
        // Through the program in runs of 256 records, the third one failing; or by syscalls.
        expect(fast.writerRuns() - runs).toBe(i === 0 ? 3 : 0);
        const held = [1, 2, 3, 9].map((k) => {
          const v = new Uint8Array(4);
          return libbpf.mapLookup(fd, new Uint8Array(Uint32Array.of(k).buffer), v) === 0 ? new Uint32Array(v.buffer)[0]! : null;
        });
        return { map: i, failed, rc: rc[0], held };
      });
      expect(results[0]).toEqual({ map: 0, failed: overflow, rc: -7 /* E2BIG */, held: [699, 21, null, null] });
      expect({ ...results[1], map: 0 }).toEqual(results[0]);
    } finally {
      fast.writerMaps(new Int32Array(0), 0);
      for (const fd of fds) libc.close(fd);
    }
  });
});

describe('whole cases in the shim and the case runner', () => {
  let fast: KernelExecutor;
  let plain: KernelExecutor;
  beforeAll(async () => {
    if (process.geteuid?.() !== 0) throw new Error('the path comparison runs the kernel executor and requires root');
    fast = await createKernelExecutor();
    plain = await createKernelExecutor({ wholeCases: false, mapWriter: false });
  });
  afterAll(async () => {
    await fast?.close();
    await plain?.close();
  });

  it('builds, and the worker uses it', async () => {
    expect(existsSync(buildShim())).toBe(true);
    expect((await fast.info()).shim).toMatchObject({ wholeCases: true, mapWriter: 'program' });
    expect((await plain.info()).shim).toEqual({ wholeCases: false, casesRunWhole: 0, mapWriter: 'off' });
  });

  it('observes exactly what the case runner observes operation by operation', async () => {
    const cases = deterministicCases();
    expect(cases.length).toBeGreaterThan(300);
    // Sends, several sockets, state changes within a case and enrolment by km_manage writes
    // (every kind of it) must all be exercised.
    expect(cases.some((c) => c.ops.some((o) => o.op === 'send'))).toBe(true);
    expect(cases.some((c) => c.ops.some((o) => o.op === 'apply'))).toBe(true);
    expect(cases.some((c) => c.ops.filter((o) => o.op === 'socket').length > 1)).toBe(true);
    expect(new Set(cases.map((c) => String(startEnrolment(c)))).size).toBeGreaterThanOrEqual(5);
    const before = (await fast.info()).shim.casesRunWhole;
    const [a, b] = await Promise.all([fast.run(cases), plain.run(cases)]);
    expect(a).toHaveLength(cases.length);
    cases.forEach((c, i) => expect(JSON.stringify(a[i]), JSON.stringify(c)).toBe(JSON.stringify(b[i])));
    // They ran whole inside the shim (kf_run), sends, applies and written enrolments included,
    // except those with datagram operations (section 6) and a first switch of enrolment (the
    // runner checks the environment).
    const whole = (await fast.info()).shim.casesRunWhole - before;
    const datagrams = cases.filter((c) => c.ops.some((o) => o.op === 'sendto' || o.op === 'recvfrom' || o.op === 'deliver')).length;
    expect(whole).toBeGreaterThanOrEqual(cases.length - datagrams - 1);
  });

  it('runs sends whole with the streams the runner sees: prefixes, and streams longer than what was sent', async () => {
    // tlv-repeated prefixes every message of a waypoint-bound socket: its listener receives more
    // bytes than the socket sent, and the wait for complete streams must end as the runner's does.
    const objects = buildMutant('tlv-repeated');
    const [mf, mp] = await Promise.all([createKernelExecutor({ objects }), createKernelExecutor({ objects, wholeCases: false })]);
    try {
      const cases = deterministicCases().filter((c) => c.ops.some((o) => o.op === 'send') && c.enrolmentWrite === undefined);
      const [a, b] = await Promise.all([mf.run(cases), mp.run(cases)]);
      cases.forEach((c, i) => expect(JSON.stringify(a[i]), JSON.stringify(c)).toBe(JSON.stringify(b[i])));
      expect((await mf.info()).shim.casesRunWhole).toBeGreaterThanOrEqual(cases.length - 1);
      const streams = a.flat().flatMap((o) => (o.op === 'send' && o.stream ? [o.stream] : []));
      expect(streams.some((s) => s.tlv !== null && s.payloadIntact)).toBe(true);
      expect(streams.some((s) => s.tlv !== null && !s.payloadIntact)).toBe(true);
      expect(a.flat().some((o) => o.op === 'send' && o.stream === null)).toBe(true);
    } finally {
      await Promise.all([mf.close(), mp.close()]);
    }
  });

  it('runs applies and control connects whole, and fails on a state the codec refuses as the runner does', async () => {
    const [c0, c1, c2] = benchCases(3);
    const ops = (state: MapState): Case['ops'] => [socket(0, 'inet'), connect(0, '10.1.0.1', 80), send(0, 2), { op: 'apply', state }, connect(1, '10.1.0.1', 80), send(0, 1), { op: 'close', sock: 0 }];
    const applied: Case = { ...c1!, ops: [socket(1, 'inet'), ...ops({ ...c2!.state, backends: [] })] };
    const control: Case = { ...c2!, ops: [socket(0, 'inet'), connect(0, '10.255.0.1', ControlPort.withdraw), { op: 'close', sock: 0 }] };
    const cases = [c0!, applied, control, c1!, c2!];
    // Enrolled once (the runner checks the environment): from then on enrolment changes run whole.
    await Promise.all([fast.run([c0!]), plain.run([c0!])]);
    const before = (await fast.info()).shim.casesRunWhole;
    const [a, b] = await Promise.all([fast.run(cases), plain.run(cases)]);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    // km_manage as the runner leaves it (each namespace's own netns cookie apart).
    const [ia, ib] = await Promise.all([fast.info(), plain.info()]);
    expect(ia.manage.length).toBe(ib.manage.length);
    expect(ia.manage.filter((k) => LOCAL_KEYS.includes(k)).sort()).toEqual(ib.manage.filter((k) => LOCAL_KEYS.includes(k)).sort());
    expect(a[1]!.map((o) => o.op)).toEqual(['socket', 'socket', 'connect', 'send', 'apply', 'connect', 'send', 'close']);
    expect((await fast.info()).shim.casesRunWhole - before).toBe(cases.length);
    // A backend in more services than its value holds: the codec error, after the cases before it.
    const bad: Case = { ...c1!, ops: ops({ ...c2!.state, backends: [{ ...c2!.state.backends[0]!, services: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }] }) };
    const fail = (ex: KernelExecutor, batch: Case[]) =>
      ex.run(batch).then(
        () => null,
        (e: Error) => e.message,
      );
    // After other cases of the program, and first in it.
    for (const [batch, at] of [
      [[c0!, bad, c2!], 1],
      [[bad, c2!], 0],
    ] as const) {
      const [ea, eb] = await Promise.all([fail(fast, [...batch]), fail(plain, [...batch])]);
      expect(ea).toMatch(new RegExp(`^case ${at}: .*at most 10 fit`));
      expect(ea).toBe(eb);
      const [ra, rb] = await Promise.all([fast.run(cases), plain.run(cases)]);
      expect(JSON.stringify(ra)).toBe(JSON.stringify(rb));
    }
  });

  it('switches enrolment inside a run of whole cases, with the same control connects as the runner', async () => {
    // Enrolled and withdrawn in turn: after the runner's first enrolment (which checks the
    // environment) the switches run inside kf_run, and km_manage ends as the runner leaves it.
    const cases = benchCases(8).map((c, i) => ({ ...c, enrolled: i % 2 === 0 }));
    const before = (await fast.info()).shim.casesRunWhole;
    const [a, b] = await Promise.all([fast.run(cases), plain.run(cases)]);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect((await fast.info()).shim.casesRunWhole - before).toBeGreaterThanOrEqual(cases.length - 1);
    const [ia, ib] = await Promise.all([fast.info(), plain.info()]);
    expect(ia.enrolment).toBe(false);
    expect(ia.manage).toEqual(ib.manage);
    const [ea, eb] = await Promise.all([fast.run([{ ...cases[0]!, enrolled: true }]), plain.run([{ ...cases[0]!, enrolled: true }])]);
    expect(ea).toEqual(eb);
    // Enrolled again: both namespaces hold their own netns cookie and the same local IPs.
    for (const info of [await fast.info(), await plain.info()]) {
      expect(info.manage).toHaveLength(4);
      expect(info.manage.filter((k) => LOCAL_KEYS.includes(k)).sort()).toEqual(LOCAL_KEYS);
    }
  });

  it('writes km_manage inside a run of whole cases as the runner does, and empties it for control connects', async () => {
    // Every start enrolment in turn, twice: each switch to or from a written one runs in kf_run.
    const starts: StartEnrolment[] = [true, 0, 1, 'cookie-only', false, 'locals-only', 0xffffffff, true];
    const cases = benchCases(starts.length * 2).map((c, i) => ({ ...c, ...enrolmentFields(starts[i % starts.length]!) }));
    await Promise.all([fast.run([cases[0]!]), plain.run([cases[0]!])]);
    const before = (await fast.info()).shim.casesRunWhole;
    for (const c of cases.slice(1)) {
      // After each case, km_manage holds what the runner's path leaves (the netns cookies differ).
      const [a, b] = await Promise.all([fast.run([c]), plain.run([c])]);
      expect(JSON.stringify(a)).toBe(JSON.stringify(b));
      const [ia, ib] = await Promise.all([fast.info(), plain.info()]);
      expect(ia.enrolment).toEqual(startEnrolment(c));
      expect(ia.manage.length, String(ia.enrolment)).toBe(ib.manage.length);
      expect(ia.manage.filter((k) => LOCAL_KEYS.includes(k)).sort()).toEqual(ib.manage.filter((k) => LOCAL_KEYS.includes(k)).sort());
    }
    expect((await fast.info()).shim.casesRunWhole - before).toBe(cases.length - 1);
    // And in one batch, whose cases run grouped by start enrolment.
    const [a, b] = await Promise.all([fast.run(cases), plain.run(cases)]);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });

  it('reports a failed map write the same way', async () => {
    // One service more than km_service holds: the write that overflows fails, on both paths.
    const services = Array.from({ length: 5001 }, (_, i) => ({ ...benchService, id: i + 1 }));
    const big: Case = { state: { frontends: [], services, endpoints: [], backends: [] }, kind: 'raw', enrolled: false, ops: [] };
    const [ea, eb] = await Promise.all([
      fast.run([big]).then(
        () => null,
        (e: Error) => e.message,
      ),
      plain.run([big]).then(
        () => null,
        (e: Error) => e.message,
      ),
    ]);
    expect(ea).toMatch(/^case 0: writing km_service failed \(E2BIG\): is the map full\?$/);
    expect(ea).toBe(eb);
    // The same inside a run of whole cases (kf_run): the failing case is named, not the run's first.
    const [c0, c1] = benchCases(2);
    const inRun: Case = { ...big, enrolled: true };
    const [ra, rb] = await Promise.all([
      fast.run([c0!, c1!, inRun]).then(
        () => null,
        (e: Error) => e.message,
      ),
      plain.run([c0!, c1!, inRun]).then(
        () => null,
        (e: Error) => e.message,
      ),
    ]);
    expect(ra).toMatch(/^case 2: writing km_service failed \(E2BIG\): is the map full\?$/);
    expect(ra).toBe(rb);
    // Both start the next batch from clean maps.
    const after = await fast.run(deterministicCases().slice(0, 20));
    expect(after).toEqual(await plain.run(deterministicCases().slice(0, 20)));
  });
});
