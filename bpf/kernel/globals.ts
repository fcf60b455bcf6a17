// An object's global variables set after load, as user space sets them: through the object's
// global-data map (.data or .bss), at the variable's offset in its section, which the object's
// symbol table gives (bpf/vm/link.ts reads it without the kernel).

import { linkObject } from '../vm/link.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { libbpf, mapsOf } from './libbpf.js';

export interface LoadedObject {
  readonly role: string;
  readonly path: string;
  readonly handle: bigint;
}

/** Sets global `name` to `bytes` in every loaded object that defines it; returns how many do. */
export type SetGlobal = (name: string, bytes: Uint8Array) => number;

/** The global-data map (fd and value size) of section `section` of a loaded object (libbpf names it after the section). */
function dataMapOf(handle: bigint, section: string): { fd: number; size: number } | null {
  for (const m of mapsOf(handle)) if (m.name.endsWith(section)) return { fd: libbpf.mapFd(m.ptr), size: libbpf.mapValueSize(m.ptr) };
  return null;
}

type Where = { o: LoadedObject; map: { fd: number; size: number }; offset: number; size: number };

/** Where each global of `objects` lives: its object, data map, offset and size. */
function globalsOf(objects: readonly LoadedObject[]): Map<string, Where[]> {
  const vars = new Map<string, Where[]>();
  for (const o of objects) {
    for (const g of linkObject(o.path).globals) {
      const map = dataMapOf(o.handle, g.section);
      if (map) vars.set(g.name, [...(vars.get(g.name) ?? []), { o, map, offset: g.offset, size: g.size }]);
    }
  }
  return vars;
}

/** A setter for the globals of loaded `objects`; their symbols are read at its first use. */
export function globalSetter(objects: readonly LoadedObject[]): SetGlobal {
  let vars: Map<string, Where[]> | null = null;
  const key = new Uint8Array(4);
  return (name, bytes) => {
    const where = (vars ??= globalsOf(objects)).get(name) ?? [];
    for (const v of where) {
      const value = new Uint8Array(v.map.size);
      if (libbpf.mapLookup(v.map.fd, key, value) < 0) throw new KmeshCheckError('environment', `cannot read the global data of the ${v.o.role} object ${v.o.path}`);
      value.set(bytes.subarray(0, v.size), v.offset);
      if (libbpf.mapUpdate(v.map.fd, key, value, 0) < 0) throw new KmeshCheckError('environment', `cannot set ${name} in the ${v.o.role} object ${v.o.path}`);
    }
    return where.length;
  };
}
