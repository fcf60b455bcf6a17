// fast-check arbitraries for connection-report cases: the two gates, the node and gateway
// globals (sometimes the client's own address, so no authorization request is due), and a few
// connections one after another, direct or through a service VIP, with traffic both ways, either
// end closing first, and user space storing a verdict or not. No waits: periodic reports are
// confirmed by hand-written cases that really wait (test/report-kernel.test.ts).

import fc from 'fast-check';
import { backend, endpoint, frontend, maps, service } from '../model/builders.js';
import type { ReportCase, ReportConn, ReportEnd } from '../model/report/domain.js';

/** A service VIP 10.96.0.1:80 whose one backend is the listener 127.0.0.1:8080. */
export const REPORT_STATE = maps({
  frontends: [frontend('10.96.0.1', 1)],
  services: [service(1, { counts: [1], ports: [[80, 8080]] })],
  endpoints: [endpoint(1, 0, 1, 7)],
  backends: [backend(7, '127.0.0.1', [1])],
});
export const REPORT_LISTEN = { addr: '127.0.0.1', port: 8080 };
export const REPORT_VIP = { addr: '10.96.0.1', port: 80 };

const end = fc.constantFrom<ReportEnd>('client', 'server');

const connArb: fc.Arbitrary<ReportConn> = fc.record({
  connectTo: fc.constantFrom(REPORT_LISTEN, REPORT_VIP),
  listen: fc.constant(REPORT_LISTEN),
  sends: fc.array(fc.record({ from: end, size: fc.integer({ min: 1, max: 2048 }) }), { maxLength: 3 }),
  firstClose: end,
  storeVerdict: fc.boolean(),
});

/** A global that is unset, some other address, or the client's own (127.0.0.1). */
const globalIp = fc.constantFrom<string | undefined>(undefined, undefined, '10.0.0.1', '127.0.0.1');

export const reportCaseArb: fc.Arbitrary<ReportCase> = fc
  .record({
    monitoring: fc.boolean(),
    periodic: fc.boolean(),
    nodeIp: globalIp,
    podGateway: globalIp,
    conns: fc.array(connArb, { minLength: 1, maxLength: 3 }),
  })
  .map(({ nodeIp, podGateway, ...rest }) => ({
    ...rest,
    ...(nodeIp ? { nodeIp } : {}),
    ...(podGateway ? { podGateway } : {}),
    state: REPORT_STATE,
  }));
