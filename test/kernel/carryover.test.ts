// The kernel keeps km_manage from one case to the next (re-enrolling costs control connects), so
// a case that may change enrolment outside the harness's own control connects must make the next
// case enrol again: one to the control address on any port, or one whose map state can rewrite a
// connect there. Objects that withdraw on another port than 930 otherwise left the namespace
// withdrawn for later cases, whose failures then did not reproduce alone (a blind hunter's: with
// --stop-at-first the finding was dropped, and the shrunk one of a full run passed its replay).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMutant } from '../../cli/mutants.js';
import type { ReportJson } from '../../cli/report.js';
import { packageRoot } from '../../shared/package.js';
import { stateReachesControl, touchesControl } from '../../bpf/runner/case-runner.js';
import { EMPTY_STATE, NO_WAYPOINT } from '../../model/domain.js';

const bin = join(packageRoot(), 'bin/kmesh-check.js');

describe('enrolment carried over between kernel cases', () => {
  it('is made again after a case that may have changed it', () => {
    expect(touchesControl({ addr: '10.0.0.1', port: 930 })).toBe(true);
    for (const addr of ['0.0.0.2', '::2', '::ffff:0.0.0.2']) expect(touchesControl({ addr, port: 80 }), addr).toBe(true);
    expect(touchesControl({ addr: '10.0.0.2', port: 80 })).toBe(false);
    const backend = (addr: string, wp = NO_WAYPOINT) => ({ ...EMPTY_STATE, backends: [{ uid: 1, addr, services: [], waypoint: wp }] });
    expect(stateReachesControl(backend('0.0.0.2'))).toBe(true);
    expect(stateReachesControl(backend('10.0.0.1', { addr: '::2', port: 15008 }))).toBe(true);
    expect(stateReachesControl(backend('10.0.0.1'))).toBe(false);
  });

  it('so that a finding of objects that withdraw on another port replays alone, with --stop-at-first too', () => {
    const objects = buildMutant('control-other-port-withdraws');
    const dir = mkdtempSync(join(tmpdir(), 'kc-carryover-'));
    const args = ['check', '--executor', 'kernel', '--objects', `connect=${objects.connect}`, '--no-failure-db', '--no-explain'];
    for (const extra of [['--stop-at-first'], []]) {
      const r = spawnSync(process.execPath, [bin, ...args, ...extra, '--json', 'r.json'], { cwd: dir, encoding: 'utf8', timeout: 240_000 });
      expect(r.status, r.stdout + r.stderr).toBe(1);
      const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as ReportJson;
      expect(report.findings.length, extra.join(' ')).toBeGreaterThan(0);
      for (const f of report.findings) {
        expect(f.unreproduced, `${f.signature} ${extra.join(' ')}`).toBeUndefined();
        const replay = spawnSync(process.execPath, [bin, ...f.replay.split(' ').slice(1), '--no-explain'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
        expect(replay.status, `${f.replay}\n${replay.stdout}`).toBe(1);
      }
    }
  }, 600_000);
});
