// `kmesh-check doctor`: one line per check of what the kernel executor needs; exit 1 if any fails.

import { doctorChecks } from '../../bpf/kernel/doctor.js';

export async function doctorCommand(): Promise<number> {
  const checks = await doctorChecks();
  for (const c of checks) {
    process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}${c.ok || !c.remedy ? '' : ` (${c.remedy})`}\n`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  process.stdout.write(failed ? `doctor: ${failed} of ${checks.length} checks failed\n` : `doctor: all ${checks.length} checks passed\n`);
  return failed ? 1 : 0;
}
