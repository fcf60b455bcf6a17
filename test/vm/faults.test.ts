// Helper failures as choice points (storage allocation, msg_push_data, map updates): which
// invariants of our data path survive them. Everything must hold except the documented findings
// below, which are real behaviours of bpf/src under faults (reported in the issue notes):
//  - storage-create: an enrolled TCP connect whose storage cannot be allocated is left untouched,
//    so it has no storage (enrolled-tcp-storage), and a DNS connect then keeps its destination
//    (dns-proxy expects the proxy).
//  - map-update: a control connect whose km_manage update fails still proceeds (the connect is
//    never refused, section 3.1), so the namespace is not enrolled: its next TCP connect gets no
//    storage although the model enrolled it (enrolled-tcp-storage), and its next DNS connect
//    keeps its destination (dns-proxy); when the update that fails is sockops' of the local IP,
//    that IP stays unmanaged and its next waypoint-bound socket is not put in km_socket
//    (sockhash-membership).
//  - push-data: sendmsg sets has_encoded before bpf_msg_push_data; when the push fails the stream
//    goes out without its TLV and never gets one (tlv-prefix, a Normative rule).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ENVIRONMENT as env } from '../../model/environment.js';
import { invariants } from '../../model/spec/index.js';
import { caseArb } from '../../generators/index.js';
import { createVmExecutor } from '../../bpf/vm/executor.js';
import { FAILURE_POINTS } from '../../bpf/runner/choices.js';

const KNOWN_FINDINGS = new Set([
  'storage-create enrolled-tcp-storage',
  'storage-create dns-proxy',
  'map-update enrolled-tcp-storage',
  'map-update dns-proxy',
  'map-update sockhash-membership',
  'push-data tlv-prefix',
]);

describe('invariants under helper failures', () => {
  it('hold on the VM under every failure point, but for the documented findings', async () => {
    const vm = await createVmExecutor({});
    const broken = new Map<string, string>();
    let traces = 0;
    for (const kind of ['consistent', 'raw'] as const) {
      for (const shape of ['single', 'sequence'] as const) {
        for (const c of fc.sample(caseArb({ kind, shape }), { seed: 5, numRuns: 120 })) {
          for (const point of FAILURE_POINTS) {
            for (const o of vm.outcomeSet(c, { failures: [point], maxRuns: 2000 })) {
              traces++;
              const ctx = { case: c, env, steps: c.ops.map((op, i) => ({ op, observation: o.observations[i]! })) };
              for (const inv of invariants) {
                if (inv.needs === 'passes') continue;
                const v = inv.check(ctx);
                if (v.status === 'violated' && !broken.has(`${point} ${inv.name}`)) broken.set(`${point} ${inv.name}`, v.detail);
              }
            }
          }
        }
      }
    }
    expect(traces).toBeGreaterThan(1000);
    const unexpected = [...broken].filter(([k]) => !KNOWN_FINDINGS.has(k));
    expect(unexpected).toEqual([]);
    // The findings are real: the push-data one in particular is seen, so this test documents it.
    expect(broken.has('push-data tlv-prefix')).toBe(true);
  }, 120_000);
});
