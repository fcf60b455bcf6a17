// A batch of cases as bytes, for the one trip to the kernel harness worker or the VM's run thread
// (bpf/vm/run-thread.ts). JSON cost the parent
// 14-17 us a case to write and the worker 10 to read (1.1 KB a case: the services' port arrays,
// repeated field names), a tenth of all the CPU a kernel case costs on two cores. Here every
// number is one byte when small, every string, entity, entity list, map state and operation list
// is written once and then named by its index, so that the worker gets back objects shared as
// the parent's were (bpf/codec/tracker.ts skips an entity or list it already holds). Numbers travel
// exactly, whatever their value (a raw state may hold any), and so does text, but for lone UTF-16
// surrogates, which are refused. A known operation carries the fields of its domain type only.
// Generated cases take ~180 bytes, ~5 us to write and ~2 to read.

import type { Backend, Case, Endpoint, Frontend, MapState, Operation, Service, SockAddr, Waypoint } from '../../model/domain.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { GrowingBytes } from '../codec/growing-bytes.js';

// A number's first byte: the number itself below SMALL, else how the rest is written.
const SMALL = 0xfc;
const U16 = 0xfc;
const U32 = 0xfd;
const F64 = 0xfe;

/** The operations' fields, in the order they are written; other operations go as JSON text. */
const OP_KINDS = ['socket', 'connect', 'send', 'close', 'sendto', 'recvfrom', 'deliver', 'apply'] as const;
const OTHER_OP = OP_KINDS.length;

/** Things written once and then named by index (Writer.named): on first sight the index is the table's size and the thing follows. */
type Table<T> = Map<T, number>;

/** A UTF-16 half of a pair without its other half: UTF-8 has no bytes for it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function unsendable(v: unknown, what: string): KmeshCheckError {
  const text = typeof v === 'bigint' ? `${v}n` : (JSON.stringify(v) ?? String(v));
  return new KmeshCheckError('codec', `a case holds ${text} where ${what} belongs: it cannot go to the executor's worker`);
}

class Writer extends GrowingBytes {
  private readonly text = new TextEncoder();
  private readonly strings: Table<string> = new Map();
  private readonly frontends: Table<Frontend> = new Map();
  private readonly services: Table<Service> = new Map();
  private readonly endpoints: Table<Endpoint> = new Map();
  private readonly backends: Table<Backend> = new Map();
  private readonly lists: Table<readonly object[]> = new Map();
  private readonly states: Table<MapState> = new Map();
  private readonly opLists: Table<readonly Operation[]> = new Map();

  /** Writes the index of `x` in `table`; true when `x` is new there, to be written after it. */
  private named<T>(table: Table<T>, x: T): boolean {
    let i = table.get(x);
    const fresh = i === undefined;
    if (fresh) table.set(x, (i = table.size));
    this.num(i!);
    return fresh;
  }

  num(v: number): void {
    if (typeof v !== 'number') throw unsendable(v, 'a number');
    if (this.at + 9 > this.buf.length) this.room(9);
    // Most numbers: one byte (-0 is not 0 here).
    if (v >= 0 && v < SMALL && (v | 0) === v && (v !== 0 || 1 / v > 0)) {
      this.buf[this.at++] = v;
      return;
    }
    const whole = Number.isInteger(v) && v >= 0 && !Object.is(v, -0);
    if (whole && v < SMALL) this.buf[this.at++] = v;
    else if (whole && v <= 0xffff) {
      this.buf[this.at] = U16;
      this.view.setUint16(this.at + 1, v, true);
      this.at += 3;
    } else if (whole && v <= 0xffffffff) {
      this.buf[this.at] = U32;
      this.view.setUint32(this.at + 1, v, true);
      this.at += 5;
    } else {
      this.buf[this.at] = F64;
      this.view.setFloat64(this.at + 1, v, true);
      this.at += 9;
    }
  }

  nums(vs: readonly number[]): void {
    this.num(vs.length);
    for (let i = 0; i < vs.length; i++) this.num(vs[i]!);
  }

  str(s: string): void {
    if (typeof s !== 'string') throw unsendable(s, 'a string');
    if (!this.named(this.strings, s)) return;
    // Looked at once per string and batch, as it is written.
    if (LONE_SURROGATE.test(s)) throw unsendable(s, 'text that UTF-8 can hold');
    this.room(3 * s.length + 9);
    const lengthAt = this.at;
    this.at += 5;
    const n = this.text.encodeInto(s, this.buf.subarray(this.at)).written;
    this.buf[lengthAt] = U32;
    this.view.setUint32(lengthAt + 1, n, true);
    this.at += n;
  }

  /** A socket address or a waypoint: an address and a port. */
  private addrPort(a: SockAddr | Waypoint): void {
    this.str(a.addr);
    this.num(a.port);
  }

  private list<T extends object>(items: readonly T[], table: Table<T>, write: (x: T) => void): void {
    if (!this.named(this.lists, items)) return;
    this.num(items.length);
    for (const x of items) if (this.named(table, x)) write(x);
  }

  state(s: MapState): void {
    if (!this.named(this.states, s)) return;
    this.list(s.frontends, this.frontends, (f) => {
      this.str(f.addr);
      this.num(f.upstreamId);
    });
    this.list(s.services, this.services, (sv) => {
      this.num(sv.id);
      this.nums(sv.endpointCounts);
      this.num(sv.lbPolicy);
      this.nums(sv.servicePorts);
      this.nums(sv.targetPorts);
      this.addrPort(sv.waypoint);
    });
    this.list(s.endpoints, this.endpoints, (e) => {
      this.num(e.serviceId);
      this.num(e.prio);
      this.num(e.index);
      this.num(e.backendUid);
    });
    this.list(s.backends, this.backends, (b) => {
      this.num(b.uid);
      this.str(b.addr);
      this.nums(b.services);
      this.addrPort(b.waypoint);
    });
  }

  ops(ops: readonly Operation[]): void {
    if (!this.named(this.opLists, ops)) return;
    this.num(ops.length);
    for (const o of ops) this.op(o);
  }

  private op(o: Operation): void {
    const kind = OP_KINDS.indexOf(o.op);
    if (kind < 0) {
      this.num(OTHER_OP);
      this.str(JSON.stringify(o));
      return;
    }
    this.num(kind);
    if (o.op === 'apply') {
      this.state(o.state);
      return;
    }
    this.num(o.sock);
    switch (o.op) {
      case 'socket':
        this.str(o.family);
        this.str(o.protocol);
        // Absent stays absent: a 0, else a 1 and the address.
        if (o.bindTo === undefined) this.num(0);
        else {
          this.num(1);
          this.str(o.bindTo);
        }
        return;
      case 'connect':
        this.addrPort(o.dest);
        return;
      case 'send':
        this.num(o.messages);
        return;
      case 'sendto':
        this.addrPort(o.dest);
        this.num(o.n);
        return;
      case 'deliver':
        this.addrPort(o.from);
        return;
      case 'close':
      case 'recvfrom':
        return;
    }
  }
}

