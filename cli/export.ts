// Counterexample exports: a vitest regression test that reproduces a saved failure (it fails for
// as long as the bug is there) and imports kmesh-check by package name, so it runs in the user's
// own project; and a bpftool batch file that recreates the case's map state in the case's own
// private copy of the objects, never in maps that happen to be loaded on the host.

import { createHash } from 'node:crypto';
import { encodeState } from '../bpf/codec/index.js';
import type { Case } from '../model/domain.js';
import type { SavedFailure } from './failure-db.js';
import { enrolmentText, monitoringText } from '../properties/format.js';

function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** The private bpffs folder a case's objects are pinned under: unique per case, never a host path. */
export function casePinDir(c: Case, id?: string): string {
  const tag = id ?? createHash('sha256').update(JSON.stringify(c)).digest('hex').slice(0, 12);
  if (!/^[\w.-]+$/.test(tag)) throw new Error(`bad case id for a pin path: ${tag}`);
  return `/sys/fs/bpf/kmesh-check-${tag}`;
}

/** Shell-quotes a path for the instructions (single quotes, safe for any path). */
function sq(s: string): string {
  return /^[\w./=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The commands that apply a batch file safely (root): load the connect object (it declares every
 * routing map) into the case's private pin folder with its maps pinned there, write the state
 * with the batch file, and remove the pins, which unloads that private copy again.
 */
export function bpftoolApplyCommands(pinDir: string, connectObject: string, batchFile: string): { prepare: string[]; load: string[]; apply: string[]; cleanup: string[] } {
  return {
    // Where no one has mounted bpffs on /sys/fs/bpf yet (a fresh machine without systemd's mount),
    // the folder is sysfs, where mkdir fails: mount it first, as bpftool itself would.
    prepare: ['sh', '-c', `[ "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs ] || mount -t bpf bpf /sys/fs/bpf; mkdir -p ${sq(pinDir)}`],
    load: ['bpftool', 'prog', 'loadall', connectObject, `${pinDir}/progs`, 'pinmaps', `${pinDir}/maps`],
    apply: ['bpftool', 'batch', 'file', batchFile],
    cleanup: ['rm', '-rf', pinDir],
  };
}

export interface BatchOptions {
  /** Saved failure id: names the pin folder (default: a hash of the case). */
  readonly id?: string;
  /** The connect object the case ran (default shown as a placeholder to replace). */
  readonly connectObject?: string;
  /** Where the batch file is written, for the instructions in its header. */
  readonly batchFile?: string;
}

/**
 * `bpftool batch file F` lines that write the case's routing maps (the initial state) into maps
 * pinned under the case's private folder. Every map is addressed by that pin path and none by
 * name or id, so the file cannot touch a map of the host's data path; where nothing is pinned
 * there, bpftool fails instead of writing elsewhere.
 */
export function bpftoolBatch(c: Case, o: BatchOptions = {}): string {
  const pinDir = casePinDir(c, o.id);
  const cmds = bpftoolApplyCommands(pinDir, o.connectObject ?? 'CONNECT_OBJECT.o', o.batchFile ?? 'THIS_FILE');
  const lines = [
    '# kmesh-check: map state of a counterexample, for `bpftool batch file FILE`',
    `# state: ${c.kind}; namespace ${enrolmentText(c)}${monitoringText(c)}`,
    `# Maps are addressed under the private pin folder ${pinDir} only. Apply as root:`,
    `#   ${cmds.prepare.map(sq).join(' ')}`,
    `#   ${cmds.load.map(sq).join(' ')}`,
    `#   ${cmds.apply.map(sq).join(' ')}`,
    `#   bpftool map dump pinned ${pinDir}/maps/km_frontend     # inspect`,
    `#   ${cmds.cleanup.map(sq).join(' ')}                      # remove the pins (unloads the copy)`,
    '# The loaded copy is attached nowhere, so no traffic of the host runs through it.',
  ];
  for (const [map, entries] of encodeState(c.state)) {
    if (!/^\w+$/.test(map)) throw new Error(`bad map name ${map}`);
    for (const [keyHex, value] of entries) {
      const key = keyHex.match(/../g)?.join(' ') ?? '';
      lines.push(`map update pinned ${pinDir}/maps/${map} key hex ${key} value hex ${hexBytes(value)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * A self-contained vitest file that judges the saved case on the executor it failed on. It
 * imports `kmesh-check/regression` by name: it runs wherever kmesh-check is installed.
 */
export function regressionTest(saved: SavedFailure, objects: Record<string, string> | null): string {
  const executor = saved.executor === 'kernel' || saved.executor === 'vm' ? saved.executor : 'model';
  return `// Regression test exported by kmesh-check from saved failure ${saved.id}.
// It fails while the data path still breaks "${saved.invariant}" on this case.
// Needs kmesh-check and vitest installed in this project (npm install -D kmesh-check vitest).
import { expect, it } from 'vitest';
import { judgeSavedCase } from 'kmesh-check/regression';

const CASE = ${JSON.stringify(saved.case, null, 2)} as const;
const OBJECTS = ${JSON.stringify(objects ?? {})};

it(${JSON.stringify(`kmesh-check regression ${saved.id}: ${saved.invariant}`)}, async () => {
  expect(await judgeSavedCase(CASE as never, '${executor}', OBJECTS)).toBeNull();
}, 60_000);
`;
}
