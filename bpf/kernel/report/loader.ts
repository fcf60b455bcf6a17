// Loads the routing objects (connect, sockops, sendmsg) and the cgroup_skb object for the report
// checks, sharing every named map among them (km_manage, km_sockstorage, km_tcp_probe, ...),
// attaches all of them to the cgroup (sk_msg to km_socket first), and sets the objects' globals
// through their global-data maps (.data / .bss) after load, as user space does. Variable offsets
// come from each object's symbol table (bpf/vm/link.ts reads it without the kernel).

import { closeSync } from 'node:fs';
import { basename } from 'node:path';
import type { ObjectPaths } from '../../../model/executor.js';
import { KmeshCheckError, NEEDS_ROOT } from '../../../shared/errors.js';
import { ATTACH, captureLibbpfLog, libbpf, mapsOf, takeLibbpfLog } from '../libbpf.js';
import { E, errnoName } from '../libc.js';
import { ENABLE_MONITORING, type MapName } from '../../codec/abi.js';
import { globalSetter } from '../globals.js';
import { HARNESS_MAX_ENTRIES, mapShape, resettableMaps, summariseVerifierLog, type ResetMap } from '../loader.js';
import { REPORT_PROGRAMS, checkReportMap } from '../../codec/report.js';

export interface ReportObjectPaths extends ObjectPaths {
  /** The object holding cgroup_skb_ingress_prog and cgroup_skb_egress_prog. */
  readonly skb: string;
}

const CGROUP_INET_INGRESS = 0;
const CGROUP_INET_EGRESS = 1;

/** Programs by object role and how each is attached. */
const ATTACHMENTS: ReadonlyArray<{ role: keyof ReportObjectPaths; prog: string; type: number | 'sockhash' }> = [
  { role: 'connect', prog: REPORT_PROGRAMS.connect[0], type: ATTACH.inet4Connect },
  { role: 'connect', prog: REPORT_PROGRAMS.connect[1], type: ATTACH.inet6Connect },
  { role: 'sockops', prog: REPORT_PROGRAMS.sockops[0], type: ATTACH.sockOps },
  { role: 'sendmsg', prog: REPORT_PROGRAMS.sendmsg[0], type: 'sockhash' },
  { role: 'skb', prog: REPORT_PROGRAMS.skb[0], type: CGROUP_INET_INGRESS },
  { role: 'skb', prog: REPORT_PROGRAMS.skb[1], type: CGROUP_INET_EGRESS },
];

export interface Globals {
  readonly enableMonitoring?: number;
  readonly enablePeriodicReport?: number;
  /** 16 bytes each (v4-mapped IPv4). */
  readonly nodeIp?: Uint8Array;
  readonly podGateway?: Uint8Array;
}

export interface LoadedReportPath {
  readonly maps: ReadonlyMap<string, number>;
  /** Maps outside the ABI, put back before every case (the shim's kf_reset_maps, as in the kernel worker). */
  readonly resettable: readonly ResetMap[];
  setGlobals(g: Globals): void;
  close(): void;
}

