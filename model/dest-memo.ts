// Memo tables keyed by a connect's family, protocol and destination, without building key strings:
// the model and the spec ask the environment the same few questions for every case, and a
// template-literal key costs an allocation and a fresh hash per call where nested maps over the
// (interned) address text and the port cost neither. Bounded like shared/memo.ts: a run over many
// generated addresses starts a table over instead of growing it.

import type { Family, SockAddr } from './address.js';
import type { Protocol } from './domain.js';

/** Slot of a (family, protocol) pair in the tables below: an array index, cheaper than nested records. */
function kindSlot(family: Family, protocol: Protocol): number {
  return (family === 'inet' ? 0 : 2) + (protocol === 'tcp' ? 0 : 1);
}

export class DestMemo<T> {
  /** Per kindSlot: address text -> port -> value. */
  private readonly tables: Map<string, Map<number, T>>[] = [new Map(), new Map(), new Map(), new Map()];
  private entries = 0;

  constructor(private readonly limit = 20_000) {}

  get(family: Family, protocol: Protocol, dest: SockAddr): T | undefined {
    return this.tables[kindSlot(family, protocol)]!.get(dest.addr)?.get(dest.port);
  }

  set(family: Family, protocol: Protocol, dest: SockAddr, value: T): void {
    if (this.entries >= this.limit) {
      for (const table of this.tables) table.clear();
      this.entries = 0;
    }
    const table = this.tables[kindSlot(family, protocol)]!;
    let byPort = table.get(dest.addr);
    if (!byPort) table.set(dest.addr, (byPort = new Map()));
    byPort.set(dest.port, value);
    this.entries++;
  }
}

/** One value per (family, protocol), made on first use. */
export class PerSocketKind<T> {
  private readonly values: (T | undefined)[] = [undefined, undefined, undefined, undefined];

  constructor(private readonly make: (family: Family, protocol: Protocol) => T) {}

  get(family: Family, protocol: Protocol): T {
    return (this.values[kindSlot(family, protocol)] ??= this.make(family, protocol));
  }
}
