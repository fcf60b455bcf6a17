// The section of docs/spec.md on bounded-exhaustive exploration: what a choice point is and the
// value classes enumerated per scope, rendered from generators/exhaustive/classes.ts.

import { classTable } from '../../generators/exhaustive/classes.js';
import { mdTable } from './markdown.js';

export function exhaustiveSection(title: string): string[] {
  const rows = classTable().flatMap((r) => r.classes.map((c, i) => [i === 0 ? r.what : '', c.name, String(c.minScope), c.stands]));
  return [
    `## ${title}`,
    '',
    '`kmesh-check check --exhaustive --scope N` (and, at scope 1, the first phase of every run) checks',
    'every case within a scope instead of sampling. It starts from empty maps and an undecided',
    'environment; every read of a routing-map entry or of a field of a present entry that is still',
    'undecided, by the reference model or by the compiled program in the VM, is a choice point:',
    '"absent" for entries, then each value class below. Both readers share one record of decisions,',
    'so what one decided the other sees, and entries only the program reads are enumerated too.',
    'What nobody reads stays absent (entries) or zero (fields). Choice sequences are explored depth',
    'first. Ids and addresses of a class are interchangeable: a choice is "an existing one or the',
    'next fresh one", so each state is enumerated once up to renaming. The VM decides a field when a',
    'load first touches it; a load at an offset aligned to 8 (4, 2) bytes decides every field in the',
    '8 (4, 2) bytes from there, since the load size is not known at that point (a sound',
    "over-approximation). For each case the model's set of allowed outcomes and the VM's outcomes over",
    'every prandom value of the scope must be equal; on the kernel each enumerated case is then run',
    'and must give an allowed outcome. A finding replays from its choice sequence:',
    '`kmesh-check replay --phase exhaustive/scope-N --seed 0 --path P`.',
    '',
    '**What "complete for scope N" means.** Every state whose answers use value classes of scope at',
    'most N (the table below), with at most N present entries per routing map and N ids (service ids',
    'and backend uids share them) and addresses per pool, and with at most N - 1 *deviations* along',
    'its choice sequence. A deviation is an answer scope 1 does not offer: a value of a class from',
    'scope 2 on (the operation sequence, the destination and its port count too), an endpoint count',
    'above 1, a port that matches something in a service-port slot after the first, a second id, a',
    'second frontend entry, a second endpoint entry, a start of an enrolled namespace other than',
    'control connects with connection reports on. Answers of scope 1 are unlimited, so scope 1 is',
    'every state of one entry per map over the scope-1 classes, and scope N contains scope N - 1.',
    'Fresh addresses of a pool and service or backend entries cost nothing: a fresh address matters',
    'only when a frontend lookup finds it (a second frontend entry pays), and an entry only through',
    'its id (a second id pays). Without this bound scope 2 holds millions of states (every',
    "combination of two services' worth of fields); with it scope 2 holds about thirty times scope 1.",
    '',
    "**A waypoint's own frontend entry is part of the waypoint.** A waypoint address is typically a VIP",
    'that the pipeline resolves again: the next pass of the chain looks the address up in km_frontend.',
    'That read is not a free choice of the state:',
    'its key is a value already decided (the waypoint address, as stored and v4-mapped folded to',
    'IPv4), and the program forces the lookup. So an entry under a decided waypoint address is not a',
    'second frontend entry; it still counts against the N entries per map, and what it names pays as',
    'any id does: an id already in the state costs nothing (the chain loops back), a fresh one is a',
    'second id. A chain that reaches a second service or backend is therefore one deviation (scope',
    '2), and scope 1 is unchanged (its one frontend entry is taken by the destination).',
    '',
    'A class is enumerated from the scope in its column on (from scope 2 on it is a deviation); its',
    'representative stands for every value the model and the data path treat alike.',
    '',
    ...mdTable(['value', 'class', 'from scope', 'representative, and what it stands for'], rows),
    '',
  ];
}
