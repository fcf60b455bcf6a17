// Counterexample exports: the bpftool batch file names every entry of the state, addresses maps
// only under the case's private pin folder (never by name or id), and its documented commands
// apply it there on this machine without touching a host map of the same name, then remove the
// pins. (The regression test export is run from an installed package in package.test.ts.)

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultObjects } from '../../shared/package.js';
import { bpftoolApplyCommands, bpftoolBatch, casePinDir } from '../../cli/export.js';
import type { Case } from '../../model/domain.js';

const CASE: Case = {
  kind: 'consistent',
  enrolled: true,
  ops: [],
  state: {
    frontends: [{ addr: '10.0.0.1', upstreamId: 1 }],
    services: [
      {
        id: 1,
        endpointCounts: [1, 0, 0, 0, 0, 0, 0],
        lbPolicy: 0,
        servicePorts: [80, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        targetPorts: [8080, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        waypoint: { addr: '0.0.0.0', port: 0 },
      },
    ],
    endpoints: [{ serviceId: 1, prio: 0, index: 1, backendUid: 7 }],
    backends: [{ uid: 7, addr: '10.0.1.7', services: [1], waypoint: { addr: '0.0.0.0', port: 0 } }],
  },
} as Case;

const bpftool = (...args: string[]) => spawnSync('bpftool', args, { encoding: 'utf8' });

describe('bpftool batch export', () => {
  it('writes every entry of the state, one update per line, addressed under the private pin folder only', () => {
    const pin = casePinDir(CASE, 'abc123');
    expect(pin).toBe('/sys/fs/bpf/kmesh-check-abc123');
    const text = bpftoolBatch(CASE, { id: 'abc123', connectObject: '/x/cgroup_sock.o' });
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(`map update pinned ${pin}/maps/km_frontend key hex 0a 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 value hex 01 00 00 00`);
    for (const l of lines) expect(l).toMatch(new RegExp(`^map update pinned ${pin}/maps/km_\\w+ key hex `));
    expect(text).not.toMatch(/ name km_| id \d/);
    // service_value: port 80 is 00 50 00 00 at offset 32, target 8080 (1f 90) at offset 72.
    const service = lines
      .find((l) => l.includes('km_service'))!
      .split(' value hex ')[1]!
      .split(' ');
    expect(service).toHaveLength(132);
    expect(service.slice(32, 36)).toEqual(['00', '50', '00', '00']);
    expect(service.slice(72, 76)).toEqual(['1f', '90', '00', '00']);
    // The header says how to apply it safely and how to clean up.
    expect(text).toMatch(new RegExp(`^#   bpftool prog loadall /x/cgroup_sock.o ${pin}/progs pinmaps ${pin}/maps$`, 'm'));
    expect(text).toMatch(new RegExp(`^#   rm -rf ${pin}\\b`, 'm'));
    // Without an id the folder is still private to the case: a hash of it.
    expect(casePinDir(CASE)).toMatch(/^\/sys\/fs\/bpf\/kmesh-check-[0-9a-f]{12}$/);
    expect(casePinDir({ ...CASE, enrolled: false })).not.toBe(casePinDir(CASE));
  });

  it('prepares the pin folder where no bpffs is mounted on /sys/fs/bpf yet (shown in a private mount namespace)', () => {
    if (process.geteuid?.() !== 0) throw new Error('mounting bpffs needs root: run the suite as root');
    const pin = casePinDir(CASE, `fresh${process.pid}`);
    const prepare = bpftoolApplyCommands(pin, 'unused.o', 'unused.bpftool').prepare;
    // Unmounted there, /sys/fs/bpf is a sysfs folder, where mkdir fails; the host's mounts stay as they are.
    const script = `while umount /sys/fs/bpf 2>/dev/null; do :; done; stat -f -c %T /sys/fs/bpf; "$@" && stat -f -c %T /sys/fs/bpf && test -d ${pin}`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', ...prepare], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['sysfs', 'bpf_fs']);
    expect(existsSync(pin)).toBe(false);
  });

  it('applies into the private pin folder on this machine, leaves a host map of the same name alone, and removes its pins', () => {
    if (process.geteuid?.() !== 0) throw new Error('applying a bpftool batch needs root: run the suite as root');
    const id = `test${process.pid}`;
    const pin = casePinDir(CASE, id);
    const decoy = `/sys/fs/bpf/kc-decoy-${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), 'kc-batch-'));
    const batch = join(dir, 'case.bpftool');
    writeFileSync(batch, bpftoolBatch(CASE, { id, connectObject: defaultObjects().connect, batchFile: batch }));
    // A map called km_frontend as a host's data path would have: the batch must not write it.
    expect(bpftool('map', 'create', decoy, 'type', 'hash', 'key', '16', 'value', '4', 'entries', '64', 'name', 'km_frontend').status).toBe(0);
    const cmds = bpftoolApplyCommands(pin, defaultObjects().connect, batch);
    const progIds: number[] = [];
    try {
      expect(spawnSync(cmds.prepare[0]!, cmds.prepare.slice(1)).status).toBe(0);
      const load = spawnSync(cmds.load[0]!, cmds.load.slice(1), { encoding: 'utf8' });
      expect(load.status, load.stderr).toBe(0);
      const apply = spawnSync(cmds.apply[0]!, cmds.apply.slice(1), { encoding: 'utf8' });
      expect(apply.status, apply.stderr + apply.stdout).toBe(0);
      const dump = (where: string) => JSON.parse(bpftool('-j', 'map', 'dump', 'pinned', where).stdout) as unknown[];
      expect(dump(`${pin}/maps/km_frontend`)).toHaveLength(1);
      expect(dump(`${pin}/maps/km_backend`)).toHaveLength(1);
      expect(dump(decoy)).toHaveLength(0);
      // The loaded copy's programs are pinned there too (and attached nowhere).
      for (const name of readdirSync(`${pin}/progs`)) {
        const prog = JSON.parse(bpftool('-j', 'prog', 'show', 'pinned', `${pin}/progs/${name}`).stdout) as { id: number };
        progIds.push(prog.id);
      }
      expect(progIds.length).toBeGreaterThanOrEqual(2);
      const mapId = (JSON.parse(bpftool('-j', 'map', 'show', 'pinned', `${pin}/maps/km_frontend`).stdout) as { id: number }).id;
      progIds.push(-mapId);
    } finally {
      const clean = spawnSync(cmds.cleanup[0]!, cmds.cleanup.slice(1));
      expect(clean.status).toBe(0);
      bpftool('map', 'dump', 'pinned', decoy);
      spawnSync('rm', ['-f', decoy]);
    }
    expect(existsSync(pin)).toBe(false);
    // Removing the pins dropped the last references: the copy's programs and maps are gone.
    // (The kernel frees them asynchronously, so wait for that rather than for a time.)
    for (const id of progIds) {
      const what = id > 0 ? ['prog', 'show', 'id', String(id)] : ['map', 'show', 'id', String(-id)];
      let gone = false;
      for (let i = 0; i < 200 && !gone; i++) {
        gone = bpftool(...what).status !== 0;
        if (!gone) spawnSync('sleep', ['0.05']);
      }
      expect(gone, what.join(' ')).toBe(true);
    }
    // With the pins gone nothing is there to write into: applying again fails instead of writing elsewhere.
    const again = bpftool('batch', 'file', batch);
    expect(again.status).not.toBe(0);
  });
});
