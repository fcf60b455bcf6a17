// The VM as a loader would present it: objects linked like libbpf, maps shared by name across
// objects (as the kernel loader reuses one map per name), programs bound to those maps, helpers
// installed, and one entry point per hook that builds the context, runs the program and hands
// back what the hook's caller would see.

import { basename } from 'node:path';
import type { SockAddr } from '../../model/address.js';
import { existsSync } from 'node:fs';
import { KmeshCheckError } from '../../shared/errors.js';
import { ElfError } from './elf.js';
import { BtfError } from './btf.js';
import { LinkError, linkObject, type LinkedObject, type MapDef } from './link.js';
import { Memory, Region } from './memory.js';
import { Machine } from './machine.js';
import { VmFault, bindProgram, type VmProgram } from './program.js';
import { ArrayMap, MapError, ProgArrayMap, createMap, type VmMap } from './maps.js';
import { installHelpers, type HelperHost } from './helpers.js';
import { SeededChoices, type ChoiceSource } from '../runner/choices.js';
import { parseAddress } from '../../model/address.js';
import { SockAddrCtx, SockOpsCtx, VmSock, skMsgContext, type MsgState } from './context.js';
import { SkBuffCtx } from './skb-context.js';

export class VmLoadError extends Error {}

/** Loads an object file into `vm`; a missing file, bad ELF or an object the VM cannot link is one KmeshCheckError line. */
export function loadObjectFile(vm: Vm, path: string, what: string): LoadedVmObject {
  if (!existsSync(path)) throw new KmeshCheckError('object-file', `${what} ${path} does not exist: build it (npm run build:bpf) or give the right path`);
  try {
    return vm.load(path);
  } catch (e) {
    if (e instanceof ElfError) throw new KmeshCheckError('object-file', e.message);
    if (e instanceof LinkError || e instanceof BtfError || e instanceof VmFault || e instanceof VmLoadError || e instanceof MapError) {
      throw new KmeshCheckError('load', `the VM cannot load ${path}: ${e.message}`);
    }
    throw e;
  }
}

export interface VmOptions {
  readonly choices?: ChoiceSource;
  readonly netnsCookie?: number;
}

export interface LoadedVmObject {
  readonly path: string;
  readonly linked: LinkedObject;
  /** The object's maps by its own map index (shared ones are the same instances). */
  readonly maps: readonly VmMap[];
  readonly programs: readonly VmProgram[];
}

const CLOCK_START = 1_000_000_000;
const CLOCK_STEP = 1000;

function sameShape(a: MapDef, b: MapDef): boolean {
  return a.type === b.type && a.keySize === b.keySize && a.valueSize === b.valueSize && a.maxEntries === b.maxEntries && a.flags === b.flags;
}

export class Vm implements HelperHost {
  readonly mem = new Memory();
  readonly machine: Machine;
  /** Shared maps by name; global data maps under "<object path>:<section>" (one per object). */
  readonly maps = new Map<string, VmMap>();
  readonly objects: LoadedVmObject[] = [];
  readonly trace: string[] = [];
  choices: ChoiceSource;
  readonly netnsCookie: number;
  readonly cgroupId = 7;
  private ns = CLOCK_START;
  /**
   * Nanoseconds each clock read advances (a distinct, increasing value per read by default). A run
   * that makes time an input sets it to 0 and moves the clock itself (setClock, advanceClock).
   */
  clockStep = CLOCK_STEP;

  constructor(opts: VmOptions = {}) {
    this.machine = new Machine(this.mem);
    this.choices = opts.choices ?? new SeededChoices(1);
    this.netnsCookie = opts.netnsCookie ?? 4097;
    installHelpers(this.machine, this);
  }

  clock(): number {
    this.ns += this.clockStep;
    return this.ns;
  }

  /** Sets the clock (bpf_ktime_get_ns and the other time helpers read it). */
  setClock(ns: number): void {
    this.ns = ns;
  }

  /** Lets `ns` nanoseconds pass. */
  advanceClock(ns: number): void {
    this.ns += ns;
  }

