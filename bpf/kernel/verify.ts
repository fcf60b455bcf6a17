// The kernel's verifier over the objects a VM run checks. The VM runs the programs it is given,
// so a program the kernel refuses to load (a blind hunter's report-path refactoring that read a
// socket's fields without the checks the verifier asks for) passed there. Each object is opened
// and loaded on its own (its maps created, nothing attached, no tail-call slot filled: none of that
// changes what the verifier accepts) and closed at once.

import { KmeshCheckError } from '../../shared/errors.js';
import { captureLibbpfLog, libbpf, takeLibbpfLog } from './libbpf.js';
import { checkElf, loadError } from './loader.js';

/** Throws the kernel executor's one-line error (object-file, load, verifier, privileges) for the first object the kernel would not load. */
export function verifyObjects(objects: readonly { readonly what: string; readonly path: string }[]): void {
  captureLibbpfLog();
  const seen = new Set<string>();
  for (const { what, path } of objects) {
    if (seen.has(path)) continue;
    seen.add(path);
    checkElf(what, path);
    takeLibbpfLog();
    const handle = libbpf.objectOpenFile(path, null);
    if (!handle) throw new KmeshCheckError('load', `libbpf cannot open ${what} object ${path}: ${takeLibbpfLog().trim().split('\n').slice(-2).join(' | ') || 'no libbpf log'}`);
    try {
      takeLibbpfLog();
      const rc = libbpf.objectLoad(handle);
      if (rc < 0) throw loadError({ path }, rc, takeLibbpfLog());
    } finally {
      libbpf.objectClose(handle);
    }
  }
}
