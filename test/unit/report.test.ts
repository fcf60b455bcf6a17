// The run report (cli/report.ts): findings that shrank to one case are tied together, in the JSON
// and in the summary a person reads; a phase that stopped half-way fails the run without taking
// the other findings with it (cli/phase-stopped.ts).

import { describe, expect, it } from 'vitest';
import { buildReport, compactPath, formatCounterexample, formatSummary, pathsText, type FindingJson } from '../../cli/report.js';
import { stoppedPhase } from '../../cli/phase-stopped.js';
import { stoppedPhasesOf } from '../../cli/section-phases.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { Statistics } from '../../properties/statistics.js';
import { formatReportCase } from '../../properties/report.js';
import type { Case, Observation } from '../../model/domain.js';

const caseOf = (port: number): Case => ({
  state: { frontends: [], services: [], endpoints: [], backends: [] },
  kind: 'consistent',
  enrolled: true,
  ops: [
    { op: 'socket', sock: 0, family: 'inet', protocol: 'udp' },
    { op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port } },
  ],
});

function finding(signature: string, invariant: string, c: Case): FindingJson {
  return { signature, signatureText: 'connect | result', invariant, hits: 1, modelPaths: {}, status: 'new', case: c, size: 2 } as unknown as FindingJson;
}

function report(findings: FindingJson[], stoppedPhases: string[] = []) {
  const result = { cases: 10, durationMs: 1, interrupted: false, invariants: [], statistics: new Statistics(), unclustered: 0, stopped: false };
  const meta = { executor: 'vm', objects: null, seed: 42, runs: 10, states: 'both', shard: null } as const;
  return buildReport(result, meta as never, { ok: true, requirements: [] }, findings, { stoppedPhases });
}

