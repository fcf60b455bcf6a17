// Running a child without privileges. As root: become nobody (uid/gid 65534, no groups) when
// nobody can read `mustRead`; in a private checkout (a fresh clone in a 0700 temp dir) stay uid 0
// but drop every capability, which takes bpf(), cgroups and namespaces away all the same.

import { spawnSync } from 'node:child_process';

const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const NO_CAPS = ['setpriv', '--inh-caps=-all', '--bounding-set=-all'];

export function unprivilegedPrefix(mustRead: string): { prefix: string[]; nobody: boolean } {
  if (process.getuid?.() !== 0) return { prefix: [], nobody: false };
  const readable = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), 'test', '-r', mustRead]).status === 0;
  return readable ? { prefix: NOBODY, nobody: true } : { prefix: NO_CAPS, nobody: false };
}
