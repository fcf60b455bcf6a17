// The report paths of our sockops object in the userspace VM, whose ring buffer hands out
// poisoned memory: the records a correct program writes have every byte written (padding 0, no
// byte outside the tuple's view), while a program that leaves its padding unwritten shows the
// poison, which the report-bytes-written invariant catches (on the kernel the ring starts zeroed,
// so only the VM sees this mutant).

import { describe, expect, it } from 'vitest';
import { buildReportMutant } from '../../cli/report-mutants.js';
import { decodeTcpProbeInfo } from '../../bpf/codec/report.js';
import { encodeManagerKeyAddr, encodeManagerKeyCookie } from '../../bpf/codec/structs.js';
import { defaultReportObjects } from '../../bpf/kernel/report/run.js';
import { SockOps, VmSock } from '../../bpf/vm/context.js';
import { HashMap, RINGBUF_POISON, RingBufMap } from '../../bpf/vm/maps.js';
import { Vm } from '../../bpf/vm/vm.js';
import type { ReportCase, ReportObservation } from '../../model/report/domain.js';
import { reportBytesWritten } from '../../model/report/invariants.js';
import { maps } from '../../model/builders.js';

const TCP_ESTABLISHED = 1;
const CLIENT = { addr: '127.0.0.1', port: 40000 };
const SERVER = { addr: '127.0.0.1', port: 8080 };

/** One connection through connect4 and both established callbacks; the km_tcp_probe records. */
function run(objects: { connect: string; sockops: string }): ReportObservation {
  const vm = new Vm({ netnsCookie: 9 });
  vm.load(objects.connect);
  const sockops = vm.load(objects.sockops);
  const manage = vm.map<HashMap>('km_manage');
  manage.set(encodeManagerKeyCookie(9n), new Uint8Array(4));
  manage.set(encodeManagerKeyAddr('127.0.0.1'), new Uint8Array(4));
  const client = new VmSock(1, 'inet', 'tcp', 9);
  client.setEnds(CLIENT, null, 0);
  vm.runConnect(vm.program('cgroup_connect4_prog'), client, SERVER);
  client.setEnds(CLIENT, SERVER, TCP_ESTABLISHED);
  const server = new VmSock(2, 'inet', 'tcp', 9);
  server.setEnds(SERVER, CLIENT, TCP_ESTABLISHED);
  const prog = sockops.programs.find((p) => p.name === 'sockops_prog')!;
  vm.runSockOps(prog, client, SockOps.ACTIVE_ESTABLISHED_CB);
  vm.runSockOps(prog, server, SockOps.PASSIVE_ESTABLISHED_CB);
  return {
    conns: [{ client: CLIENT, server: SERVER }],
    probe: vm.map<RingBufMap>('km_tcp_probe').drain().map(decodeTcpProbeInfo),
    auth: [],
    verdictsLeft: [],
  };
}

const CASE: ReportCase = {
  monitoring: true,
  periodic: false,
  state: maps({}),
  conns: [{ connectTo: SERVER, listen: SERVER, sends: [], firstClose: 'client', storeVerdict: false }],
};

describe('report records in the VM (poisoned ring buffer)', () => {
  it('ours: both ends reported, every byte written', () => {
    const o = run(defaultReportObjects());
    expect(o.probe.map((r) => [r.direction, r.state])).toEqual([
      [2, 1],
      [1, 1],
    ]);
    for (const r of o.probe) expect([r.padding, r.unusedNonZero, r.protocol, r.type]).toEqual([0, 0, 6, 0]);
    expect(reportBytesWritten.check(CASE, o).status).toBe('holds');
  });

  it('a program that leaves the padding unwritten shows the poison and is caught', () => {
    const o = run(buildReportMutant('report-padding-unwritten'));
    const poison = (RINGBUF_POISON * 0x01010101) >>> 0;
    expect(o.probe.map((r) => r.padding)).toEqual([poison, poison]);
    const v = reportBytesWritten.check(CASE, o);
    expect(v.status).toBe('violated');
  });
});