  /** The clock's current value (the last one handed out). */
  get now(): number {
    return this.ns;
  }

  resetClock(): void {
    this.ns = CLOCK_START;
    this.clockStep = CLOCK_STEP;
  }

  /** Links and binds an object; maps whose names are already loaded are shared. */
  load(source: string | LinkedObject): LoadedVmObject {
    const linked = typeof source === 'string' ? linkObject(source) : source;
    const maps: VmMap[] = [];
    const valueRegions = new Map<number, Region>();
    for (const def of linked.maps) {
      const key = def.internal ? `${linked.path}:${def.internal.section}` : def.name;
      let map = this.maps.get(key);
      if (map) {
        if (!sameShape(map.def, def)) {
          throw new VmLoadError(`map ${def.name} in ${linked.path} differs from the map of that name already loaded from another object (type, sizes, max_entries or flags)`);
        }
      } else {
        try {
          map = createMap(def);
        } catch (e) {
          throw new VmLoadError(`${linked.path}: ${(e as Error).message}`);
        }
        this.maps.set(key, map);
        this.mem.addFixed(map.handle);
        if (def.internal && map instanceof ArrayMap && map.values[0]) this.mem.addFixed(map.values[0]);
      }
      maps.push(map);
      if (def.internal && map instanceof ArrayMap && map.values[0]) valueRegions.set(def.index, map.values[0]);
    }
    const programs = linked.programs.map((p) =>
      bindProgram(p, {
        handle: (i) => {
          const m = maps[i];
          if (!m) throw new VmLoadError(`${linked.path}: program ${p.name} references map index ${i}, which does not exist`);
          return m.handle;
        },
        value: (i) => {
          const r = valueRegions.get(i);
          if (!r) throw new VmLoadError(`${linked.path}: program ${p.name} takes the address of map ${i}'s value, which is not global data`);
          return r;
        },
      }),
    );
    const loaded = { path: linked.path, linked, maps, programs };
    this.objects.push(loaded);
    return loaded;
  }

  /** The live bytes of a global variable of a loaded object (a view: programs see writes). */
  global(obj: LoadedVmObject, name: string): Uint8Array {
    const g = obj.linked.globals.find((v) => v.name === name);
    if (!g) throw new VmLoadError(`${obj.path} has no global variable ${name}`);
    const map = obj.maps.find((m) => m.def.internal?.section === g.section);
    if (!(map instanceof ArrayMap) || !map.values[0]) throw new VmLoadError(`${obj.path}: section ${g.section} of ${name} is not loaded`);
    return map.values[0].bytes.subarray(g.offset, g.offset + g.size);
  }

  /** The live bytes of global `name` in every loaded object that defines it (as user space sets one: in each object's data map). */
  globals(name: string): Uint8Array[] {
    return this.objects.filter((o) => o.linked.globals.some((g) => g.name === name)).map((o) => this.global(o, name));
  }

  program(name: string): VmProgram {
    for (const o of this.objects) for (const p of o.programs) if (p.name === name) return p;
    throw new VmLoadError(
      `no program named ${name} is loaded (loaded: ${
        this.allPrograms()
          .map((p) => p.name)
          .join(', ') || 'none'
      })`,
    );
  }

  /** The first program whose ELF section is `section` (e.g. "cgroup/connect4"), or null. */
  programBySection(section: string): VmProgram | null {
    for (const o of this.objects) for (const p of o.programs) if (p.section === section) return p;
    return null;
  }

  allPrograms(): VmProgram[] {
    return this.objects.flatMap((o) => o.programs);
  }

  /** "map NAME in FILE.o", the object that defines it named (for one-line errors about the map). */
  mapLabel(name: string): string {
    const from = this.objects.find((o) => o.linked.maps.some((d) => d.name === name));
    return `map ${name}${from ? ` in ${basename(from.path)}` : ''}`;
  }

  map<T extends VmMap = VmMap>(name: string): T {
    const m = this.maps.get(name);
    if (!m) throw new MapError(`no map named ${name} is loaded (loaded: ${[...this.maps.keys()].join(', ')})`);
    return m as T;
  }