describe('a section phase that stops half-way', () => {
  it("is the phase's outcome for a harness or worker error, logged with its reason; other errors go on up", () => {
    const log: string[] = [];
    const e = new KmeshCheckError('environment', 'connect to fd00::96:1:80 failed (ECONNREFUSED)');
    expect(stoppedPhase('connection reports (section 7)', e, (s) => log.push(s))).toEqual({ status: 'stopped', why: e.message });
    expect(log[0]).toMatch(/^connection reports \(section 7\): STOPPED: connect to fd00::96:1:80 failed \(ECONNREFUSED\)\. The other phases' findings stand/);
    expect(stoppedPhase('acceleration', new KmeshCheckError('worker', 'the acceleration worker stopped'), () => {})?.status).toBe('stopped');
    expect(stoppedPhase('acceleration', new KmeshCheckError('codec', 'bad'), () => {})).toBeNull();
    expect(stoppedPhase('acceleration', new TypeError('x'), () => {})).toBeNull();
  });

  it('fails the run, keeps its findings and says which phase stopped and why', () => {
    const stopped = stoppedPhasesOf({ accel: { status: 'pass' }, reports: { status: 'stopped', why: 'connect failed' } });
    expect(stopped).toEqual(['connection reports: connect failed']);
    const r = report([finding('aaa', 'dns-proxy', caseOf(53))], stopped);
    expect(r.verdict).toBe('fail');
    expect(r.findings).toHaveLength(1);
    expect(formatSummary(r)).toContain('phase stopped: connection reports: connect failed (fails the run)');
    expect(formatSummary(r)).toMatch(/verdict: FAIL: 1 finding, 1 phase stopped$/);
    expect(report([]).verdict).toBe('pass');
    const onlyStopped = report([], ['acceleration: the worker stopped']);
    expect(onlyStopped.verdict).toBe('fail');
    // The verdict says why the run failed: not "0 findings".
    expect(formatSummary(onlyStopped)).toMatch(/verdict: FAIL: 1 phase stopped$/);
  });
});

describe('findings that shrank to the same case', () => {
  it('name the first finding of their case, in the JSON and under the later one in the summary', () => {
    const r = report([finding('aaa', 'dns-proxy', caseOf(53)), finding('bbb', 'no-fabricated-peer', caseOf(80)), finding('ccc', 'executor-matches-model', caseOf(53))]);
    expect(r.findings.map((f) => f.sameCaseAs)).toEqual([null, null, 'aaa']);
    const text = formatSummary(r);
    expect(text).toMatch(/ccc .*\n\s+the same shrunk case as aaa: likely one bug that breaks both invariants/);
    expect(text.match(/the same shrunk case/g)).toHaveLength(1);
  });
});

describe('the replay line of an exhaustive finding', () => {
  const cx = (phase: string, size: number, shrunkFrom: number) =>
    ({
      phase,
      seed: 0,
      path: '3:1:0',
      case: caseOf(80),
      size,
      shrunkFrom,
      failure: { invariant: 'no-fabricated-peer', statement: 's', detail: 'd', source: 'executor' },
      minimizeTries: 1,
      signature: { id: 'abc', text: 'connect | result', path: 'random' },
      hits: 1,
    }) as never;

  it('says its path replays the enumerated case when minimisation made it smaller', () => {
    expect(formatCounterexample(cx('exhaustive/scope-1', 2, 9), 'vm')).toMatch(
      /replay: kmesh-check replay --phase exhaustive\/scope-1 --seed 0 --path 3:1:0 --executor vm \(the enumerated case, of size 9; replay --case on the saved failure runs the one above\)$/,
    );
    // The enumerated case itself, and a sampled phase's path (which replays the shrunk case): no such note.
    expect(formatCounterexample(cx('exhaustive/scope-1', 2, 2), 'vm')).toMatch(/--executor vm$/);
    expect(formatCounterexample(cx('consistent/single', 2, 9), 'vm')).toMatch(/--executor vm$/);
  });

  it("counts its hits as the exploration's line and the invariant table count theirs: exhaustive states, sampled cases", () => {
    const hits = (phase: string, extra: object) => formatCounterexample({ ...(cx(phase, 2, 2) as object), ...extra } as never, 'vm');
    expect(hits('exhaustive/scope-1', { hits: 36, exhaustiveHits: 32 })).toContain('(hit by 32 exhaustive states and 4 sampled cases)');
    expect(hits('exhaustive/scope-1', { hits: 3 })).toContain('(hit by 3 exhaustive states)');
    expect(hits('consistent/single', { hits: 1 })).toContain('(hit by 1 sampled case)');
  });
});

describe('a finding whose peer is where the kernel takes an address of all zeros', () => {
  /** A finding on `c` whose failure showed `observed` (and, at one step, the model's `allowed`). */
  const finding = (c: Case, observed: readonly Observation[], allowedAtStep?: { step: number; allowed: Observation[] }) =>
    formatCounterexample(
      {
        phase: 'consistent/single',
        seed: 0,
        path: '0',
        case: c,
        size: 2,
        shrunkFrom: 2,
        failure: { invariant: 'executor-matches-model', statement: 's', detail: 'd', source: 'executor', observed, ...(allowedAtStep ? { allowedAtStep } : {}) },
        minimizeTries: 0,
        signature: { id: 'abc', text: 'connect | result', path: '-' },
        hits: 1,
      } as never,
      'vm',
    );
  const note = /note: the kernel sends a destination of all zeros .* to the socket's own IPv4 address when it has one .* else to loopback/;

  it('says where a connect to 0.0.0.0 goes, only when the case names such an address and a peer shows there', () => {
    const at = (backendAddr: string, peer: string) =>
      finding(
        { ...caseOf(80), state: { frontends: [], services: [], endpoints: [], backends: [{ uid: 2, addr: backendAddr, services: [], waypoint: { addr: '0.0.0.0', port: 0 } }] } },
        [
          { op: 'socket', sock: 0 },
          { op: 'connect', sock: 0, peer: { addr: '10.0.0.1', port: 80 }, error: null, storage: null },
        ],
        { step: 1, allowed: [{ op: 'connect', sock: 0, peer: { addr: peer, port: 8000 }, error: null, storage: null }] },
      );
    expect(at('0.0.0.0', '127.0.0.1')).toMatch(note);
    expect(at('0:0::0', '127.0.0.1')).toMatch(note);
    // A connected socket's source: the pod's address.
    expect(at('0.0.0.0', '10.255.0.1')).toMatch(note);
    expect(at('10.0.0.2', '127.0.0.1')).not.toMatch(note);
    expect(at('0.0.0.0', '10.0.0.2')).not.toMatch(note);
  });

  it("and where a sendto to 0.0.0.0 goes: from a bound socket, to the socket's own address", () => {
    const sent = (arrived: string) =>
      finding(
        {
          state: { frontends: [], services: [], endpoints: [], backends: [] },
          kind: 'consistent',
          enrolled: false,
          ops: [
            { op: 'socket', sock: 0, family: 'inet', protocol: 'udp', bindTo: '10.6.0.6' },
            { op: 'sendto', sock: 0, dest: { addr: '0.0.0.0', port: 53 }, n: 1 },
          ],
        },
        [
          { op: 'socket', sock: 0 },
          { op: 'sendto', sock: 0, arrivedAt: { addr: arrived, port: 53 }, error: null, storage: null },
        ],
      );
    expect(sent('10.6.0.6')).toMatch(note);
    expect(sent('10.9.0.53')).not.toMatch(note);
  });
});

describe('the model paths of a finding, as read', () => {
  it('write a repeated sequence of passes once with its count, and list the most hit paths, counting the rest', () => {
    const alternating = Array.from({ length: 34 }, (_, i) => (i % 2 ? 'service-waypoint' : 'backend-waypoint')).join(' > ');
    expect(compactPath(alternating)).toBe('(backend-waypoint > service-waypoint) x17');
    expect(compactPath('a > b > c > a > b > c > d')).toBe('(a > b > c) x2 > d');
    expect(compactPath('backend-waypoint > service-waypoint x33')).toBe('backend-waypoint > service-waypoint x33');
    const paths = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`p${i}`, 11 - i]));
    expect(pathsText(paths)).toBe(' on model paths p0 (11), p1 (10), p2 (9), p3 (8), p4 (7), p5 (6), p6 (5), p7 (4), and 3 more paths (6 cases)');
    expect(pathsText({ [alternating]: 1 })).toBe(' on model path (backend-waypoint > service-waypoint) x17 (1)');
    // '-' is no path: the failing step ran no connect program.
    expect(pathsText({ '-': 3 })).toBe(' on model path - (no connect pass) (3)');
  });
});

