// Our compiled data path in the VM on hand-made states: the connect4/connect6 paths of
// kmesh-dataplane.md section 3 (and docs/interpretation.md), sockops and sk_msg, and the socket
// layer's kernel behaviour (EISCONN, refused and unroutable connects, UDP, close), on both engines.

import { describe, expect, it } from 'vitest';
import { createVmExecutor, type VmExecutor } from '../../bpf/vm/executor.js';
import { LbPolicy, NO_WAYPOINT, type Case, type MapState, type Operation, type Service, type Backend, type Observation } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { dataPathObjects } from '../fixtures/vm/helpers.js';

const ports = (...p: number[]) => [...p, ...new Array<number>(10 - p.length).fill(0)];
const counts = (...c: number[]) => [...c, ...new Array<number>(7 - c.length).fill(0)];
const svc = (id: number, over: Partial<Service> = {}): Service => ({
  id,
  endpointCounts: counts(1),
  lbPolicy: LbPolicy.random,
  servicePorts: ports(80),
  targetPorts: ports(8080),
  waypoint: NO_WAYPOINT,
  ...over,
});
const be = (uid: number, addr: string, over: Partial<Backend> = {}): Backend => ({ uid, addr, services: [], waypoint: NO_WAYPOINT, ...over });

const BASE: MapState = {
  frontends: [
    { addr: '10.96.0.10', upstreamId: 1 }, // random, one endpoint
    { addr: '10.96.0.11', upstreamId: 2 }, // no port slot for 80
    { addr: '10.96.0.12', upstreamId: 3 }, // strict with prio-1 endpoints only
    { addr: '10.96.0.13', upstreamId: 4 }, // failover: groups 0 and 1 empty, group 2 has one
    { addr: '10.96.0.14', upstreamId: 5 }, // service with a waypoint
    { addr: '10.96.0.15', upstreamId: 6 }, // random to an IPv6 backend
    { addr: '10.0.5.5', upstreamId: 501 }, // direct pod access, no waypoint
    { addr: '10.0.5.6', upstreamId: 502 }, // direct pod access with waypoint
    { addr: '10.96.0.99', upstreamId: 99 }, // the waypoint service
  ],
  services: [
    svc(1),
    svc(2, { servicePorts: ports(443), targetPorts: ports(8443) }),
    svc(3, { endpointCounts: counts(0, 1), lbPolicy: LbPolicy.strict }),
    svc(4, { endpointCounts: counts(0, 0, 1), lbPolicy: LbPolicy.failover }),
    svc(5, { waypoint: { addr: '10.96.0.99', port: 15008 } }),
    svc(6),
    svc(99, { servicePorts: ports(15008), targetPorts: ports(15008) }),
  ],
  endpoints: [
    { serviceId: 1, prio: 0, index: 1, backendUid: 101 },
    { serviceId: 2, prio: 0, index: 1, backendUid: 101 },
    { serviceId: 3, prio: 1, index: 1, backendUid: 101 },
    { serviceId: 4, prio: 2, index: 1, backendUid: 102 },
    { serviceId: 5, prio: 0, index: 1, backendUid: 101 },
    { serviceId: 6, prio: 0, index: 1, backendUid: 103 },
    { serviceId: 99, prio: 0, index: 1, backendUid: 199 },
  ],
  backends: [
    be(0, '10.0.0.53'), // DNS proxy
    be(101, '10.0.1.1', { services: [1] }),
    be(102, '10.0.1.2', { services: [4] }),
    be(103, 'fd00:1::3', { services: [6] }),
    be(199, '10.0.9.9', { services: [99] }),
    be(501, '10.0.5.5'),
    be(502, '10.0.5.6', { waypoint: { addr: '10.96.0.99', port: 15008 } }),
  ],
};

const sock = (id: number, family: 'inet' | 'inet6', protocol: 'tcp' | 'udp' = 'tcp'): Operation => ({ op: 'socket', sock: id, family, protocol });
const connect = (id: number, addr: string, port: number): Operation => ({ op: 'connect', sock: id, dest: { addr, port } });

async function runOps(ex: VmExecutor, ops: Operation[], enrolled = true, state: MapState = BASE): Promise<Observation[]> {
  const c: Case = { state, kind: 'raw', enrolled, ops };
  return (await ex.run([c]))[0]!;
}

