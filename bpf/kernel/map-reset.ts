// Maps outside the ABI put back from user space before each case, where no shim does it (the
// report harness; the routing worker's shim has kf_reset_maps): hash-like maps emptied, arrays
// given back the bytes they held after load. A case then sees nothing the cases before it wrote.

import { KmeshCheckError } from '../../shared/errors.js';
import { libbpf } from './libbpf.js';
import { errnoName } from './libc.js';
import type { ResetMap } from './loader.js';

export class MapResetter {
  private readonly arrays: Array<{ map: ResetMap; after: Uint8Array<ArrayBuffer>[] }> = [];
  private readonly hashes: ResetMap[] = [];
  private readonly value: Uint8Array<ArrayBuffer>;

  constructor(maps: readonly ResetMap[]) {
    let largest = 0;
    for (const m of maps) {
      largest = Math.max(largest, m.valueSize, m.keySize);
      if (m.hash) this.hashes.push(m);
      else this.arrays.push({ map: m, after: Array.from({ length: m.maxEntries }, (_, i) => this.read(m, i)) });
    }
    this.value = new Uint8Array(largest);
  }

  private read(m: ResetMap, index: number, into: Uint8Array<ArrayBuffer> = new Uint8Array(m.valueSize)): Uint8Array<ArrayBuffer> {
    const rc = libbpf.mapLookup(m.fd, u32(index), into);
    if (rc < 0) throw new KmeshCheckError('environment', `cannot read entry ${index} of ${m.name} to put it back between cases (${errnoName(rc)})`);
    return into;
  }

  reset(): void {
    for (const m of this.hashes) {
      const key = new Uint8Array(m.keySize);
      while (libbpf.mapNextKey(m.fd, null, key) === 0) {
        const rc = libbpf.mapDelete(m.fd, key);
        if (rc < 0) throw new KmeshCheckError('environment', `cannot empty ${m.name} between cases (${errnoName(rc)})`);
      }
    }
    for (const { map, after } of this.arrays) {
      after.forEach((want, i) => {
        const now = this.read(map, i, this.value.subarray(0, map.valueSize));
        if (now.every((b, j) => b === want[j])) return;
        const rc = libbpf.mapUpdate(map.fd, u32(i), want, 0);
        if (rc < 0) throw new KmeshCheckError('environment', `cannot put ${map.name} back between cases (${errnoName(rc)})`);
      });
    }
  }
}

const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
