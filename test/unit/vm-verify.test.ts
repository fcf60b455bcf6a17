// A VM run names the objects its phases will load, so that the kernel's verifier can see them
// first where this process may load programs; elsewhere it says the verifier did not run.

import { describe, expect, it } from 'vitest';
import { vmRunObjects, verifyForVm } from '../../cli/vm-verify.js';
import { defaultAccelObjects, defaultObjects } from '../../shared/package.js';
import { defaultReportObjects } from '../../bpf/kernel/report/run.js';

const pathsOf = (xs: { path: string }[]) => new Set(xs.map((x) => x.path));

describe('the objects a VM run has verified', () => {
  it("are every phase's: ours by default, the routing ones alone when --objects names others", () => {
    const ours = [...Object.values(defaultObjects()), ...Object.values(defaultReportObjects()), ...Object.values(defaultAccelObjects())];
    // Six files: the report phase's connect, sockops and sendmsg are the routing ones.
    expect(pathsOf(vmRunObjects({ objects: {} }))).toEqual(new Set(ours));
    expect(new Set(ours).size).toBe(6);
    const one = vmRunObjects({ objects: { connect: defaultObjects().connect } });
    expect(one.map((x) => x.what)).toEqual(['connect', 'sockops', 'sendmsg']);
    // Named report objects are verified though --objects names others; files that do not exist are their phases' to report.
    const mine = { connect: '/nonexistent/c.o', sockops: '/nonexistent/s.o', sendmsg: '/nonexistent/m.o' };
    expect(vmRunObjects({ objects: mine })).toEqual([]);
    expect(pathsOf(vmRunObjects({ objects: mine, reportObjects: defaultReportObjects() }))).toEqual(new Set(Object.values(defaultReportObjects())));
  });

  it('are not loaded without privileges: the run says the verifier did not see them', async () => {
    expect(await verifyForVm({ objects: {} }, ['CAP_BPF'])).toBe(
      'kernel verifier: not run (not root: missing CAP_BPF): the VM runs programs the kernel may refuse to load; run as root to have them verified',
    );
  });
});
