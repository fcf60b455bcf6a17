// A run names the objects each of its phases will load, in load order, so that the kernel's
// verifier sees them first where this process may load programs; elsewhere it says it did not.

import { describe, expect, it } from 'vitest';
import { runObjectGroups, verifyRunObjects } from '../../cli/verify-objects.js';
import { defaultAccelObjects, defaultObjects } from '../../shared/package.js';
import { defaultReportObjects } from '../../bpf/kernel/report/run.js';

const paths = (groups: { path: string }[][]) => groups.map((g) => g.map((x) => x.path));

describe('the objects a run has verified', () => {
  it("are each phase's, in load order: ours by default, the routing ones alone when --objects names others", () => {
    const ours = defaultObjects();
    const report = defaultReportObjects();
    const accel = defaultAccelObjects();
    expect(paths(runObjectGroups({ objects: {} }))).toEqual([
      [ours.connect, ours.sockops, ours.sendmsg],
      [report.connect, report.sockops, report.sendmsg, report.skb],
      [accel.ops, accel.redirect],
    ]);
    const one = runObjectGroups({ objects: { connect: ours.connect } });
    expect(one.map((g) => g.map((x) => x.what))).toEqual([['connect', 'sockops', 'sendmsg']]);
    // Named report objects are verified though --objects names others; files that do not exist are their phases' to report.
    const mine = { connect: '/nonexistent/c.o', sockops: '/nonexistent/s.o', sendmsg: '/nonexistent/m.o' };
    expect(runObjectGroups({ objects: mine })).toEqual([]);
    expect(paths(runObjectGroups({ objects: mine, reportObjects: report }))).toEqual([[report.connect, report.sockops, report.sendmsg, report.skb]]);
  });

  it('are not loaded without privileges: the run says the verifier did not see them', async () => {
    expect(await verifyRunObjects({ objects: {} }, ['CAP_BPF'])).toBe(
      'kernel verifier: not run (not root: missing CAP_BPF): the VM runs programs the kernel may refuse to load; run as root to have them verified',
    );
  });
});
