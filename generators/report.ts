// fast-check arbitraries for connection-report cases: the two gates, the node and gateway
// globals (sometimes the client's own address, so no authorization request is due), and a few
// connections one after another, AF_INET, AF_INET6 with v4-mapped addresses or native ::1, direct
// or through a service VIP, with traffic both ways, either
// end closing first, and user space storing a verdict or not. No waits: periodic reports are
// confirmed by hand-written cases that really wait (test/kernel/report.test.ts).

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

/** Where a client of each flavour connects, and where its listener is. */
const TARGETS = {
  inet: { listen: REPORT_LISTEN, to: [REPORT_LISTEN, REPORT_VIP] },
  mapped: {
    listen: REPORT_LISTEN,
    to: [
      { addr: '::ffff:127.0.0.1', port: 8080 },
      { addr: '::ffff:10.96.0.1', port: 80 },
    ],
  },
  inet6: { listen: { addr: '::1', port: 8080 }, to: [{ addr: '::1', port: 8080 }] },
} as const;

const connArb: fc.Arbitrary<ReportConn> = fc
  .record({
    flavour: fc.constantFrom<keyof typeof TARGETS>('inet', 'inet', 'inet', 'mapped', 'inet6'),
    target: fc.nat({ max: 1 }),
    sends: fc.array(fc.record({ from: end, size: fc.integer({ min: 1, max: 2048 }) }), { maxLength: 3 }),
    firstClose: end,
    storeVerdict: fc.boolean(),
  })
  .map(({ flavour, target, ...rest }) => {
    const t = TARGETS[flavour];
    return { ...rest, clientFamily: flavour === 'inet' ? ('inet' as const) : ('inet6' as const), listen: t.listen, connectTo: t.to[target % t.to.length]! };
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
