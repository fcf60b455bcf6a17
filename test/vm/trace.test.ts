// The VM's tracer (bpf/vm/trace.ts) as VmExecutor.traceCase attaches it: a traced run observes
// what an untraced run observes, records what the program did for the operation that caused it
// (enrolment before the first operation), and leaves the executor as it found it: engine, helper
// table, context hook and run entry points; a tail call that falls through is recorded too. The
// DNS hooks' runs are traced as connect's are, with the source a receive hook reports, and the
// socket storage of maps outside the ABI (an object's own records) shows as bytes.

import { describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { backend, connect, endpoint, frontend, maps, recvfrom, sendto, service, socket } from '../../model/builders.js';
import type { Case } from '../../model/domain.js';
import { buildMutant } from '../../cli/mutants.js';
import { eventText } from '../../cli/explain.js';

// One service VIP with one backend: connect4 looks the VIP up, picks the endpoint and rewrites
// the destination to the backend's address and target port.
const c: Case = {
  state: maps({
    frontends: [frontend('10.96.0.10', 1)],
    services: [service(1, { counts: [1], ports: [[80, 8080]] })],
    endpoints: [endpoint(1, 0, 1, 7)],
    backends: [backend(7, '10.244.0.5', [1])],
  }),
  kind: 'consistent',
  enrolled: true,
  ops: [socket(1, 'inet'), connect(1, '10.96.0.10', 80)],
};

describe('VmExecutor.traceCase', () => {
  it('observes what a plain run observes and says what the program did, by operation', async () => {
    const ex = await createVmExecutor();
    const plain = ex.runCase(c);
    const traced = ex.traceCase(c, []);
    expect(traced.observations).toEqual(plain);

    const connectOp = traced.events.filter((e) => e.op === 1);
    expect(connectOp[0]).toMatchObject({ kind: 'run', program: 'cgroup_connect4_prog', dest: '10.96.0.10:80' });
    expect(connectOp).toContainEqual(expect.objectContaining({ kind: 'lookup', map: 'km_frontend', hit: true, value: 'upstream_id 1' }));
    expect(connectOp).toContainEqual(expect.objectContaining({ kind: 'lookup', map: 'km_backend', hit: true }));
    expect(connectOp).toContainEqual(expect.objectContaining({ kind: 'ctx-write', dest: '10.244.0.5:8080' }));
    expect(connectOp.find((e) => e.kind === 'exit')).toMatchObject({ program: 'cgroup_connect4_prog', verdict: 1, dest: '10.244.0.5:8080' });
    // Then sockops runs for the SYN (no listener: the connect is refused afterwards).
    expect(connectOp).toContainEqual(expect.objectContaining({ kind: 'run', dest: null, program: expect.stringMatching(/\(op \d+\)$/) }));
    // Lookups carry the C source line they were made on (BTF line info).
    expect(connectOp.find((e) => e.kind === 'lookup')?.line?.file).toMatch(/\.bpf\.c$|\.h$/);
    // Enrolment (the control connects) runs before the first operation.
    expect(traced.events.filter((e) => e.op === -1 && e.kind === 'run').length).toBeGreaterThan(0);
    expect(traced.events.some((e) => e.op === 0)).toBe(false);
    // km_manage keys are told apart by the namespace's cookie (an IPv4 key reads as a small u64 too).
    const manage = traced.events.filter((e) => e.op === -1 && (e.kind === 'lookup' || e.kind === 'map-write') && e.map === 'km_manage').map((e) => (e as { key: string }).key);
    expect(manage).toContain(`netns cookie ${ex.vm.netnsCookie}`);
    expect(manage).toContain('ip 10.255.0.1');
    expect(manage).toContain('ip 127.0.0.1');
    await ex.close();
  });

  it('leaves the executor as it was: engine, helpers, hooks, and a second trace the same', async () => {
    const ex = await createVmExecutor();
    const m = ex.vm.machine;
    const engine = m.engine;
    const helpers = [...m.helpers];
    const runConnectRaw = ex.vm.runConnectRaw;
    const first = ex.traceCase(c, []);
    expect(m.engine).toBe(engine);
    expect(m.helpers).toEqual(helpers);
    expect(m.helpers.every((h, i) => h === helpers[i])).toBe(true);
    expect(m.onContextStore).toBeNull();
    expect(m.onTailCallMiss).toBeNull();
    expect(ex.vm.runConnectRaw).toBe(runConnectRaw);
    expect(Object.prototype.hasOwnProperty.call(ex.vm, 'runConnectRaw')).toBe(false);
    // Not wrapped twice: the second trace records each step once, as the first did.
    expect(ex.traceCase(c, []).events).toEqual(first.events);
    await ex.close();
  });

  it('records a tail call that falls through, with its slot and why', async () => {
    // connect4 tail-calls connect6's slot, which its own array leaves empty: the waypoint pass ends there.
    const ex = await createVmExecutor({ objects: buildMutant('tail-slot-wrong') });
    const viaWaypoint: Case = {
      ...c,
      state: maps({
        frontends: [frontend('10.96.0.10', 1)],
        services: [service(1, { counts: [1], ports: [[80, 8080]], waypoint: { addr: '10.96.0.20', port: 15008 } })],
        endpoints: [endpoint(1, 0, 1, 7)],
        backends: [backend(7, '10.244.0.5', [1])],
      }),
    };
    const missed = ex.traceCase(viaWaypoint, []).events.filter((e) => e.kind === 'tail-call-missed');
    expect(missed).toHaveLength(1);
    expect(missed[0]).toMatchObject({ op: 1, program: 'cgroup_connect4_prog', why: 'no program in that slot' });
    expect(missed[0]!.line?.text).toMatch(/bpf_tail_call/);
    expect(eventText(missed[0]!)).toMatch(/^tail call to slot \d+ falls through \(no program in that slot\): cgroup_connect4_prog goes on/);
    await ex.close();
  });

  it("traces the DNS hooks: the destination a send rewrites, the source a receive restores, and storage of the object's own maps", async () => {
    const ex = await createVmExecutor();
    const dns: Case = {
      state: maps({ backends: [backend(0, '10.9.0.53')] }),
      kind: 'consistent',
      enrolled: true,
      ops: [socket(1, 'inet', 'udp'), sendto(1, '10.1.0.1', 53), recvfrom(1)],
    };
    const events = ex.traceCase(dns, []).events;
    const send = events.filter((e) => e.op === 1);
    expect(send[0]).toMatchObject({ kind: 'run', dest: '10.1.0.1:53' });
    expect(send).toContainEqual(expect.objectContaining({ kind: 'ctx-write', dest: '10.9.0.53:53' }));
    const receive = events.filter((e) => e.op === 2);
    expect(receive[0]).toMatchObject({ kind: 'run', dest: '10.9.0.53:53', field: 'source' });
    const exit = receive.find((e) => e.kind === 'exit')!;
    expect(exit).toMatchObject({ dest: '10.1.0.1:53', field: 'source' });
    expect(eventText(exit)).toMatch(/returns 1, source 10\.1\.0\.1:53, storage via_waypoint=0 has_set_ip=1 has_encoded=0, km_dns_server [0-9a-f ]+/);
    // Our data path keeps the server it redirected from in km_dns_server: 10.1.0.1 is 0a010001.
    expect(eventText(exit)).toContain('0a010001');
    expect(eventText(receive.find((e) => e.kind === 'helper' && e.helper === 'bpf_sk_storage_get')!)).toMatch(/pointer to map km_dns_server storage, holding 0a010001/);
    await ex.close();
  });
});
