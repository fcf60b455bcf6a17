// conn_success is pinned by section 7 for sockops' ACTIVE_ESTABLISHED report alone (outbound,
// 1): a server's report at establishment and the CLOSE reports may carry any value. The check
// held every report to 1, failing correct objects (a false-alarm hunter's, which wrote 0 there).

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../shared/package.js';
import { buildVariant, type SourceEdit } from '../helpers/variant.js';

const bin = join(packageRoot(), 'bin/kmesh-check.js');

/** The report phase's verdict line on a variant of our sources. */
function reportPhase(edits: readonly SourceEdit[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'kc-conn-success-'));
  const o = buildVariant(dir, edits);
  const objects = `connect=${o('cgroup_sock')},sockops=${o('sockops')},sendmsg=${o('sendmsg')},cgroup_skb=${o('cgroup_skb')}`;
  const r = spawnSync(process.execPath, [bin, 'check', '--executor', 'vm', '--runs', '200', '--no-failure-db', '--no-explain', '--report-objects', objects], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 240_000,
  });
  return r.stdout + r.stderr;
}

describe('conn_success in connection reports', () => {
  it('is not judged in the server report at establishment nor in CLOSE reports', () => {
    const out = reportPhase([
      ['sockops_report.h', 's->connect_success = 1;', 's->connect_success = inbound ? 0 : 1;'],
      ['report.h', 'info.conn_success = s->connect_success;', 'info.conn_success = state == KM_REPORT_ESTABLISHED ? s->connect_success : 0;'],
    ]);
    expect(out).toMatch(/connection reports \(section 7\): \d+ cases on the vm; exercised: .*report-bytes-written \d+/);
    expect(out).not.toContain('conn_success');
    expect(out).toMatch(/^verdict: PASS/m);
  });

  it("is 1 in the client's report at establishment", () => {
    const out = reportPhase([['sockops_report.h', 's->connect_success = 1;', 's->connect_success = 0;']]);
    expect(out).toMatch(/report of the client of connection \d+: conn_success 0, expected 1/);
    // The observed reports show the fields judged.
    expect(out).toMatch(/^ {6}ESTABLISHED direction 2 .* at \d+ ns, conn_success 0, sent \d+ B, received \d+ B$/m);
    expect(out).toMatch(/^verdict: FAIL/m);
  });
});
