// The phase checks shared by the report and acceleration phases (properties/section-check.ts) on
// a small synthetic phase whose minimal counterexamples are known: one finding per broken
// invariant, shrunk to the minimum while it breaks that same invariant, counted in hits,
// reproduced from its seed and path, and saved cases judged first. Plus the failure database's
// checks of the cases those phases save (cli/section-saved.ts).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { judgeSectionCase, runSectionChecks, shrinkSection, type SectionSpec } from '../../properties/section-check.js';
import { savedFailureProblem } from '../../cli/failure-db.js';
import { sectionSignature } from '../../cli/section-findings.js';
import { REPORT_STATE, reportCases } from '../../generators/report.js';
import { accelCaseArb } from '../../generators/accel.js';
import { reportRemovals } from '../../properties/report.js';
import { accelRemovals } from '../../properties/accel.js';

type C = number[];
const verdict = (bad: boolean, detail: string) => (bad ? { status: 'violated' as const, detail } : { status: 'holds' as const });
const spec: SectionSpec<C, C> = {
  phase: 'report',
  arb: fc.array(fc.nat(100), { maxLength: 12 }),
  invariants: [
    { name: 'no-big', statement: 'no number above 50' },
    { name: 'short', statement: 'at most 8 numbers' },
  ],
  judge: (_c, o) => [
    {
      name: 'no-big',
      verdict: verdict(
        o.some((x) => x > 50),
        `${o.find((x) => x > 50)} is above 50`,
      ),
    },
    { name: 'short', verdict: verdict(o.length > 8, `${o.length} numbers`) },
  ],
  run: (cases) => Promise.resolve(cases.map((c) => [...c])),
  size: (c) => c.length,
  formatCase: (c) => [c.join(' ')],
  formatObservation: (_c, o) => [o.join(' ')],
};

describe('section checks', () => {
  it('give one shrunk finding per broken invariant, with its hits, reproducible from seed and path', async () => {
    const r = await runSectionChecks(spec, { seed: 5, runs: 200 });
    expect(r.findings.map((f) => f.invariant).sort()).toEqual(['no-big', 'short']);
    const big = r.findings.find((f) => f.invariant === 'no-big')!;
    expect(big.case).toEqual([51]);
    expect(big.hits).toBe(r.failed['no-big']);
    expect(big.shrunkFrom).toBeGreaterThanOrEqual(big.size);
    // Shrinking keeps the invariant: the short finding is 9 numbers none of which need be big.
    const long = r.findings.find((f) => f.invariant === 'short')!;
    expect(long.case).toHaveLength(9);
    const again = await shrinkSection(spec, 5, big.path, { replayOnly: true });
    expect(again?.case).toEqual([51]);
    // Checked counts every case the invariant judged, the broken ones too (as the main phases' table).
    expect(r.exercised['no-big']).toBe(200);
    expect(r.failed['no-big']).toBeGreaterThan(0);
  });

  it('judge saved cases first; without shrinking report the first failing case as it is', async () => {
    const r = await runSectionChecks(spec, {
      seed: 5,
      runs: 50,
      shrink: false,
      maxFindings: 1,
      saved: [
        { case: [1, 2], seed: 0, path: '0' },
        { case: [99], seed: 0, path: '0' },
      ],
    });
    expect(r.replayed.map((f) => f?.invariant ?? null)).toEqual([null, 'no-big']);
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]!.size).toBe(r.findings[0]!.shrunkFrom);
    expect(await judgeSectionCase(spec, [3], { seed: 0, path: '' })).toBeNull();
  });

  it("make a finding 1-minimal by the phase's removals, where fast-check cannot shrink it", async () => {
    // A case fast-check cannot shrink (a constant): only the removals make it small.
    const fixed: SectionSpec<C, C> = { ...spec, arb: fc.constant([3, 60, 7, 70, 1]), removals: (c) => c.map((_, i) => c.filter((_, j) => j !== i)) };
    const f = await shrinkSection(fixed, 1, '0', { invariant: 'no-big' });
    expect(f?.case).toEqual([70]);
    expect(f?.shrunkFrom).toBe(5);
    // A replay of the printed path reaches the same case.
    expect((await shrinkSection(fixed, 1, f!.path, { replayOnly: true }))?.case).toEqual([70]);
    // Without removals the case stays as fast-check left it.
    expect((await shrinkSection({ ...fixed, removals: undefined }, 1, '0', { invariant: 'no-big' }))?.case).toEqual([3, 60, 7, 70, 1]);
  });

  it('removals of report and acceleration cases are one piece smaller and keep every pair consistent', () => {
    for (const c of fc.sample(reportCases({ waits: true }), { seed: 3, numRuns: 50 })) {
      for (const r of reportRemovals(c)) {
        expect(r.conns.length).toBeGreaterThanOrEqual(1);
        // A connection goes with its sends; a send alone leaves the connections as they were.
        const sends = (x: typeof c) => x.conns.reduce((n, k) => n + k.sends.length, 0);
        expect(r.conns.length === c.conns.length ? sends(r) : r.conns.length).toBe(r.conns.length === c.conns.length ? sends(c) - 1 : c.conns.length - 1);
      }
    }
    for (const c of fc.sample(accelCaseArb(), { seed: 3, numRuns: 50 })) {
      for (const r of accelRemovals(c)) {
        expect(r.pairs.length).toBeGreaterThanOrEqual(1);
        // Every operation names a pair that exists, and each pair still connects before anything else.
        for (const op of r.ops) if (op.op !== 'refilter') expect(op.pair).toBeLessThan(r.pairs.length);
        r.pairs.forEach((_, p) => expect(r.ops.find((op) => op.op !== 'refilter' && op.pair === p)?.op).toBe('connect'));
      }
    }
  });

  it('a signature names the phase and the invariant', () => {
    const a = sectionSignature({ phase: 'report', invariant: 'report-close' });
    expect(a.id).not.toBe(sectionSignature({ phase: 'accel', invariant: 'report-close' }).id);
    expect(a.text).toMatch(/connection reports .*report-close/);
  });
});

