// Loads the acceleration pair (ma_ops in one object, ma_redirect in another; or both in one),
// checks the three maps against section 8's table, shares them by name, and attaches: ma_redirect
// to sock_ops_map as msg_verdict first (before any socket can be inserted, kernel-notes.md), then
// ma_ops to the cgroup through a link (it dies with the process).

import { closeSync, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { ACCEL_MAPS, ACCEL_PROGRAMS, checkAccelMapShape, type AccelMapName } from '../../codec/accel.js';
import type { AccelObjectPaths } from '../../../shared/package.js';
import { KmeshCheckError, NEEDS_ROOT } from '../../../shared/errors.js';
import { ATTACH, captureLibbpfLog, libbpf, mapsOf, takeLibbpfLog } from '../libbpf.js';
import { E, errnoName } from '../libc.js';
import { mapShape, summariseVerifierLog } from '../loader.js';

export { ACCEL_PROGRAMS } from '../../codec/accel.js';
export type { AccelObjectPaths } from '../../../shared/package.js';

/**
 * The harness walks the sockhash and the proxy map after every case; their ABI capacity (196608)
 * makes a walk visit that many buckets. A case holds a handful of sockets, so 1024 changes nothing
 * observable.
 */
export const ACCEL_HARNESS_MAX_ENTRIES = 1024;

export interface LoadedAccel {
  readonly maps: Readonly<Record<AccelMapName, number>>;
  close(): void;
}

function checkMap(path: string, name: AccelMapName, ptr: bigint): void {
  checkAccelMapShape(`map ${name} in ${basename(path)}`, name, mapShape(ptr));
}

export function loadAccel(paths: AccelObjectPaths, cgroupFd: number): LoadedAccel {
  captureLibbpfLog();
  const files = paths.ops === paths.redirect ? [paths.ops] : [paths.ops, paths.redirect];
  const handles: Array<{ path: string; handle: bigint }> = [];
  let link = -1;
  let verdict: { prog: number; map: number } | null = null;
  const release = () => {
    if (link >= 0) closeSync(link);
    link = -1;
    if (verdict) libbpf.progDetach2(verdict.prog, verdict.map, ATTACH.skMsgVerdict);
    verdict = null;
    for (const h of handles.splice(0)) libbpf.objectClose(h.handle);
  };
  try {
    for (const path of files) {
      if (!existsSync(path)) throw new KmeshCheckError('object-file', `acceleration object ${path} does not exist: build it (npm run build:bpf) or give the right path`);
      takeLibbpfLog();
      const handle = libbpf.objectOpenFile(path, null);
      if (!handle) throw new KmeshCheckError('load', `libbpf cannot open ${path}: ${takeLibbpfLog().trim().split('\n').at(-1) ?? 'no libbpf log'}`);
      handles.push({ path, handle });
    }
    const find = (name: string) => {
      for (const h of handles) {
        const p = libbpf.findProgram(h.handle, name);
        if (p) return p;
      }
      throw new KmeshCheckError('object-content', `no acceleration object has program '${name}' (${files.map((f) => basename(f)).join(', ')})`);
    };
    find(ACCEL_PROGRAMS.ops);
    find(ACCEL_PROGRAMS.redirect);
    const defined = new Set<string>();
    for (const h of handles) {
      for (const m of mapsOf(h.handle)) {
        const abi = ACCEL_MAPS.find((a) => a.name === m.name);
        if (!abi) continue;
        checkMap(h.path, abi.name, m.ptr);
        if (abi.type !== 2) libbpf.mapSetMaxEntries(m.ptr, ACCEL_HARNESS_MAX_ENTRIES);
        defined.add(m.name);
      }
    }
    for (const m of ACCEL_MAPS) {
      if (!defined.has(m.name)) throw new KmeshCheckError('object-content', `no acceleration object defines map ${m.name} (kmesh-dataplane.md section 8)`);
    }
    const shared = new Map<string, number>();
    for (const h of handles) {
      for (const m of mapsOf(h.handle)) {
        const fd = shared.get(m.name);
        if (fd !== undefined && libbpf.mapReuseFd(m.ptr, fd) < 0) throw new KmeshCheckError('load', `cannot share map ${m.name} with ${basename(h.path)}`);
      }
      takeLibbpfLog();
      const rc = libbpf.objectLoad(h.handle);
      if (rc < 0) {
        if (-rc === E.EPERM) throw new KmeshCheckError('privileges', `loading ${basename(h.path)}: bpf() says EPERM: ${NEEDS_ROOT}`);
        const log = takeLibbpfLog();
        const v = summariseVerifierLog(log);
        if (v) throw new KmeshCheckError('verifier', `verifier rejected program '${v.program ?? '?'}' in ${h.path}: ${v.message}`);
        throw new KmeshCheckError('load', `loading ${h.path} failed (${errnoName(rc)}): ${log.trim().split('\n').slice(-2).join(' | ') || 'no libbpf log'}`);
      }
      for (const m of mapsOf(h.handle)) if (!shared.has(m.name)) shared.set(m.name, libbpf.mapFd(m.ptr));
    }
    const maps = Object.fromEntries(ACCEL_MAPS.map((m) => [m.name, shared.get(m.name)!])) as Record<AccelMapName, number>;
    const opsFd = libbpf.programFd(find(ACCEL_PROGRAMS.ops));
    const redirectFd = libbpf.programFd(find(ACCEL_PROGRAMS.redirect));
    let rc = libbpf.progAttach(redirectFd, maps.sock_ops_map, ATTACH.skMsgVerdict, 0);
    if (rc < 0) throw new KmeshCheckError('attach', `cannot attach ${ACCEL_PROGRAMS.redirect} to sock_ops_map as msg_verdict (${errnoName(rc)})`);
    verdict = { prog: redirectFd, map: maps.sock_ops_map };
    rc = libbpf.linkCreate(opsFd, cgroupFd, ATTACH.sockOps, null);
    if (rc < 0) {
      if (-rc === E.EPERM) throw new KmeshCheckError('privileges', `attaching ${ACCEL_PROGRAMS.ops} to the cgroup: EPERM: ${NEEDS_ROOT}`);
      throw new KmeshCheckError('attach', `cannot attach ${ACCEL_PROGRAMS.ops} to the cgroup (${errnoName(rc)}): is the cgroup on a cgroup2 mount?`);
    }
    link = rc;
    return { maps, close: release };
  } catch (e) {
    release();
    throw e;
  }
}
