// Finds the section 6 hooks (cgroup/sendmsg4, cgroup/recvmsg4, cgroup/recvmsg6) in the loaded
// objects, by ELF section, and attaches each to the harness cgroup through a link. Objects
// without them are checked without them: the caller reports which were attached.

import koffi from 'koffi';
import { DNS_HOOK_SECTIONS, type DnsHook } from '../codec/abi.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { libbpf } from './libbpf.js';
import { errnoName } from './libc.js';

const lib = koffi.load('libbpf.so.1');
const sectionName = lib.func('const char *bpf_program__section_name(void *prog)') as (prog: bigint) => string;

/** enum bpf_attach_type of each hook. */
const ATTACH_TYPE: Readonly<Record<DnsHook, number>> = { sendmsg4: 14, recvmsg4: 19, recvmsg6: 20 };

/**
 * Attaches the first program of each hook's section found in `objects` (open and loaded libbpf
 * objects) to the cgroup; pushes the link fds onto `links`; returns the hooks attached.
 */
export function attachDnsHooks(objects: readonly bigint[], cgroupFd: number, links: number[]): DnsHook[] {
  const attached: DnsHook[] = [];
  for (const hook of Object.keys(DNS_HOOK_SECTIONS) as DnsHook[]) {
    let prog: bigint | null = null;
    for (const obj of objects) {
      for (let p = libbpf.nextProgram(obj, null); p && prog === null; p = libbpf.nextProgram(obj, p)) {
        if (sectionName(p) === DNS_HOOK_SECTIONS[hook]) prog = p;
      }
      if (prog !== null) break;
    }
    if (prog === null) continue;
    const fd = libbpf.programFd(prog);
    const rc = libbpf.linkCreate(fd, cgroupFd, ATTACH_TYPE[hook], null);
    if (rc < 0) throw new KmeshCheckError('attach', `cannot attach ${libbpf.programName(prog)} (${DNS_HOOK_SECTIONS[hook]}) to the cgroup (${errnoName(rc)})`);
    links.push(rc);
    attached.push(hook);
  }
  return attached;
}
