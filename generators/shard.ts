// A shard's part of an enumeration (`--shard i/n`): the items whose index in the enumeration's
// fixed order is i - 1 modulo n, the rule the routing exploration splits its top-level choices
// by. Modular rather than contiguous so that each shard gets small and large cases alike (the
// enumerations run smallest first). Indices stay those of the whole enumeration, so a finding's
// `scope.index` path replays the same case whichever shard found it.

export interface Shard {
  /** 0-based. */
  readonly index: number;
  readonly count: number;
}

export const WHOLE: Shard = { index: 0, count: 1 };

export function inShard(i: number, shard: Shard = WHOLE): boolean {
  return i % shard.count === shard.index;
}

/** The shard's items with their index in the whole enumeration. */
export function* shardPart<T>(items: Iterable<T>, shard: Shard = WHOLE): Generator<[number, T]> {
  let i = 0;
  for (const x of items) {
    if (inShard(i, shard)) yield [i, x];
    i++;
  }
}

/** How many of the first `total` indices are the shard's. */
export function shardSize(total: number, shard: Shard = WHOLE): number {
  return total > shard.index ? Math.floor((total - shard.index - 1) / shard.count) + 1 : 0;
}

/** What a shard ran of an enumerated domain, as the JSON report says it (merge sums the parts). */
export interface EnumeratedPart {
  readonly scope: number;
  readonly shard: Shard;
  /** Cases of the domain that are this shard's part, and how many of them ran. */
  readonly part: number;
  readonly ran: number;
  /** Cases of the whole domain at this scope. */
  readonly total: number;
  /** Every case of the part ran (no failure stopped it). */
  readonly complete: boolean;
}

/** `280 cases`, or `shard 1/2: 140 of 280 cases`. */
export function partText(p: EnumeratedPart): string {
  return p.shard.count === 1 ? `${p.total} cases` : `shard ${p.shard.index + 1}/${p.shard.count}: ${p.part} of ${p.total} cases`;
}
