// Acceleration cases shared by the VM, kernel and agreement suites: the generated sample (fixed
// seed) and the hand-written isolation case with one four-tuple in two namespaces.

import fc from 'fast-check';
import { accelCaseArb } from '../../generators/accel.js';
import { EMPTY_FILTER, type AccelCase, type AccelObservation, type AccelPair } from '../../model/accel/domain.js';
import { judgeAccel } from '../../model/accel/invariants.js';

export const ACCEL_CASES: readonly AccelCase[] = fc.sample(accelCaseArb(), { seed: 1515, numRuns: 150 });

const PAIR: AccelPair = { netns: 0, family: 'inet', clientAddr: '127.0.0.1', clientPort: 40000, serverAddr: '127.0.0.1', serverPort: 8080, outside: 'none' };

/** Two connections with one four-tuple, one per namespace; the second's client outside the cgroup. */
export const ISOLATION: AccelCase = {
  filter: EMPTY_FILTER,
  pairs: [PAIR, { ...PAIR, netns: 1, outside: 'client' }],
  ops: [
    { op: 'connect', pair: 0 },
    { op: 'connect', pair: 1 },
    { op: 'send', pair: 0, from: 'client', size: 8 },
    { op: 'send', pair: 1, from: 'server', size: 8 },
    { op: 'send', pair: 0, from: 'server', size: 8 },
    { op: 'send', pair: 1, from: 'client', size: 8 },
    { op: 'close', pair: 1, end: 'client' },
    { op: 'close', pair: 0, end: 'server' },
    { op: 'close', pair: 1, end: 'server' },
    { op: 'close', pair: 0, end: 'client' },
  ],
};

/** Both connections of ISOLATION inside the cgroup and accelerated, the second namespace connecting first. */
export const ISOLATION_BOTH_INSIDE: AccelCase = {
  filter: EMPTY_FILTER,
  pairs: [PAIR, { ...PAIR, netns: 1 }],
  ops: [
    { op: 'connect', pair: 1 },
    { op: 'connect', pair: 0 },
    { op: 'send', pair: 0, from: 'client', size: 8 },
    { op: 'send', pair: 1, from: 'client', size: 8 },
    { op: 'send', pair: 1, from: 'server', size: 8 },
    { op: 'close', pair: 0, end: 'client' },
    { op: 'send', pair: 1, from: 'server', size: 8 },
    { op: 'close', pair: 1, end: 'server' },
    { op: 'close', pair: 0, end: 'server' },
    { op: 'close', pair: 1, end: 'client' },
  ],
};

/** Invariant name -> the violations it found, over cases and their observations. */
export function accelViolations(cases: readonly AccelCase[], obs: readonly AccelObservation[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  obs.forEach((o, i) => {
    for (const j of judgeAccel(cases[i]!, o)) if (j.verdict.status === 'violated') out.set(j.name, [...(out.get(j.name) ?? []), `case ${i}: ${j.verdict.detail}`]);
  });
  return out;
}