export function loadReportPath(paths: ReportObjectPaths, cgroupFd: number): LoadedReportPath {
  captureLibbpfLog();
  const roles = ['connect', 'sockops', 'sendmsg', 'skb'] as const;
  const objects: Array<{ role: (typeof roles)[number]; path: string; handle: bigint }> = [];
  const links: number[] = [];
  let verdict: { prog: number; map: number } | null = null;
  const release = () => {
    for (const l of links.splice(0)) closeSync(l);
    if (verdict) libbpf.progDetach2(verdict.prog, verdict.map, ATTACH.skMsgVerdict);
    verdict = null;
    for (const o of objects.splice(0)) libbpf.objectClose(o.handle);
  };
  try {
    const shared = new Map<string, number>();
    for (const role of roles) {
      takeLibbpfLog();
      const handle = libbpf.objectOpenFile(paths[role], null);
      if (!handle) throw new KmeshCheckError('load', `libbpf cannot open ${role} object ${paths[role]}: ${takeLibbpfLog().trim().split('\n').at(-1) ?? ''}`);
      objects.push({ role, path: paths[role], handle });
      for (const m of mapsOf(handle)) {
        checkReportMap(`map ${m.name} in ${basename(paths[role])}`, m.name, mapShape(m.ptr));
        const max = HARNESS_MAX_ENTRIES[m.name as MapName];
        if (max !== undefined) libbpf.mapSetMaxEntries(m.ptr, max);
        const fd = shared.get(m.name);
        if (fd !== undefined && !m.name.includes('.') && libbpf.mapReuseFd(m.ptr, fd) < 0) throw new KmeshCheckError('load', `cannot share map ${m.name} with ${basename(paths[role])}`);
      }
      const rc = libbpf.objectLoad(handle);
      if (rc < 0) {
        if (-rc === E.EPERM) throw new KmeshCheckError('privileges', `loading ${basename(paths[role])}: EPERM: ${NEEDS_ROOT}`);
        const v = summariseVerifierLog(takeLibbpfLog());
        throw new KmeshCheckError(v ? 'verifier' : 'load', v ? `verifier rejected program '${v.program ?? '?'}' in ${paths[role]}: ${v.message}` : `loading ${paths[role]} failed (${errnoName(rc)})`);
      }
      // Global-data maps (named after their section) stay the object's own.
      for (const m of mapsOf(handle)) if (!/\.(data|bss)$/.test(m.name) && !shared.has(m.name)) shared.set(m.name, libbpf.mapFd(m.ptr));
    }
    const fdOf = (role: string, prog: string) => {
      const o = objects.find((x) => x.role === role)!;
      const p = libbpf.findProgram(o.handle, prog);
      if (!p) throw new KmeshCheckError('object-content', `${role} object ${o.path} has no program '${prog}'`);
      return libbpf.programFd(p);
    };
    const slot = (map: string, index: number, prog: number) => {
      const rc = libbpf.mapUpdate(shared.get(map)!, new Uint8Array(new Uint32Array([index]).buffer), new Uint8Array(new Uint32Array([prog]).buffer), 0);
      if (rc < 0) throw new KmeshCheckError('attach', `cannot put ${map}[${index}] (${errnoName(rc)})`);
    };
    slot('km_cgr_tailcall', 0, fdOf('connect', 'cgroup_connect4_prog'));
    slot('km_cgr_tail6', 1, fdOf('connect', 'cgroup_connect6_prog'));
    for (const a of ATTACHMENTS) {
      const prog = fdOf(a.role, a.prog);
      if (a.type === 'sockhash') {
        const map = shared.get('km_socket')!;
        const rc = libbpf.progAttach(prog, map, ATTACH.skMsgVerdict, 0);
        if (rc < 0) throw new KmeshCheckError('attach', `cannot attach ${a.prog} to km_socket (${errnoName(rc)})`);
        verdict = { prog, map };
        continue;
      }
      const rc = libbpf.linkCreate(prog, cgroupFd, a.type, null);
      if (rc < 0) throw new KmeshCheckError('attach', `cannot attach ${a.prog} to the cgroup (${errnoName(rc)})`);
      links.push(rc);
    }
    const setVar = globalSetter(objects);
    const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
    return {
      maps: shared,
      resettable: resettableMaps(objects.map((o) => o.handle)),
      setGlobals(g: Globals) {
        if (g.enableMonitoring !== undefined) setVar(ENABLE_MONITORING, u32(g.enableMonitoring));
        if (g.enablePeriodicReport !== undefined) setVar('enable_periodic_report', u32(g.enablePeriodicReport));
        if (g.nodeIp) setVar('node_ip', g.nodeIp);
        if (g.podGateway) setVar('pod_gateway', g.podGateway);
      },
      close: release,
    };
  } catch (e) {
    release();
    throw e;
  }
}
