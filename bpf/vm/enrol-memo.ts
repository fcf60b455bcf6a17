// Enrolment replayed instead of run again. Every VM case enrols afresh (km_manage is rebuilt,
// bpf/vm/sockets.ts), and the control connects cost as much as a case's own operations. What they
// do is the same every time as long as everything they read is the same, so an enrolment is
// recorded and later ones replay its effect: km_manage's entries, its program-write count and
// the coverage counts the programs added. Exact by construction:
//  - a recording is kept only if the programs called nothing but helpers whose result is fixed for
//    a control connect (the VM's cookies and ids, the control socket itself) and map helpers on
//    km_manage, which the enrolment empties first; anything else (prandom, the clock, printk, ring
//    buffers, socket storage, another map) makes enrolment unreplayable and it always runs;
//  - the recording is keyed on what else a program can read: the first ephemeral port (the control
//    sockets' local ports) and the bytes of every array map (global data, which programs address
//    directly); with other values it runs and records again, beside the recordings already kept
//    (a few: cases alternate between global-data settings, Case.monitoringOff);
//  - global data the programs changed, or a fault, is not recorded either.

import { HelperId } from './helpers.js';
import type { Helper, Machine } from './machine.js';
import { ArrayMap, type HashMap, type VmMap } from './maps.js';
import type { VmProgram } from './program.js';

/** Helpers whose effect a control connect cannot carry to a later one (besides km_manage's map helpers). */
const FIXED_HELPERS: ReadonlySet<number> = new Set([
  HelperId.get_netns_cookie,
  HelperId.get_socket_cookie,
  HelperId.get_current_cgroup_id,
  HelperId.get_current_pid_tgid,
  HelperId.get_smp_processor_id,
  HelperId.sk_fullsock,
  HelperId.tcp_sock,
  HelperId.sock_ops_cb_flags_set,
]);
/** Array maps larger than this in all are not compared before every replay: enrolment then runs. */
const MAX_ARRAY_BYTES = 1 << 16;

const MAP_HELPERS: ReadonlySet<number> = new Set([HelperId.map_lookup_elem, HelperId.map_update_elem, HelperId.map_delete_elem]);

/** Counters a run adds to (coverage), as (array, index, amount) triples. */
interface CountDelta {
  readonly counts: Uint32Array | Int32Array;
  readonly at: readonly number[];
  readonly add: readonly number[];
}

/** What one enrolment did, to do again without running it. */
interface Effect {
  /** The first control socket's local port when it was recorded. */
  readonly port: number;
  /** Every array map's bytes when it was recorded (value regions in order, concatenated). */
  readonly arrays: readonly Uint8Array[];
  /** km_manage afterwards, oldest entry first. */
  readonly manage: readonly (readonly [Uint8Array, Uint8Array])[];
  readonly programWrites: number;
  readonly coverage: readonly CountDelta[];
}

/** What the enrolment runs on. */
export interface EnrolSubject {
  readonly machine: Machine;
  readonly maps: ReadonlyMap<string, VmMap>;
  allPrograms(): VmProgram[];
}

/**
 * Recordings kept, the latest first: one per global-data setting a run alternates between (a case
 * with connection reports off changes enable_monitoring), so that none replaces the other.
 */
const MAX_EFFECTS = 4;

export class EnrolMemo {
  private readonly effects: Effect[] = [];
  /** Set once a recording did something it cannot replay: enrolment then always runs. */
  private unreplayable = false;
  private arrays: ArrayMap[] | null = null;

  constructor(
    private readonly vm: EnrolSubject,
    private readonly manage: HashMap,
  ) {}

  /**
   * Enrols: replays the recorded effect when its key holds, else calls `run` (which empties
   * km_manage and makes the control connects from port `port` on), recording it if it can.
   */
  enrol(port: number, run: () => void): void {
    for (let i = 0; i < this.effects.length; i++) {
      const e = this.effects[i]!;
      if (e.port === port && this.sameArrays(e.arrays)) return this.replay(e);
    }
    if (this.unreplayable) return run();
    this.record(port, run);
  }

  private replay(e: Effect): void {
    this.manage.clear();
    for (const [k, v] of e.manage) this.manage.set(k, v);
    this.manage.programWrites += e.programWrites;
    for (const d of e.coverage) {
      const c = d.counts;
      for (let i = 0; i < d.at.length; i++) c[d.at[i]!] = c[d.at[i]!]! + d.add[i]!;
    }
  }

  private record(port: number, run: () => void): void {
    if (this.arrayBytes() > MAX_ARRAY_BYTES) {
      this.unreplayable = true;
      return run();
    }
    const arrays = this.snapshotArrays();
    const before = new Map(this.counters().map((c) => [c, c.slice()]));
    const writes = this.manage.programWrites;
    let replayable = true;
    const m = this.vm.machine;
    const helpers = [...m.helpers];
    helpers.forEach((h, id) => {
      if (h === undefined) return;
      m.helpers[id] = (mm: Machine) => {
        if (!FIXED_HELPERS.has(id) && !(MAP_HELPERS.has(id) && mm.mem.regionOf(mm.H[1] as number)?.owner === this.manage)) replayable = false;
        h(mm);
      };
    });
    try {
      run();
    } finally {
      m.helpers.splice(0, m.helpers.length, ...(helpers as Helper[]));
    }
    // Global data the programs changed would be read by the case's own operations.
    if (!replayable || !this.sameArrays(arrays)) {
      this.unreplayable = true;
      return;
    }
    const coverage: CountDelta[] = [];
    for (const c of this.counters()) {
      // Programs compiled during the run have counters that started at zero.
      const old = before.get(c);
      const at: number[] = [];
      const add: number[] = [];
      for (let j = 0; j < c.length; j++) {
        const d = c[j]! - (old ? old[j]! : 0);
        if (d !== 0) {
          at.push(j);
          add.push(d);
        }
      }
      if (at.length > 0) coverage.push({ counts: c, at, add });
    }
    const manage = this.manage.keys().map((k) => [k, this.manage.get(k)!] as const);
    this.effects.unshift({ port, arrays, manage, programWrites: this.manage.programWrites - writes, coverage });
    if (this.effects.length > MAX_EFFECTS) this.effects.pop();
  }

  /** Every coverage counter of the loaded programs (interpreter and compiled forms). */
  private counters(): (Uint32Array | Int32Array)[] {
    const out: (Uint32Array | Int32Array)[] = [];
    const compiled = this.vm.machine.compiledPrograms();
    for (const p of this.vm.allPrograms()) {
      out.push(p.hits, p.taken);
      const c = compiled.get(p);
      if (c) out.push(c.blocks, c.adj);
    }
    return out;
  }

  /** The array maps, listed once: the executor loads every object before its first case. */
  private arrayMaps(): ArrayMap[] {
    return (this.arrays ??= [...this.vm.maps.values()].filter((m): m is ArrayMap => m instanceof ArrayMap));
  }

  private arrayBytes(): number {
    let n = 0;
    for (const a of this.arrayMaps()) n += a.values.length * a.def.valueSize;
    return n;
  }

  private snapshotArrays(): Uint8Array[] {
    return this.arrayMaps().flatMap((a) => a.values.map((r) => r.bytes.slice()));
  }

  private sameArrays(snapshot: readonly Uint8Array[]): boolean {
    let i = 0;
    for (const a of this.arrayMaps()) {
      for (const r of a.values) {
        const b = r.bytes;
        const s = snapshot[i++]!;
        for (let j = 0; j < b.length; j++) if (b[j] !== s[j]) return false;
      }
    }
    return true;
  }
}
