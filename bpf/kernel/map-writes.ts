// Writes to the loaded maps from the worker: a state's writes are queued and made in one shim
// call (kf_map_ops), which stops at the first failure; plus emptying the routing maps and
// writing km_manage as a control plane would and listing it for diagnostics.

import { ROUTING_MAPS, type MapName, type RoutingMapName } from '../codec/abi.js';
import { toHex } from '../codec/state.js';
import { KmeshCheckError } from '../../shared/errors.js';
import type { FastPath } from './fastpath.js';
import { libbpf } from './libbpf.js';
import { errnoName } from './libc.js';

/** Bytes of map writes queued for one kf_map_ops call (a record is at most ~200 bytes). */
const MAP_OPS_BYTES = 64 * 1024;

/** The one-line error of a failed write or delete. */
export function mapWriteError(name: RoutingMapName | undefined, del: boolean, rc: number): KmeshCheckError {
  if (del) return new KmeshCheckError('worker', `deleting from ${name} failed (${errnoName(rc)})`);
  return new KmeshCheckError('worker', `writing ${name ?? 'a routing map'} failed (${errnoName(rc)}): is the map full?`);
}

/** Bytes of a km_manage key (a netns cookie or a pod IP, section 2). */
export const MANAGE_KEY_SIZE = 16;

/** The one-line error of enrolment by writes: emptying km_manage (stage 0) or writing it (1) failed. */
export function manageError(stage: number, rc: number): KmeshCheckError {
  return new KmeshCheckError('worker', `${stage === 0 ? 'deleting from' : 'writing'} km_manage failed (${errnoName(rc)})`);
}

/** Appends one kf_map_ops record (i32 op, fd, key size, value size; key and value 4-aligned). */
export function mapOpRecord(put: { i32(v: number): void; bytes(b: Uint8Array): void; zeros(n: number): void }, fd: number, key: Uint8Array, value: Uint8Array | null): void {
  const klen = key.length;
  const vlen = value ? value.length : 0;
  put.i32(value ? 1 : 0);
  put.i32(fd);
  put.i32(klen);
  put.i32(vlen);
  put.bytes(key);
  put.zeros(((klen + 3) & ~3) - klen);
  if (value) {
    put.bytes(value);
    put.zeros(((vlen + 3) & ~3) - vlen);
  }
}

export class MapWriter {
  private readonly ops = new Uint8Array(MAP_OPS_BYTES);
  private readonly view = new DataView(this.ops.buffer);
  private at = 0;
  private readonly queued: Array<{ name: RoutingMapName; del: boolean }> = [];
  private readonly rc = new Int32Array(1);
  private readonly put = {
    i32: (v: number): void => {
      this.view.setInt32(this.at, v, true);
      this.at += 4;
    },
    bytes: (b: Uint8Array): void => {
      this.ops.set(b, this.at);
      this.at += b.length;
    },
    zeros: (n: number): void => {
      this.ops.fill(0, this.at, this.at + n);
      this.at += n;
    },
  };

  constructor(
    private readonly maps: ReadonlyMap<MapName, number>,
    private readonly fast: FastPath,
  ) {}

  fd(name: MapName): number {
    const fd = this.maps.get(name);
    if (fd === undefined) throw new KmeshCheckError('worker', `map ${name} is not loaded`);
    return fd;
  }

  /** Queues a write (value) or delete (null); a full queue is written first. */
  readonly queue = (name: RoutingMapName, key: Uint8Array, value: Uint8Array | null): void => {
    const size = 16 + ((key.length + 3) & ~3) + (value ? (value.length + 3) & ~3 : 0);
    if (this.at + size > MAP_OPS_BYTES) this.flush();
    mapOpRecord(this.put, this.fd(name), key, value);
    this.queued.push({ name, del: value === null });
  };

  /** Writes the queued changes in one call; throws the first failure. */
  flush(): void {
    const n = this.queued.length;
    if (n === 0) return;
    const failed = this.fast.mapOps(this.ops, n, this.rc);
    const names = this.queued.splice(0);
    this.at = 0;
    if (failed < 0) return;
    const { name, del } = names[failed]!;
    throw mapWriteError(name, del, this.rc[0]!);
  }

  /** Runs kf_map_ops on records built elsewhere (a case's share of a whole-case program). */
  writeRecords(records: Uint8Array, count: number): void {
    if (count > 0) this.fast.mapOps(records, count, this.rc);
  }

  /** Deletes every entry of the routing maps, whatever wrote it. */
  resetMaps(): void {
    this.queued.length = 0;
    this.at = 0;
    for (const name of ROUTING_MAPS) this.fast.emptyMap(this.fd(name), name === 'km_frontend' ? 16 : name === 'km_endpoint' ? 12 : 4);
  }

  /** Empties km_manage, whatever wrote it, then writes `entries` (enrolment by writing, codec/manage.ts). */
  replaceManage(entries: readonly (readonly [Uint8Array, Uint8Array])[]): void {
    const fd = this.fd('km_manage');
    const failed = this.fast.emptyMap(fd, MANAGE_KEY_SIZE);
    if (failed < 0) throw manageError(0, failed);
    for (const [k, v] of entries) {
      const rc = libbpf.mapUpdate(fd, k, v, 0);
      if (rc < 0) throw manageError(1, rc);
    }
  }

  /** km_manage keys (hex), for diagnostics and tests. */
  manageKeys(): string[] {
    const fd = this.fd('km_manage');
    const out: string[] = [];
    const key = new Uint8Array(MANAGE_KEY_SIZE);
    const next = new Uint8Array(MANAGE_KEY_SIZE);
    let rc = libbpf.mapNextKey(fd, null, next);
    while (rc === 0) {
      out.push(toHex(next));
      key.set(next);
      rc = libbpf.mapNextKey(fd, key, next);
    }
    return out;
  }
}
