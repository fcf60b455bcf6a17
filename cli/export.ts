// Counterexample exports: a vitest regression test that reproduces a saved failure (it fails for
// as long as the bug is there), and a bpftool batch file that writes its map state on a live node.

import { dirname, relative } from 'node:path';
import { encodeState } from '../bpf/codec/index.js';
import type { Case } from '../model/domain.js';
import type { SavedFailure } from './failure-db.js';

function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/**
 * `bpftool batch file F` lines that write the case's routing maps (the initial state). Maps are
 * named as in the ABI; entries already in the maps and not in the case are left alone, so run it
 * on empty maps (or delete stale entries first) to recreate the state exactly.
 */
export function bpftoolBatch(c: Case): string {
  const lines = [
    '# kmesh-check: map state of a counterexample (bpftool batch file FILE)',
    `# state: ${c.kind}; namespace ${c.enrolled ? 'enrolled' : 'not enrolled'}; entries not listed here are left as they are`,
  ];
  for (const [map, entries] of encodeState(c.state)) {
    for (const [keyHex, value] of entries) {
      const key = keyHex.match(/../g)?.join(' ') ?? '';
      lines.push(`map update name ${map} key hex ${key} value hex ${hexBytes(value)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** A self-contained vitest file that judges the saved case on the executor it failed on. */
export function regressionTest(saved: SavedFailure, objects: Record<string, string> | null, outFile: string, packageRoot: string): string {
  let rel = relative(dirname(outFile), packageRoot) || '.';
  if (!rel.startsWith('.')) rel = `./${rel}`;
  const executor = saved.executor === 'kernel' || saved.executor === 'vm' ? saved.executor : 'model';
  return `// Regression test exported by kmesh-check from saved failure ${saved.id}.
// It fails while the data path still breaks "${saved.invariant}" on this case.
import { expect, it } from 'vitest';
import { judge } from '${rel}/properties/judge.js';
import { openExecutor } from '${rel}/cli/executors.js';
import { formatCase } from '${rel}/properties/format.js';

const CASE = ${JSON.stringify(saved.case, null, 2)} as const;
const OBJECTS = ${JSON.stringify(objects ?? {})};

it('kmesh-check regression ${saved.id}: ${saved.invariant}', async () => {
  const opened = await openExecutor('${executor}', OBJECTS, 'regression test');
  try {
    const j = await judge(CASE as never, { env: opened.env, ...(opened.executor ? { executor: opened.executor } : {}) });
    expect(j.failure, [...formatCase(CASE as never), j.failure?.detail ?? ''].join('\\n')).toBeNull();
  } finally {
    await opened.executor?.close();
  }
}, 60_000);
`;
}
