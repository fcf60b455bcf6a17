// A case sees nothing of the cases before it on the kernel, also through maps outside the ABI:
// the worker puts them back before every case (bpf/user/setup-ops.c kf_reset_maps), with the
// cases of test/support/isolation-cases.ts: an array, and the same map as a per-CPU array; and
// so does the report harness, through the same shim.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKernelExecutor } from '../../bpf/kernel/executor.js';
import { buildMutant } from '../../cli/mutants.js';
import type { ObjectPaths } from '../../model/executor.js';
import { membershipByMonitoring, replyAfterWrites } from '../support/isolation-cases.js';
import { buildVariant, objectsOf, reportObjectsOf } from '../helpers/variant.js';
import { runReportCases } from '../../bpf/kernel/report/run.js';
import type { ReportObjectPaths } from '../../bpf/kernel/report/loader.js';
import type { ReportCase } from '../../model/report/domain.js';
import { REPORT_STATE } from '../../generators/report.js';

/** dns-server-global with its node-wide entry in a per-CPU array (the worker runs on one CPU at a time), built in `dir`. */
function perCpuVariant(dir: string): ObjectPaths {
  const global = buildMutant('dns-server-global');
  const o = buildVariant(dir, [['dns_server.h', 'BPF_MAP_TYPE_ARRAY)', 'BPF_MAP_TYPE_PERCPU_ARRAY)']], join(dirname(global.connect), 'src'));
  return objectsOf(o);
}

/**
 * dns-server-global with its node-wide entry in a hash map of 4096 entries, created on first use,
 * built in `dir`: the harness empties it before every case, and loads it with 256 entries (walking
 * every bucket of the object's capacity each case cost more than the case's writes).
 */
function hashVariant(dir: string): ObjectPaths {
  const global = buildMutant('dns-server-global');
  const o = buildVariant(
    dir,
    [
      ['dns_server.h', 'BPF_MAP_TYPE_ARRAY)', 'BPF_MAP_TYPE_HASH)'],
      ['dns_server.h', '__uint(max_entries, 1);', '__uint(max_entries, 4096);'],
      [
        'dns_server.h',
        '\treturn bpf_map_lookup_elem(&km_dns_server, &zero);',
        '\tstruct dns_server_data none = {};\n\n\tbpf_map_update_elem(&km_dns_server, &zero, &none, BPF_NOEXIST);\n\treturn bpf_map_lookup_elem(&km_dns_server, &zero);',
      ],
    ],
    join(dirname(global.connect), 'src'),
  );
  return objectsOf(o);
}

describe('cases are isolated through maps outside the ABI', () => {
  it('on the kernel: arrays and per-CPU arrays', async () => {
    if (process.geteuid?.() !== 0) throw new Error('the kernel executor requires root: run this test as root or with sudo');
    expect(await replyAfterWrites(await createKernelExecutor({ objects: buildMutant('dns-server-global') }))).toBe('10.1.0.1');
    const dir = mkdtempSync(join(tmpdir(), 'kc-percpu-'));
    try {
      expect(await replyAfterWrites(await createKernelExecutor({ objects: perCpuVariant(dir) }))).toBe('10.1.0.1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on the kernel: hash maps, emptied before each case and loaded with at most 256 entries', async () => {
    if (process.geteuid?.() !== 0) throw new Error('the kernel executor requires root: run this test as root or with sudo');
    const dir = mkdtempSync(join(tmpdir(), 'kc-hash-'));
    try {
      const executor = await createKernelExecutor({ objects: hashVariant(dir) });
      try {
        const { resets } = await executor.info();
        expect(resets).toContainEqual({ name: 'km_dns_server', maxEntries: 256 });
        // The section 7 map the harness never writes: reset too, at the same capacity.
        expect(resets).toContainEqual({ name: 'km_auth_res', maxEntries: 256 });
      } catch (e) {
        await executor.close();
        throw e;
      }
      expect(await replyAfterWrites(executor)).toBe('10.1.0.1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on the kernel: each case runs with its own enable_monitoring, whole cases and one by one', async () => {
    if (process.geteuid?.() !== 0) throw new Error('the kernel executor requires root: run this test as root or with sudo');
    const pattern = [false, true, true, false, false, true];
    const objects = buildMutant('waypoint-needs-monitoring');
    expect(await membershipByMonitoring(await createKernelExecutor({ objects }), pattern)).toEqual(pattern);
    expect(await membershipByMonitoring(await createKernelExecutor({ objects, wholeCases: false }), pattern)).toEqual(pattern);
    expect(await membershipByMonitoring(await createKernelExecutor({}), pattern)).toEqual(pattern.map(() => true));
  });
});

/**
 * Our report objects with a node-wide flag outside the ABI (an array) that lets only the first
 * authorization request out: a harness that left it set would hold every later case to it.
 */
function requestOnceVariant(dir: string): ReportObjectPaths {
  const once = [
    'struct {',
    '\t__uint(type, BPF_MAP_TYPE_ARRAY);',
    '\t__type(key, __u32);',
    '\t__type(value, __u32);',
    '\t__uint(max_entries, 1);',
    '} km_auth_once SEC(".maps");',
    '',
    'static __always_inline void auth_request(',
  ].join('\n');
  const gate = '\tif (auth_peer_exempt(v))\n\t\treturn;\n\t{\n\t\t__u32 zero = 0, *sent = bpf_map_lookup_elem(&km_auth_once, &zero);\n\n\t\tif (!sent || *sent)\n\t\t\treturn;\n\t\t*sent = 1;\n\t}\n';
  const o = buildVariant(dir, [
    ['auth.h', 'static __always_inline void auth_request(', once],
    ['auth.h', '\tif (auth_peer_exempt(v))\n\t\treturn;\n\t__builtin_memset(&msg', `${gate}\t__builtin_memset(&msg`],
  ]);
  return reportObjectsOf(o);
}

describe('report cases are isolated through maps outside the ABI', () => {
  it('on the kernel: each case gets the request a node-wide flag lets out once', () => {
    if (process.geteuid?.() !== 0) throw new Error('the kernel executor requires root: run this test as root or with sudo');
    const dir = mkdtempSync(join(tmpdir(), 'kc-once-'));
    try {
      const conn = { connectTo: { addr: '127.0.0.1', port: 8080 }, listen: { addr: '127.0.0.1', port: 8080 }, sends: [], firstClose: 'client' as const, storeVerdict: false };
      const c: ReportCase = { monitoring: true, periodic: false, state: REPORT_STATE, conns: [conn] };
      expect(runReportCases([c, c], requestOnceVariant(dir)).map((o) => o.auth.length)).toEqual([1, 1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