describe('saved cases of the report and acceleration phases', () => {
  const base = { id: 'abcdef123456', executor: 'vm', invariant: 'report-close', seed: 1, path: '0:1', savedAt: '' };
  it('generated cases are valid; a broken one is one line naming the field', () => {
    for (const c of fc.sample(reportCases({ waits: true }), { seed: 3, numRuns: 30 })) expect(savedFailureProblem({ ...base, phase: 'report', case: c })).toBeNull();
    for (const c of fc.sample(accelCaseArb(), { seed: 3, numRuns: 30 })) expect(savedFailureProblem({ ...base, phase: 'accel', case: c, objects: { ops: '/a.o', redirect: '/a.o' } })).toBeNull();
    expect(savedFailureProblem({ ...base, phase: 'report', case: { monitoring: true, periodic: false, state: REPORT_STATE, conns: [] } })).toMatch(/case.conns/);
    expect(savedFailureProblem({ ...base, phase: 'report', case: { monitoring: true, periodic: false, state: REPORT_STATE, conns: [{ connectTo: { addr: 'x', port: 1 } }] } })).toMatch(/conns\[0\]/);
    expect(savedFailureProblem({ ...base, phase: 'accel', case: { filter: {}, pairs: [], ops: [] } })).toMatch(/acceptCidrs/);
    // An abort is a pair's first close.
    const one = fc.sample(accelCaseArb({ maxPairs: 1 }), { seed: 3, numRuns: 1 })[0]!;
    const closes = (first: object, second: object) => ({
      ...base,
      phase: 'accel',
      case: {
        ...one,
        ops: [
          { op: 'connect', pair: 0 },
          { op: 'close', pair: 0, end: 'client', ...first },
          { op: 'close', pair: 0, end: 'server', ...second },
        ],
      },
      objects: { ops: '/a.o', redirect: '/a.o' },
    });
    expect(savedFailureProblem(closes({ abort: true }, {}))).toBeNull();
    expect(savedFailureProblem(closes({}, { abort: true }))).toMatch(/aborts pair 0 after its first close/);
    expect(savedFailureProblem(closes({ abort: 1 }, {}))).toMatch(/abort: true or nothing/);
    // Port range ends are u32s, as sock_param holds them; 2^32 is not one.
    const ranged = (end: number) => ({
      ...base,
      phase: 'accel',
      case: { ...fc.sample(accelCaseArb(), { seed: 3, numRuns: 1 })[0]!, filter: { acceptCidrs: [], returnCidrs: [], acceptPorts: [{ begin: 8080, end }], returnPorts: [] } },
      objects: { ops: '/a.o', redirect: '/a.o' },
    });
    expect(savedFailureProblem(ranged(70000))).toBeNull();
    expect(savedFailureProblem(ranged(2 ** 32))).toMatch(/must list \{begin, end\} u32s/);
    // Outside an enrolled namespace nothing rewrites a VIP: a saved case that connects to one is refused.
    const viaVip = { connectTo: { addr: '10.96.0.1', port: 80 }, listen: { addr: '127.0.0.1', port: 8080 }, sends: [], firstClose: 'client', storeVerdict: false };
    expect(savedFailureProblem({ ...base, phase: 'report', case: { monitoring: true, periodic: false, namespaceOutside: true, state: REPORT_STATE, conns: [viaVip] } })).toMatch(
      /straight to its listener/,
    );
    const direct = { ...viaVip, connectTo: { addr: '::ffff:127.0.0.1', port: 8080 }, clientFamily: 'inet6' };
    expect(savedFailureProblem({ ...base, phase: 'report', case: { monitoring: true, periodic: false, namespaceOutside: true, state: REPORT_STATE, conns: [direct] } })).toBeNull();
    // Connections closed last, only where no time passes.
    const overlap = (second: object) => ({ ...base, phase: 'report', case: { monitoring: true, periodic: false, state: REPORT_STATE, conns: [{ ...viaVip, closeLast: true }, second] } });
    expect(savedFailureProblem(overlap(direct))).toBeNull();
    expect(savedFailureProblem(overlap({ ...direct, closeWaitNs: 1 }))).toMatch(/closeLast connections cannot wait/);
    expect(savedFailureProblem({ ...base, phase: 'report', case: { monitoring: true, periodic: false, state: REPORT_STATE, conns: [{ ...viaVip, closeLast: 1 }] } })).toMatch(
      /closeLast must be true or false/,
    );
    // An aborted connection (a reset).
    const aborted = (abort: unknown) => ({ ...base, phase: 'report', case: { monitoring: true, periodic: false, state: REPORT_STATE, conns: [{ ...viaVip, abort }] } });
    expect(savedFailureProblem(aborted(true))).toBeNull();
    expect(savedFailureProblem(aborted('yes'))).toMatch(/abort must be true or false/);
    const toggled = (flags: object) => ({ ...base, phase: 'report', case: { monitoring: false, periodic: true, state: REPORT_STATE, conns: [{ ...viaVip, ...flags }] } });
    expect(savedFailureProblem(toggled({ monitoringOn: true }))).toBeNull();
    expect(savedFailureProblem(toggled({ monitoringOn: true, monitoringOff: true }))).toMatch(/both off and on/);
  });
});