/** The cases as bytes (decodeCases gives them back). */
export function encodeCases(cases: readonly Case[]): Uint8Array {
  const w = new Writer(1 << 16);
  w.num(cases.length);
  cases.forEach((c, i) => {
    try {
      w.state(c.state);
      w.str(c.kind);
      w.num(c.enrolled ? 1 : 0);
      w.num(c.enrolmentWrite === undefined ? 0 : 1);
      if (c.enrolmentWrite !== undefined) w.num(c.enrolmentWrite);
      w.str(c.enrolmentKeys ?? '');
      w.num(c.monitoringOff ? 1 : 0);
      w.ops(c.ops);
    } catch (e) {
      // A field missing where the domain types say it is (a case built by hand): named, in one line.
      if (e instanceof TypeError) throw new KmeshCheckError('codec', `case ${i} of the batch cannot go to the executor's worker: ${e.message}`);
      throw e;
    }
  });
  return w.written();
}

/** Bytes that are no batch encodeCases wrote: cut short, corrupted, or from another build. */
const corrupt = (what: string) => new KmeshCheckError('worker', `a batch of cases ${what}: is dist/ from one build?`);
const truncated = () => corrupt('ended early');

class Reader {
  private at = 0;
  private readonly view: DataView;
  // A leading U+FEFF is text like any other, not a byte order mark to drop.
  private readonly text = new TextDecoder('utf-8', { ignoreBOM: true });
  private readonly strings: string[] = [];
  private readonly frontends: Frontend[] = [];
  private readonly services: Service[] = [];
  private readonly endpoints: Endpoint[] = [];
  private readonly backends: Backend[] = [];
  private readonly lists: object[][] = [];
  private readonly states: MapState[] = [];
  private readonly opLists: Operation[][] = [];

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.at === this.buf.length;
  }

  num(): number {
    if (this.at >= this.buf.length) throw truncated();
    const tag = this.buf[this.at++]!;
    if (tag < SMALL) return tag;
    const size = tag === U16 ? 2 : tag === U32 ? 4 : tag === F64 ? 8 : -1;
    if (size < 0) throw corrupt(`holds a number tagged ${tag}`);
    if (this.at + size > this.buf.length) throw truncated();
    const v = size === 2 ? this.view.getUint16(this.at, true) : size === 4 ? this.view.getUint32(this.at, true) : this.view.getFloat64(this.at, true);
    this.at += size;
    return v;
  }

  /** A count of items that take a byte each at least: more than the bytes left is a corrupt batch. */
  count(): number {
    const n = this.num();
    if (!Number.isInteger(n) || n < 0 || n > this.buf.length - this.at) throw corrupt(`counts ${n} items with ${this.buf.length - this.at} bytes left`);
    return n;
  }

  nums(): number[] {
    const n = this.count();
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.num();
    return out;
  }

  /** The item the next index names: one read before, or the one that follows it. */
  private ref<T>(table: T[], read: () => T): T {
    const i = this.num();
    if (!Number.isInteger(i) || i < 0) throw corrupt(`names item ${i}`);
    if (i < table.length) return table[i]!;
    if (i !== table.length) throw corrupt(`names item ${i} of ${table.length}`);
    const x = read();
    table[i] = x;
    return x;
  }

  str(): string {
    return this.ref(this.strings, () => {
      const n = this.count();
      const s = this.text.decode(this.buf.subarray(this.at, this.at + n));
      this.at += n;
      return s;
    });
  }

  /** A socket address or a waypoint. */
  private addrPort(): SockAddr & Waypoint {
    const addr = this.str();
    return { addr, port: this.num() };
  }

  private list<T extends object>(table: T[], read: () => T): T[] {
    return this.ref(this.lists, () => {
      const n = this.count();
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = this.ref(table, read);
      return out;
    }) as T[];
  }

  state(): MapState {
    return this.ref(this.states, () => ({
      frontends: this.list(this.frontends, () => {
        const addr = this.str();
        return { addr, upstreamId: this.num() };
      }),
      services: this.list(this.services, () => {
        const id = this.num();
        const endpointCounts = this.nums();
        const lbPolicy = this.num();
        const servicePorts = this.nums();
        const targetPorts = this.nums();
        return { id, endpointCounts, lbPolicy, servicePorts, targetPorts, waypoint: this.addrPort() };
      }),
      endpoints: this.list(this.endpoints, () => {
        const serviceId = this.num();
        const prio = this.num();
        const index = this.num();
        return { serviceId, prio, index, backendUid: this.num() };
      }),
      backends: this.list(this.backends, () => {
        const uid = this.num();
        const addr = this.str();
        const services = this.nums();
        return { uid, addr, services, waypoint: this.addrPort() };
      }),
    }));
  }

  ops(): Operation[] {
    return this.ref(this.opLists, () => {
      const n = this.count();
      const out = new Array<Operation>(n);
      for (let i = 0; i < n; i++) out[i] = this.op();
      return out;
    });
  }

  private op(): Operation {
    const kind = this.num();
    if (kind === OTHER_OP) {
      const text = this.str();
      try {
        return JSON.parse(text) as Operation;
      } catch {
        throw corrupt(`holds an operation that is not JSON (${text.slice(0, 40)})`);
      }
    }
    const op = OP_KINDS[kind];
    if (op === undefined) throw corrupt(`holds operation kind ${kind}`);
    if (op === 'apply') return { op, state: this.state() };
    const sock = this.num();
    switch (op) {
      case 'socket': {
        const family = this.str() as Extract<Operation, { op: 'socket' }>['family'];
        const protocol = this.str() as Extract<Operation, { op: 'socket' }>['protocol'];
        const bound = this.num();
        if (bound === 0) return { op, sock, family, protocol };
        if (bound !== 1) throw corrupt(`holds a socket's bind mark ${bound}`);
        return { op, sock, family, protocol, bindTo: this.str() };
      }
      case 'connect':
        return { op, sock, dest: this.addrPort() };
      case 'send':
        return { op, sock, messages: this.num() };
      case 'sendto': {
        const dest = this.addrPort();
        return { op, sock, dest, n: this.num() };
      }
      case 'deliver':
        return { op, sock, from: this.addrPort() };
      case 'close':
      case 'recvfrom':
        return { op, sock };
    }
  }
}

/** The cases encodeCases wrote, each entity, list, state and operation list shared as it was. */
export function decodeCases(bytes: Uint8Array): Case[] {
  const r = new Reader(bytes);
  const n = r.count();
  const out = new Array<Case>(n);
  for (let i = 0; i < n; i++) {
    const state = r.state();
    const kind = r.str() as Case['kind'];
    const enrolled = r.num() === 1;
    const enrolmentWrite = r.num() === 1 ? r.num() : undefined;
    const keys = r.str();
    const monitoringOff = r.num() === 1;
    const ops = r.ops();
    out[i] = {
      state,
      kind,
      enrolled,
      ...(enrolmentWrite !== undefined ? { enrolmentWrite } : {}),
      ...(keys ? { enrolmentKeys: keys as NonNullable<Case['enrolmentKeys']> } : {}),
      ...(monitoringOff ? { monitoringOff: true as const } : {}),
      ops,
    };
  }
  if (!r.done) throw corrupt('has bytes after its last case');
  return out;
}
