// The VM refuses objects whose maps differ from the ABI tables (bpf/codec/abi.ts checkMapShape) in
// one line naming the map, its object and what the table says: capacity and the no-prealloc flag
// as well as type and sizes, in the routing and the acceleration objects alike; and check refuses
// named acceleration and report objects so before any work (exit 2), on any executor.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { AccelVmExecutor } from '../../bpf/vm/accel-executor.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { spawnSync } from 'node:child_process';
import { buildVariant, objectsOf, reportObjectsOf, WIDE_AUTH_VERDICT, type SourceEdit } from '../helpers/variant.js';
import { packageRoot } from '../../shared/package.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function variant(edits: readonly SourceEdit[]): (object: string) => string {
  const dir = mkdtempSync(join(tmpdir(), 'kc-map-abi-'));
  dirs.push(dir);
  return buildVariant(dir, edits);
}

async function refusal(start: () => Promise<unknown>): Promise<KmeshCheckError> {
  try {
    await start();
  } catch (e) {
    if (e instanceof KmeshCheckError) return e;
    throw e;
  }
  throw new Error('the objects were accepted');
}

describe('map ABI on the VM', () => {
  it('a routing map of another capacity', async () => {
    const o = variant([['abi.h', '#define KM_MAP_MANAGE_MAX\t8192', '#define KM_MAP_MANAGE_MAX\t1024']]);
    const e = await refusal(() => createVmExecutor({ objects: objectsOf(o) }));
    expect(e.code).toBe('abi-mismatch');
    expect(e.message).toMatch(/^map km_manage in cgroup_sock\.o: max_entries 1024, expected 8192 \(kmesh-dataplane\.md section 2\)$/);
  });

  it('km_frontend preallocated', async () => {
    const o = variant([['maps.h', '__uint(map_flags, BPF_F_NO_PREALLOC);', '']]);
    const e = await refusal(() => createVmExecutor({ objects: objectsOf(o) }));
    expect(e.message).toMatch(/^map km_frontend in cgroup_sock\.o: preallocated \(no BPF_F_NO_PREALLOC in its map_flags\), expected no prealloc/);
  });

  it('an acceleration map of another capacity or type, named with its object', async () => {
    const small = variant([['accel_abi.h', '#define MA_MAP_SOCK_MAX\t\t196608', '#define MA_MAP_SOCK_MAX\t\t65536']]);
    const e = await refusal(() => AccelVmExecutor.start({ ops: small('ma_ops'), redirect: small('ma_redirect') }));
    expect(e.message).toMatch(/^map sock_ops_map in ma_ops\.o: max_entries 65536, expected 196608 \(kmesh-dataplane\.md section 8\)$/);
    const lru = variant([['accel_abi.h', '__uint(type, BPF_MAP_TYPE_HASH);', '__uint(type, BPF_MAP_TYPE_LRU_HASH);']]);
    const t = await refusal(() => AccelVmExecutor.start({ ops: lru('ma_ops'), redirect: lru('ma_redirect') }));
    expect(t.message).toMatch(/^map sock_proxy_map in ma_ops\.o: type lru_hash \(9\), expected hash \(1\) \(kmesh-dataplane\.md section 8\)$/);
  });

  it('check refuses named acceleration and report objects whose maps differ, before any work', () => {
    const lru = variant([['accel_abi.h', '__uint(type, BPF_MAP_TYPE_HASH);', '__uint(type, BPF_MAP_TYPE_LRU_HASH);']]);
    const wide = reportObjectsOf(variant([WIDE_AUTH_VERDICT]));
    const cases: Array<[string[], RegExp]> = [
      [['--accel-objects', `ma_ops=${lru('ma_ops')},ma_redirect=${lru('ma_redirect')}`], /^kmesh-check: map sock_proxy_map in ma_ops\.o: type lru_hash \(9\), expected hash \(1\)/],
      [['--report-objects', `${wide.connect},${wide.sockops},${wide.sendmsg},${wide.skb}`], /^kmesh-check: map km_auth_res in \w+\.o: value size 8 B, expected 4 B \(u32\)$/],
    ];
    for (const [args, message] of cases) {
      // The model runs no objects: the named ones are still looked at, before anything runs.
      const r = spawnSync(process.execPath, [join(packageRoot(), 'bin/kmesh-check.js'), 'check', '--executor', 'model', '--runs', '10', '--no-failure-db', ...args], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stdout).not.toContain('verdict');
    }
  });
});