  /** Puts a program into a prog array slot (what userspace does with bpf_map_update_elem). */
  setTailCall(mapName: string, slot: number, program: VmProgram): void {
    const m = this.map(mapName);
    if (!(m instanceof ProgArrayMap)) throw new MapError(`map ${mapName} is not a prog array`);
    m.set(slot, program);
  }

  // ---- hooks ---------------------------------------------------------------------------------

  readonly connect4Ctx = new SockAddrCtx('connect4');
  readonly connect6Ctx = new SockAddrCtx('connect6');
  readonly sockOpsCtx = new SockOpsCtx();

  /**
   * cgroup connect4/connect6 on a destination given as bytes (4 for AF_INET, 16 for AF_INET6)
   * and a host-order port; returns the verdict. The destination afterwards is in
   * connect4Ctx / connect6Ctx (dest(), port()).
   */
  runConnectRaw(prog: VmProgram, sock: VmSock, addr: Uint8Array, port: number): number {
    this.machine.beginRun();
    const c = sock.family === 'inet' ? this.connect4Ctx : this.connect6Ctx;
    return this.machine.run(prog, c.prepare(this.mem, sock, addr, port));
  }

  /** cgroup connect4/connect6: the verdict and the destination the socket holds afterwards. */
  runConnect(prog: VmProgram, sock: VmSock, dest: SockAddr): { verdict: number; dest: SockAddr } {
    const verdict = this.runConnectRaw(prog, sock, parseAddress(dest.addr), dest.port);
    return { verdict, dest: (sock.family === 'inet' ? this.connect4Ctx : this.connect6Ctx).dest() };
  }

  readonly sendmsg4Ctx = new SockAddrCtx('sendmsg4');
  readonly recvmsg4Ctx = new SockAddrCtx('recvmsg4');
  readonly recvmsg6Ctx = new SockAddrCtx('recvmsg6');

  /**
   * A UDP send or receive hook (section 6) on an address given as bytes (4 for sendmsg4 and
   * recvmsg4, 16 for recvmsg6) and a host-order port; returns the verdict and the address the
   * context holds afterwards (sendmsg: the destination; recvmsg: the source the application sees).
   */
  runUdpHook(ctx: SockAddrCtx, prog: VmProgram, sock: VmSock, addr: Uint8Array, port: number): { verdict: number; addr: SockAddr } {
    this.machine.beginRun();
    const verdict = this.machine.run(prog, ctx.prepare(this.mem, sock, addr, port));
    return { verdict, addr: ctx.dest() };
  }

  /** sockops callback `op` on a socket whose ends and state are set (`args`: STATE_CB's old and new state). */
  runSockOps(prog: VmProgram, sock: VmSock, op: number, args: readonly number[] = []): number {
    this.machine.beginRun();
    return this.machine.run(prog, this.sockOpsCtx.prepare(this.mem, sock, op, args));
  }

  readonly skBuffCtx = new SkBuffCtx();

  /** cgroup_skb ingress or egress on one packet of `len` bytes of a socket; the verdict (1 pass). */
  runSkb(prog: VmProgram, sock: VmSock, len: number): number {
    this.machine.beginRun();
    return this.machine.run(prog, this.skBuffCtx.prepare(this.mem, sock, len));
  }

  /**
   * sk_msg verdict on one message: the verdict (1 pass, 0 drop), the bytes that go out, and the
   * socket a bpf_msg_redirect_hash chose (null: the message goes to the socket's own peer).
   */
  runSkMsg(prog: VmProgram, sock: VmSock, payload: Uint8Array): { verdict: number; bytes: Uint8Array; redirect: MsgState['redirect'] } {
    this.machine.beginRun();
    const msg = skMsgContext(this.mem, sock, payload);
    const verdict = this.machine.run(prog, msg.ctx);
    return { verdict, bytes: msg.bytes.slice(), redirect: msg.redirect };
  }
}
