// The VM needs no privileges: a child process without them (as root we drop to nobody with
// setpriv: uid/gid 65534, no groups) loads our objects, runs connect4 and enumerates its outcomes.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { unprivilegedPrefix } from '../helpers/privileges.js';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataPathObjects, FIXTURES } from '../fixtures/vm/helpers.js';

describe('unprivileged', () => {
  it('a process without privileges runs connect4 in the VM', () => {
    // Objects where nobody can read them (the test's own scratch directory is private).
    const dir = mkdtempSync(join(tmpdir(), 'kmesh-vm-nobody-'));
    try {
      chmodSync(dir, 0o755);
      const objs = dataPathObjects();
      const paths = (['connect', 'sockops', 'sendmsg'] as const).map((k) => {
        const p = join(dir, `${k}.o`);
        copyFileSync(objs[k], p);
        chmodSync(p, 0o644);
        return p;
      });
      const node = [process.execPath, '--import', join(FIXTURES, 'ts-register.mjs'), join(FIXTURES, 'unprivileged-run.ts'), ...paths];
      const { prefix, nobody } = unprivilegedPrefix(join(FIXTURES, 'unprivileged-run.ts'));
      const [cmd, ...args] = [...prefix, ...node];
      const out = execFileSync(cmd!, args, { encoding: 'utf8', cwd: dir });
      const r = JSON.parse(out.trim().split('\n').pop()!) as { uid: number; bpfDenied: boolean; connect: { peer: { addr: string } | null; error: string | null }; peers: string[] };
      expect(r.bpfDenied).toBe(true);
      if (nobody) expect(r.uid).toBe(65534);
      expect(r.connect.error).toBeNull();
      expect(['10.0.1.1', '10.0.1.2']).toContain(r.connect.peer?.addr);
      expect(r.peers).toEqual(['10.0.1.1', '10.0.1.2']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
