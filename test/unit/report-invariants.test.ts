// The report invariants on hand-made observations: connections that follow each other may reuse
// a client port (one four-tuple for two connections), which is two requests, not a duplicate.

import { describe, expect, it } from 'vitest';
import { EMPTY_STATE, type SockAddr } from '../../model/domain.js';
import type { AuthRecord, ReportCase, ReportConn, ReportObservation } from '../../model/report/domain.js';
import { authRequest } from '../../model/report/invariants.js';

const client: SockAddr = { addr: '127.0.0.1', port: 40275 };
const server: SockAddr = { addr: '127.0.0.1', port: 8080 };
const conn: ReportConn = { connectTo: server, listen: server, sends: [{ from: 'client', size: 10 }], firstClose: 'server', storeVerdict: false };
const request: AuthRecord = { type: 0, tuple: { family: 'inet', client, server }, unusedNonZero: 0 };
const twoConns: ReportCase = { monitoring: false, periodic: false, state: EMPTY_STATE, conns: [conn, conn] };

function observed(auth: readonly AuthRecord[]): ReportObservation {
  return {
    conns: [
      { client, server },
      { client, server },
    ],
    probe: [],
    auth,
    verdictsLeft: [],
  };
}

describe('auth-request with a reused four-tuple', () => {
  it('accepts one request per connection that had the tuple', () => {
    expect(authRequest.check(twoConns, observed([request, request])).status).toBe('holds');
  });

  it('still fails on a missing request or an extra one', () => {
    expect(authRequest.check(twoConns, observed([request])).status).toBe('violated');
    expect(authRequest.check(twoConns, observed([request, request, request])).status).toBe('violated');
  });
});
