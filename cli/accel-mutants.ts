// Mutants of the same-node acceleration objects (ma_ops.o, ma_redirect.o): each one plausible bug,
// a patch bpf/mutants/<name>.patch built by the same mechanism as the routing mutants of
// mutants.ts (patched copy of bpf/src, build/mutants/<name>/). A table of its own because the
// routing checker cannot judge these objects: the acceleration checks (model/accel) do, on the
// kernel executor.

import { KmeshCheckError } from '../shared/errors.js';
import { packageRoot } from '../shared/package.js';
import type { AccelObjectPaths } from '../bpf/kernel/accel/loader.js';
import { buildPatched, builtObjects } from './mutants.js';

export interface AccelMutant {
  readonly name: string;
  readonly description: string;
  /** The invariant a correct checker catches it with. */
  readonly expectedInvariant: string;
}

export const ACCEL_MUTANTS: readonly AccelMutant[] = [
  {
    name: 'ma-filter-any-all-swapped',
    description: 'The filter takes one matching address as enough for the accept CIDRs and wants all four ports in the accept ranges (any and all swapped).',
    expectedInvariant: 'redirect-filter',
  },
  {
    name: 'ma-key-no-netns',
    description: 'sock_key leaves the network namespace cookie out (0), so equal four-tuples of two namespaces share keys.',
    expectedInvariant: 'redirect-isolation',
  },
  {
    name: 'ma-entries-kept',
    description: "ma_ops does not delete a connection's sock_proxy_map entries when it closes.",
    expectedInvariant: 'redirect-cleanup',
  },
  {
    name: 'ma-cleanup-by-filter',
    description: "ma_ops deletes a closing connection's sock_proxy_map entries only when the filter admits it now, so a connection accelerated before user space wrote a stricter filter keeps them.",
    expectedInvariant: 'redirect-cleanup',
  },
  {
    name: 'ma-count-over-ten-empty',
    description: 'A list count above 10 is read as an empty list instead of 10 (a full list whose count byte a control plane wrote as 11..255 then constrains nothing).',
    expectedInvariant: 'redirect-filter',
  },
  {
    name: 'ma-range-u16',
    description: 'The filter holds the ends of a port range (u32s) in 16 bits, so 8080-70000 matches nothing and 65616-73761 matches 80-8225.',
    expectedInvariant: 'redirect-filter',
  },
  {
    name: 'ma-port-list-overrun',
    description: 'The filter reads one port range past the count of a list, where a control plane may have left a stale one.',
    expectedInvariant: 'redirect-filter',
  },
  {
    name: 'ma-redirect-drops-unpaired',
    description:
      "ma_redirect drops a message whose redirect finds no peer socket (the peer's end not in sock_ops_map: another family, namespace or cgroup) instead of passing it to TCP: the send fails with EACCES.",
    expectedInvariant: 'redirect-transparent',
  },
  {
    name: 'ma-key-ports-host-order',
    description:
      'sock_key holds the ports in host order, and the filter reads them back alike: a layout of its own that keeps acceleration and cleanup working, but the maps no longer hold the ABI keys a control plane reads.',
    expectedInvariant: 'redirect-keys',
  },
  {
    name: 'ma-list-last-slot-ignored',
    description: "The filter caps a list's count at 9 instead of 10, so the last entry of a full list never matches.",
    expectedInvariant: 'redirect-filter',
  },
  {
    name: 'ma-cleanup-on-fin-only',
    description:
      "ma_ops deletes a connection's sock_proxy_map entries as its close begins (FIN_WAIT1, CLOSE_WAIT) but not at CLOSE: a FIN exchange cleans up, a reset, which takes both ends straight from ESTABLISHED to CLOSE, leaves them behind.",
    expectedInvariant: 'redirect-cleanup',
  },
];

/** Builds one acceleration mutant (make rebuilds only what changed); its two objects. */
export function buildAccelMutant(name: string, root = packageRoot()): AccelObjectPaths {
  const m = ACCEL_MUTANTS.find((x) => x.name === name);
  if (!m) throw new KmeshCheckError('unsupported', `unknown acceleration mutant '${name}': use one of ${ACCEL_MUTANTS.map((x) => x.name).join(', ')}`);
  return builtObjects(buildPatched(m.name, root), { ops: 'ma_ops.o', redirect: 'ma_redirect.o' }, `mutant ${m.name}`);
}
