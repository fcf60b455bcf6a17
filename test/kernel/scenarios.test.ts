// The hand-written scenarios (support/scenarios.ts) on the kernel executor, and the kernel
// executor's own plumbing: enrolment the real way, control connects, test-run, errors.

import { describe, expect, it } from 'vitest';
import type { KernelExecutor } from '../../bpf/kernel/executor.js';
import type { Case, MapState } from '../../model/domain.js';
import { be, connectCase, ep, fe, startKernel, state, svc } from '../helpers/kernel.js';
import { NONE, V4, WP_PORT, basic, recorded, sa, scenarioSuite } from '../support/scenarios.js';
import { buildMutant } from '../../cli/mutants.js';

const executor = scenarioSuite<KernelExecutor>('kernel', () => startKernel());

describe('kernel executor plumbing', () => {
  it('publishes the environment it built', () => {
    expect(executor().environment.podAddress).toEqual({ inet: '10.255.0.1', inet6: 'fd00:ffff::1' });
  });

  it('enrols the real way: km_manage holds the netns cookie, both pod IPs and 127.0.0.1', async () => {
    await executor().run([connectCase(state({}), 'inet', sa('10.1.0.1', 80), { enrolled: true })]);
    const info = await executor().info();
    expect(info.enrolment).toBe(true);
    expect(info.manage).toContain('0aff0001' + '00'.repeat(12));
    expect(info.manage).toContain('fd00ffff' + '00'.repeat(11) + '01');
    expect(info.manage).toContain('7f000001' + '00'.repeat(12));
    expect(info.manage).toHaveLength(4);
    await executor().run([connectCase(state({}), 'inet', sa('10.1.0.1', 80), { enrolled: false })]);
    const after = await executor().info();
    expect(after.enrolment).toBe(false);
    expect(after.manage).toEqual([]);
  });

  it('enrols by km_manage writes with the keys control connects write (its own netns cookie), and empties them before control connects again', async () => {
    const enrol = (e: Partial<Case>) => executor().run([{ ...connectCase(state({}), 'inet', sa('10.1.0.1', 80)), ...e }]);
    await enrol({ enrolled: true });
    const byConnects = [...(await executor().info()).manage].sort();
    expect(byConnects).toHaveLength(4);
    await enrol({ enrolled: false });
    await enrol({ enrolled: true, enrolmentWrite: 7 });
    const written = await executor().info();
    expect(written.enrolment).toBe(7);
    expect([...written.manage].sort()).toEqual(byConnects);
    await enrol({ enrolled: false });
    expect((await executor().info()).manage).toEqual([]);
    await enrol({ enrolled: true, enrolmentWrite: 0 });
    await enrol({ enrolled: true });
    expect([...(await executor().info()).manage].sort()).toEqual(byConnects);
  });

  it('empties written entries itself: programs that withdraw another key than they read leave none behind', async () => {
    // The mutant keys km_manage by the initial namespace's cookie, so its withdrawal misses the
    // namespace's own cookie the harness wrote; the next cases must still start from nothing.
    const k = await startKernel({ objects: buildMutant('enrol-init-netns-cookie') });
    try {
      const enrol = (e: Partial<Case>) => k.run([{ ...connectCase(state({}), 'inet', sa('10.1.0.1', 80)), ...e }]);
      await enrol({ enrolled: true, enrolmentWrite: 0 });
      const written = (await k.info()).manage;
      expect(written).toHaveLength(4);
      await enrol({ enrolled: false });
      expect((await k.info()).manage).toEqual([]);
      await enrol({ enrolled: true, enrolmentWrite: 0 });
      await enrol({ enrolled: true });
      // The programs' own keys (the initial namespace's cookie and the locals), without the harness's cookie.
      const byPrograms = (await k.info()).manage;
      expect(byPrograms).toHaveLength(4);
      expect(written.filter((key) => !byPrograms.includes(key))).toHaveLength(1);
    } finally {
      await k.close();
    }
  });

  it('a case that makes its own control connect is an ordinary connect, and enrolment is redone next case', async () => {
    const c: Case = {
      state: state({}),
      kind: 'consistent',
      enrolled: false,
      ops: [
        { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
        { op: 'connect', sock: 0, dest: sa('0.0.0.2', 929) },
        { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
        { op: 'connect', sock: 1, dest: sa('10.99.0.1', 80) },
      ],
    };
    const [o] = await executor().run([c]);
    expect(o![1]!.error).toBe('ECONNREFUSED');
    expect(o![1]!.storage).toBeNull();
    // Enrolled by the case's own control connect: the next TCP connect gets storage.
    expect(o![3]!.storage).toEqual(NONE);
    expect((await executor().info()).enrolment).toBe('unknown');
    const [n] = await executor().run([connectCase(state({}), 'inet', sa('10.99.0.1', 80), { enrolled: false })]);
    expect(n![1]!.storage).toBeNull();
  });

  it('test-run: ENOTSUPP from the syscall, then a real connect reports the peer', async () => {
    await executor().run([connectCase(basic(V4), 'inet', sa('10.1.0.1', 80), { enrolled: true })]);
    const r = await executor().testRun('cgroup_connect4_prog', { family: 'inet', protocol: 'tcp', dest: sa('10.1.0.1', 80) });
    expect(r).toEqual({ retval: 1, via: 'socket', ctxOut: { peer: sa('10.2.0.1', 8080), error: null } });
    const r6 = await executor().testRun('cgroup_connect6_prog', { family: 'inet6', protocol: 'tcp', dest: sa('::ffff:10.1.0.1', 80) });
    expect(r6.ctxOut.peer).toEqual(sa('::ffff:10.2.0.1', 8080));
    await expect(executor().testRun('sockops_prog', { family: 'inet', protocol: 'tcp', dest: sa('10.1.0.1', 80) })).rejects.toThrow(/cannot run standalone/);
  });

  it('connects to closed ports and unrouted addresses fail with the errno name', async () => {
    const [o] = await executor().run([
      {
        state: state({}),
        kind: 'raw',
        enrolled: false,
        ops: [
          { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
          { op: 'connect', sock: 0, dest: sa('10.1.0.1', 930) },
          { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
          { op: 'connect', sock: 1, dest: sa('11.0.0.1', 80) },
        ],
      },
    ]);
    expect(o![1]).toMatchObject({ peer: null, error: 'ECONNREFUSED' });
    expect(o![3]).toMatchObject({ peer: null, error: 'ENETUNREACH' });
  });

  it('apply inside a case changes the maps for the next connect', async () => {
    const before = basic(V4);
    const after = basic(V4, {});
    const moved: MapState = { ...after, backends: [be(21, '10.2.0.77', [1])] };
    const [o] = await executor().run([
      {
        state: before,
        kind: 'consistent',
        enrolled: true,
        ops: [
          { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
          { op: 'connect', sock: 0, dest: sa('10.1.0.1', 80) },
          { op: 'apply', state: moved },
          { op: 'socket', sock: 1, family: 'inet', protocol: 'tcp' },
          { op: 'connect', sock: 1, dest: sa('10.1.0.1', 80) },
        ],
      },
    ]);
    expect(o![1]!.peer).toEqual(sa('10.2.0.1', 8080));
    expect(o![2]).toEqual({ op: 'apply', sock: null });
    expect(o![4]!.peer).toEqual(sa('10.2.0.77', 8080));
  });

  it('a waypoint chain ending at backend 0.0.0.0 (kernel: 127.0.0.1 -> 127.0.0.1) is still enrolled for sockops', async () => {
    const st = state({
      frontends: [fe('10.1.0.1', 1), fe('10.9.0.1', 9)],
      services: [svc(1, { waypoint: { addr: '10.9.0.1', port: WP_PORT } }), svc(9, { ports: [[WP_PORT, 15009]] })],
      endpoints: [ep(9, 0, 1, 90)],
      backends: [be(90, '0.0.0.0', [9])],
    });
    const [o] = await executor().run([connectCase(st, 'inet', sa('10.1.0.1', 80), { sends: 1 })]);
    expect(o![1]).toMatchObject({ peer: sa('127.0.0.1', 15009), storage: recorded(sa('10.1.0.1', 80), true), inSockhash: true });
    expect(o![2]!.stream!.tlv).toEqual({ form: 'inet', original: sa('10.1.0.1', 80) });
  });

  it('a malformed case is a one-line codec error naming the case, and the executor stays usable', async () => {
    const good = connectCase(basic(V4), 'inet', sa('10.1.0.1', 80));
    const orphan: Case = { state: state({}), kind: 'raw', enrolled: true, ops: [{ op: 'connect', sock: 3, dest: sa('10.1.0.1', 80) }] };
    await expect(executor().run([good, orphan])).rejects.toThrow(/^case 1: connect on socket 3, which no earlier 'socket' operation created$/);
    // A map port is a u32 (an upper half is a raw state, item 22 of interpretation.md); 2^32 is none.
    const badPort = { ...basic(V4), services: [svc(1, { ports: [[80, 2 ** 32]] })] };
    await expect(executor().run([connectCase(badPort, 'inet', sa('10.1.0.1', 80))])).rejects.toMatchObject({
      code: 'codec',
      message: 'case 0: service 1 target_port[0] must be a port 0..65535, or a u32 with the port in its low 16 bits, got 4294967296',
    });
    const [o] = await executor().run([good]);
    expect(o![1]!.peer).toEqual(sa('10.2.0.1', 8080));
  });
});