describe.each(['jit', 'interp'] as const)('connect paths of our objects (%s)', (engine) => {
  let ex: VmExecutor;
  const open = async () => (ex ??= await createVmExecutor({ objects: dataPathObjects(), engine }));

  it('rewrites a service VIP to its backend and records the original destination once', async () => {
    const o = await runOps(await open(), [sock(1, 'inet'), connect(1, '10.96.0.10', 80)]);
    expect(o[1]).toEqual({
      op: 'connect',
      sock: 1,
      peer: { addr: '10.0.1.1', port: 8080 },
      error: null,
      inSockhash: false,
      storage: { viaWaypoint: false, hasSetIp: true, hasEncoded: false, original: { addr: '10.96.0.10', port: 80 } },
    });
  });

  it('leaves everything alone when the namespace is not enrolled (no storage)', async () => {
    const o = await runOps(await open(), [sock(1, 'inet'), connect(1, '10.96.0.10', 80)], false);
    expect(o[1]).toMatchObject({ peer: { addr: '10.96.0.10', port: 80 }, error: null, storage: null });
  });

  it('fails a pass without a port slot, strict with prio-0 empty, and an IPv6 target for AF_INET', async () => {
    for (const vip of ['10.96.0.11', '10.96.0.12', '10.96.0.15']) {
      const o = await runOps(await open(), [sock(1, 'inet'), connect(1, vip, 80)]);
      expect(o[1], vip).toMatchObject({ peer: { addr: vip, port: 80 }, storage: { hasSetIp: false, viaWaypoint: false, original: null } });
    }
  });

  it('failover takes the first non-empty priority group', async () => {
    const o = await runOps(await open(), [sock(1, 'inet'), connect(1, '10.96.0.13', 80)]);
    expect(o[1]).toMatchObject({ peer: { addr: '10.0.1.2', port: 8080 } });
  });

  it('connect6: v4-mapped VIPs use the IPv4 frontend and get v4-mapped backends; IPv6 backends as they are', async () => {
    const o = await runOps(await open(), [sock(1, 'inet6'), connect(1, '::ffff:10.96.0.10', 80), sock(2, 'inet6'), connect(2, '::ffff:10.96.0.15', 80)]);
    expect(o[1]).toMatchObject({ peer: { addr: '::ffff:10.0.1.1', port: 8080 }, storage: { original: { addr: '::ffff:10.96.0.10', port: 80 } } });
    expect(o[3]).toMatchObject({ peer: { addr: 'fd00:1::3', port: 8080 }, storage: { original: { addr: '::ffff:10.96.0.15', port: 80 } } });
  });

  it('direct pod access: kept without a waypoint, to the waypoint with one', async () => {
    const o = await runOps(await open(), [sock(1, 'inet'), connect(1, '10.0.5.5', 80), sock(2, 'inet'), connect(2, '10.0.5.6', 80)]);
    expect(o[1]).toMatchObject({ peer: { addr: '10.0.5.5', port: 80 }, storage: { hasSetIp: true, viaWaypoint: false } });
    expect(o[3]).toMatchObject({ peer: { addr: '10.0.9.9', port: 15008 }, storage: { hasSetIp: true, viaWaypoint: true, original: { addr: '10.0.5.6', port: 80 } } });
  });

  it('waypoint: tail call into the waypoint service, sockhash entry, one TLV at the stream start', async () => {
    const o = await runOps(await open(), [sock(1, 'inet'), connect(1, '10.96.0.14', 80), { op: 'send', sock: 1, messages: 2 }, { op: 'send', sock: 1, messages: 1 }]);
    expect(o[1]).toMatchObject({ peer: { addr: '10.0.9.9', port: 15008 }, inSockhash: true, storage: { viaWaypoint: true, hasEncoded: false, original: { addr: '10.96.0.14', port: 80 } } });
    expect(o[2]).toMatchObject({ op: 'send', stream: { tlv: { form: 'inet', original: { addr: '10.96.0.14', port: 80 } }, payloadIntact: true }, storage: { hasEncoded: true } });
    expect(o[2]!.stream!.hex).toMatch(/^01000000060a60000e0050fe00000000/);
    expect(o[3]).toMatchObject({ stream: { tlv: { form: 'inet' }, payloadIntact: true } });
    const six = await runOps(await open(), [sock(1, 'inet6'), connect(1, '::ffff:10.96.0.14', 80), { op: 'send', sock: 1, messages: 1 }]);
    expect(six[2]).toMatchObject({ stream: { tlv: { form: 'inet6', original: { addr: '::ffff:10.96.0.14', port: 80 } }, payloadIntact: true } });
  });

  it('DNS: any enrolled connect4 to port 53, TCP or UDP, goes to the proxy, port kept', async () => {
    const o = await runOps(await open(), [sock(1, 'inet', 'udp'), connect(1, '8.8.8.8', 53), sock(2, 'inet'), connect(2, '8.8.4.4', 53)]);
    expect(o[1]).toEqual({
      op: 'connect',
      sock: 1,
      peer: { addr: '10.0.0.53', port: 53 },
      error: null,
      inSockhash: false,
      storage: { viaWaypoint: false, hasSetIp: true, hasEncoded: false, original: { addr: '8.8.8.8', port: 53 } },
    });
    expect(o[3]).toMatchObject({ peer: { addr: '10.0.0.53', port: 53 }, storage: { original: { addr: '8.8.4.4', port: 53 } } });
  });

  it('control connects enrol and withdraw through the programs', async () => {
    const o = await runOps(await open(), [
      sock(1, 'inet'),
      connect(1, '0.0.0.2', 930),
      sock(2, 'inet'),
      connect(2, '10.96.0.10', 80),
      sock(3, 'inet'),
      connect(3, '0.0.0.2', 929),
      sock(4, 'inet'),
      connect(4, '10.96.0.10', 80),
    ]);
    expect(o[1]).toMatchObject({ error: 'ECONNREFUSED', peer: null, storage: null });
    expect(o[3]).toMatchObject({ peer: { addr: '10.96.0.10', port: 80 }, storage: null });
    expect(o[7]).toMatchObject({ peer: { addr: '10.0.1.1', port: 8080 } });
  });

  it('kernel socket behaviour: EISCONN without running the program, refused, unroutable, UDP reconnect, close', async () => {
    const o = await runOps(await open(), [
      sock(1, 'inet'),
      connect(1, '10.96.0.10', 80),
      connect(1, '10.96.0.11', 80),
      sock(2, 'inet'),
      connect(2, '10.20.0.1', 929),
      connect(2, '10.20.0.1', 80),
      sock(3, 'inet'),
      connect(3, '192.0.2.1', 80),
      sock(4, 'inet', 'udp'),
      connect(4, '10.1.1.1', 9),
      connect(4, '10.96.0.10', 80),
      { op: 'send', sock: 4, messages: 1 },
      { op: 'close', sock: 1 },
      sock(1, 'inet6'),
    ]);
    expect(o[2]).toMatchObject({ error: 'EISCONN', peer: null, inSockhash: false, storage: { original: { addr: '10.96.0.10', port: 80 } } });
    expect(o[4]).toMatchObject({ error: 'ECONNREFUSED', peer: null });
    expect(o[5]).toMatchObject({ error: null, peer: { addr: '10.20.0.1', port: 80 } });
    expect(o[7]).toMatchObject({ error: 'ENETUNREACH', peer: null });
    expect(o[9]).toMatchObject({ error: null, peer: { addr: '10.1.1.1', port: 9 } });
    expect(o[10]).toMatchObject({ error: null, peer: { addr: '10.96.0.10', port: 80 }, storage: null }); // UDP: no rewrite, no storage
    expect(o[11]).toEqual({ op: 'send', sock: 4, stream: null, storage: null });
    expect(o.slice(12)).toEqual([
      { op: 'close', sock: 1 },
      { op: 'socket', sock: 1 },
    ]);
  });

  it('kernel socket behaviour on AF_INET6: a refused v4-mapped connect leaves a native one in progress, then EALREADY', async () => {
    const o = await runOps(await open(), [
      sock(1, 'inet6'),
      connect(1, '::ffff:10.20.0.1', 929),
      connect(1, 'fd00::5', 80),
      connect(1, 'fd00::5', 80),
      { op: 'send', sock: 1, messages: 1 },
      sock(2, 'inet6', 'udp'),
      connect(2, '::ffff:10.1.1.1', 9),
      connect(2, 'fd00::5', 9),
      connect(2, '::ffff:10.1.1.1', 0),
    ]);
    expect(o[1]).toMatchObject({ error: 'ECONNREFUSED', peer: null });
    expect(o[2]).toMatchObject({ error: 'EINPROGRESS', peer: null, inSockhash: false });
    expect(o[3]).toMatchObject({ error: 'EALREADY', peer: null });
    expect(o[4]).toMatchObject({ op: 'send', sock: 1, stream: null });
    expect(o[6]).toMatchObject({ error: null, peer: { addr: '::ffff:10.1.1.1', port: 9 } });
    expect(o[7]).toMatchObject({ error: 'EAFNOSUPPORT', peer: null }); // a v4-mapped local cannot reach a native address
    expect(o[8]).toMatchObject({ error: null, peer: null }); // UDP to port 0: associated, but no peer to report
  });

  it('apply replaces the routing maps between operations', async () => {
    const moved: MapState = { ...BASE, backends: BASE.backends.map((b) => (b.uid === 101 ? { ...b, addr: '10.0.1.100' } : b)) };
    const o = await runOps(await open(), [sock(1, 'inet'), connect(1, '10.96.0.10', 80), { op: 'apply', state: moved }, sock(2, 'inet'), connect(2, '10.96.0.10', 80)]);
    expect(o[2]).toEqual({ op: 'apply', sock: null });
    expect(o[4]).toMatchObject({ peer: { addr: '10.0.1.100', port: 8080 } });
  });

  it('bad input is a one-line codec error', async () => {
    const e = await open();
    await expect(runOps(e, [connect(1, '10.0.0.1', 80)])).rejects.toThrow(/case 0: connect on socket 1, which no earlier 'socket' operation created/);
    await expect(runOps(e, [sock(1, 'inet'), connect(1, '::1', 80)])).rejects.toThrow(KmeshCheckError);
    await expect(runOps(e, [sock(1, 'inet'), sock(1, 'inet')])).rejects.toThrow(/socket 1 is created twice/);
  });
});

describe('executor set-up errors', () => {
  it('names a missing object and what to do', async () => {
    await expect(createVmExecutor({ objects: { connect: '/nonexistent/cgroup_sock.o' } })).rejects.toThrow(/connect object \/nonexistent\/cgroup_sock\.o does not exist: build it/);
  });
});
