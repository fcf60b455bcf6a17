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
    'A class is enumerated from the scope in its column on; its representative stands for every value',
    'the model and the data path treat alike.',
    '',
    ...mdTable(['value', 'class', 'from scope', 'representative, and what it stands for'], rows),
    '',
  ];
}
