// The deviation bound of bounded-exhaustive exploration (generators/exhaustive/decisions.ts) at the
// frontend entry a waypoint chain reads: an entry under a decided waypoint address is the waypoint's
// own (its VIP), so only the id it names can cost a deviation; an entry under any other new key is a
// second frontend entry and costs one itself. Also the endpoint indices it decides at all. Driven by a scripted oracle that records what it is offered.

import { describe, expect, it } from 'vitest';
import { Decisions, type Oracle } from '../../generators/exhaustive/decisions.js';
import { LbPolicy } from '../../model/domain.js';
import { WIDE_COUNT } from '../../generators/exhaustive/classes.js';

/** Answers by label (default: the first alternative) and records how many alternatives each label had. */
class Script implements Oracle {
  readonly offered = new Map<string, number>();
  constructor(private readonly answers: Record<string, number>) {}
  choose(label: string, size: number): number {
    this.offered.set(label, size);
    return this.answers[label] ?? 0;
  }
}

/** Scope 2: destination 10.0.0.1 is service 1's frontend; service 1 has a waypoint at the fresh 10.0.0.2. */
function serviceWithWaypoint(answers: Record<string, number>): { d: Decisions; script: Script } {
  const script = new Script({ 'frontend 10.0.0.1': 1, 'service 1': 1, 'service 1 wpPort': 1, 'service 1 wpAddr': 2, ...answers });
  const d = new Decisions(2, script);
  d.useAddress('ipv4', 1);
  expect(d.frontend('10.0.0.1')).toBe(1);
  expect(d.service(1)).not.toBeNull();
  expect(d.serviceField(1, 'wpPort')).toBe(15001);
  expect(d.serviceField(1, 'wpAddr')).toBe('10.0.0.2');
  return { d, script };
}

describe('exhaustive decisions: the frontend entry of a waypoint address', () => {
  it('offers absent, the existing id and a fresh id under the waypoint address (the fresh id is the one deviation of scope 2)', () => {
    const { d, script } = serviceWithWaypoint({ 'frontend 10.0.0.2': 2 });
    expect(d.frontend('10.0.0.2')).toBe(2);
    expect(script.offered.get('frontend 10.0.0.2')).toBe(3);
    // The fresh id used scope 2's one deviation: an endpoint count of 2 is no longer offered.
    expect(d.service(2)).toBeNull();
    d.frontend('10.0.0.1');
    expect(d.toState().frontends).toEqual([
      { addr: '10.0.0.1', upstreamId: 1 },
      { addr: '10.0.0.2', upstreamId: 2 },
    ]);
  });

  it('keeps the existing id free there: the loop back to service 1 leaves the deviation for another answer', () => {
    const { d, script } = serviceWithWaypoint({ 'frontend 10.0.0.2': 1, 'service 1 count0': 2 });
    expect(d.frontend('10.0.0.2')).toBe(1);
    expect(script.offered.get('frontend 10.0.0.2')).toBe(3);
    expect(d.serviceField(1, 'count0')).toBe(2);
    expect(script.offered.get('service 1 count0')).toBe(3);
  });

  it('charges a second frontend entry under any other key: the existing id only, no fresh one', () => {
    const { d, script } = serviceWithWaypoint({ 'frontend 10.0.0.3': 1 });
    expect(d.frontend('10.0.0.3')).toBe(1);
    expect(script.offered.get('frontend 10.0.0.3')).toBe(2);
    // That entry used the deviation: counts above 1 are no longer offered.
    d.serviceField(1, 'count0');
    expect(script.offered.get('service 1 count0')).toBe(2);
  });

  it('knows a v4-mapped waypoint address by its IPv4 key too, as connect6 folds it', () => {
    const viaWaypoint = (wpAddr: number) => {
      const script = new Script({ 'frontend 10.0.0.1': 1, 'service 1': 1, 'service 1 wpPort': 1, 'service 1 wpAddr': wpAddr });
      const d = new Decisions(2, script);
      d.useAddress('ipv4', 1);
      d.frontend('10.0.0.1');
      d.service(1);
      d.serviceField(1, 'wpPort');
      return { d, script, addr: d.serviceField(1, 'wpAddr') };
    };
    // The index of ::ffff:10.0.0.2 among wp_addr's alternatives, found by trying each.
    const size = viaWaypoint(0).script.offered.get('service 1 wpAddr')!;
    const mapped = [...Array(size).keys()].find((i) => viaWaypoint(i).addr === '::ffff:10.0.0.2');
    expect(mapped).toBeDefined();
    // The v4-mapped class was the one deviation: under the folded key the existing id is still free...
    const a = viaWaypoint(mapped!);
    a.d.frontend('10.0.0.2');
    expect(a.script.offered.get('frontend 10.0.0.2')).toBe(2);
    // ...while under another key a second entry is no longer affordable (no choice point at all).
    const b = viaWaypoint(mapped!);
    expect(b.d.frontend('10.0.0.3')).toBeNull();
    expect(b.script.offered.has('frontend 10.0.0.3')).toBe(false);
  });
});

describe('exhaustive decisions: the wide count', () => {
  it('is offered, at no cost, in group 0 of a failover service only', () => {
    const offers = (policyAnswer: number, field: string) => {
      const script = new Script({ 'service 1': 1, 'service 1 policy': policyAnswer });
      const d = new Decisions(1, script);
      d.service(1);
      const policy = d.serviceField(1, 'policy');
      d.serviceField(1, field);
      return { policy, offered: script.offered.get(`service 1 ${field}`) };
    };
    // Scope 1's policies in class order: random, strict, failover.
    expect(offers(2, 'count0')).toEqual({ policy: LbPolicy.failover, offered: 3 });
    expect(offers(0, 'count0')).toEqual({ policy: LbPolicy.random, offered: 2 });
    expect(offers(2, 'count1')).toEqual({ policy: LbPolicy.failover, offered: 2 });
    const script = new Script({ 'service 1': 1, 'service 1 policy': 2, 'service 1 count0': 2 });
    const d = new Decisions(1, script);
    d.service(1);
    d.serviceField(1, 'policy');
    expect(d.serviceField(1, 'count0')).toBe(WIDE_COUNT);
    // A program that reads group 0's count before the policy meets the same domain: the policy is decided first.
    const early = new Script({ 'service 1': 1, 'service 1 policy': 2 });
    const e = new Decisions(1, early);
    e.service(1);
    e.serviceField(1, 'count0');
    expect(early.offered.get('service 1 count0')).toBe(3);
    expect(e.serviceField(1, 'policy')).toBe(LbPolicy.failover);
  });
});

describe('exhaustive decisions: endpoint indices past the small counts', () => {
  it('are absent without a choice point, so a draw over the wide count reads no more entries than a small count', () => {
    const script = new Script({});
    const d = new Decisions(1, script);
    // Scope 1: index 2 (one past count 1, an off-by-one pick) is still a choice, index 3 on are absent.
    d.endpoint(1, 0, 2);
    expect(script.offered.has('endpoint 1/0/2')).toBe(true);
    for (const index of [3, 0x10000, WIDE_COUNT]) {
      expect(d.endpoint(1, 0, index)).toBeNull();
      expect(script.offered.has(`endpoint 1/0/${index}`)).toBe(false);
    }
  });
});
