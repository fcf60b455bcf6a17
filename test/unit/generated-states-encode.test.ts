// Every state the generators produce, raw ones included, fits the ABI: the codecs encode it.
// (Raw states may be nonsense for the control plane, but never values a u32 field cannot hold.)

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeState } from '../../bpf/codec/index.js';
import { caseArb } from '../../generators/index.js';

describe('generated states', () => {
  for (const shape of ['single', 'sequence'] as const) {
    it(`encode for every ${shape} case of both kinds`, () => {
      for (const seed of [1, 2, 3]) {
        const cases = fc.sample(caseArb({ kind: 'both', shape }), { seed, numRuns: 1500 });
        for (const c of cases) {
          const states = [c.state, ...c.ops.flatMap((o) => (o.op === 'apply' ? [o.state] : []))];
          for (const s of states) expect(() => encodeState(s)).not.toThrow();
        }
      }
    });
  }
});