describe('a finding whose cases broke several invariants', () => {
  const cx = (invariantHits?: Record<string, number>, invariant = 'executor-matches-model', executor = 'vm') =>
    formatCounterexample(
      {
        phase: 'consistent/single',
        seed: 0,
        path: '0',
        case: caseOf(80),
        size: 2,
        shrunkFrom: 2,
        failure: { invariant, statement: 's', detail: 'd', source: 'executor' },
        minimizeTries: 0,
        signature: { id: 'abc', text: 'connect | storage.hasSetIp', path: 'random' },
        hits: 3,
        ...(invariantHits ? { invariantHits } : {}),
      } as never,
      executor,
    );

  it('names them with their counts, since the table counts each case under its own', () => {
    expect(cx({ 'executor-matches-model': 2, 'via-waypoint-sticky': 1 })).toContain('its cases broke executor-matches-model (2), via-waypoint-sticky (1)');
    expect(cx({ 'executor-matches-model': 3 })).not.toContain('its cases broke');
    expect(cx()).not.toContain('its cases broke');
  });

  it('says that executor-covers-model ran the objects on the VM in a kernel run', () => {
    expect(cx(undefined, 'executor-covers-model', 'kernel')).toMatch(/broke \(on the objects under test, run on the userspace VM with every prandom draw/);
    expect(cx(undefined, 'executor-matches-model', 'kernel')).toMatch(/broke \(on the kernel executor\)/);
  });
});

describe('a report case as printed', () => {
  it('says the globals line is the start when a connection turns enable_monitoring', () => {
    const conn = { connectTo: { addr: '127.0.0.1', port: 8080 }, listen: { addr: '127.0.0.1', port: 8080 }, sends: [], firstClose: 'client' as const, storeVerdict: false };
    const c = { monitoring: true, periodic: true, state: { frontends: [], services: [], endpoints: [], backends: [] }, conns: [conn] };
    expect(formatReportCase(c)[0]).toBe('globals: enable_monitoring 1, enable_periodic_report 1, node_ip -, pod_gateway -');
    const turned = formatReportCase({ ...c, conns: [{ ...conn, monitoringOff: true }, conn] });
    expect(turned[0]).toBe('globals: enable_monitoring 1 at the start (a connection below turns it off), enable_periodic_report 1, node_ip -, pod_gateway -');
    expect(turned[1]).toMatch(/monitoring turned off once established/);
  });
});

describe('the coverage line', () => {
  it('says why a run with findings is held to fewer classes', () => {
    const result = { cases: 10, durationMs: 1, interrupted: false, invariants: [], statistics: new Statistics(), unclustered: 0, stopped: false };
    const meta = { executor: 'vm', objects: null, seed: 42, runs: 10, states: 'both', shard: null } as const;
    const requirements = [{ class: 'inet', seen: 50, required: 40, ok: true }];
    const plain = buildReport(result, meta as never, { ok: true, requirements }, [], { stoppedPhases: [] });
    expect(formatSummary(plain)).toContain('coverage: ok (1 classes, each in at least 40 cases)');
    const waived = buildReport(result, meta as never, { ok: true, requirements, pathsWaived: 22 }, [finding('aaa', 'dns-proxy', caseOf(53))], { stoppedPhases: [] });
    expect(formatSummary(waived)).toContain('coverage: ok (1 classes, each in at least 40 cases; the 22 model-path classes are not required of a run with findings)');
  });
});
