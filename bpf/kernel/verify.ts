// The kernel's verifier over the objects a run will check, before the run: the VM runs the
// programs it is given, so a program the kernel refuses to load (a blind hunter's report-path
// refactoring that read a socket's fields the way the verifier forbids) passed there; and the
// kernel executor found a refused report or acceleration object only when its phase began, after
// the routing phases. Each phase's objects are opened and loaded in order, sharing maps by name as
// its loader does (a gcc-built object whose BTF the kernel refuses cannot create an sk_storage map
// of its own, but runs on the one an earlier object made), nothing attached, and closed at once.

import { KmeshCheckError } from '../../shared/errors.js';
import { captureLibbpfLog, libbpf, mapsOf, takeLibbpfLog } from './libbpf.js';
import { checkElf, lastLines, loadError } from './loader.js';
import { errnoName } from './libc.js';

export interface ObjectToVerify {
  /** What it is for, as an error names it ("connect", "report cgroup_skb", "acceleration"). */
  readonly what: string;
  readonly path: string;
}

/**
 * Throws the kernel executor's one-line error (object-file, load, verifier, privileges) for the
 * first object the kernel would not load. `groups`: the objects of each phase, in load order.
 */
export function verifyObjects(groups: readonly (readonly ObjectToVerify[])[]): void {
  captureLibbpfLog();
  for (const group of groups) {
    const open: bigint[] = [];
    // Maps of the objects loaded before, by name; a name with a dot is an object's own data (.data, .bss, .rodata).
    const shared = new Map<string, number>();
    try {
      for (const { what, path } of group) {
        checkElf(what, path);
        takeLibbpfLog();
        const handle = libbpf.objectOpenFile(path, null);
        if (!handle) throw new KmeshCheckError('load', `libbpf cannot open ${what} object ${path}: ${lastLines(takeLibbpfLog(), 2) || 'no libbpf log'}`);
        open.push(handle);
        for (const m of mapsOf(handle)) {
          // Declared pinning would pin the map under /sys/fs/bpf at load (or take one pinned there): not for a trial load.
          libbpf.mapSetPinPath(m.ptr, null);
          const fd = shared.get(m.name);
          if (fd === undefined) continue;
          const rc = libbpf.mapReuseFd(m.ptr, fd);
          if (rc < 0) throw new KmeshCheckError('load', `cannot share map ${m.name} with ${path} (${errnoName(rc)})`);
        }
        takeLibbpfLog();
        const rc = libbpf.objectLoad(handle);
        if (rc < 0) throw loadError({ path }, rc, takeLibbpfLog());
        for (const m of mapsOf(handle)) if (!m.name.includes('.') && !shared.has(m.name)) shared.set(m.name, libbpf.mapFd(m.ptr));
      }
    } finally {
      for (const h of open) libbpf.objectClose(h);
    }
  }
}
