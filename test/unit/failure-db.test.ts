// The failure database's rules in isolation: which saved failures belong to a run (same executor,
// objects of the same content), how a saved file's shape and values are validated, and that a
// finding's signature does not depend on the seed (the same planted bug, one signature).

import { mkdtempSync, readdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { caseArb } from '../../generators/cases.js';
import { belongsTo, FailureDb, savedFailureProblem, type SavedFailure } from '../../cli/failure-db.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { runChecks } from '../../properties/run.js';
import { TlvDroppingExecutor } from '../helpers/planted.js';

const VALID: SavedFailure = {
  id: 'abcdef123456',
  savedAt: '2026-01-01T00:00:00.000Z',
  executor: 'vm',
  invariant: 'tlv-prefix',
  phase: 'consistent/single',
  seed: 1,
  path: '3:0:1',
  objects: null,
  case: {
    kind: 'consistent',
    enrolled: true,
    state: {
      frontends: [{ addr: '10.0.0.1', upstreamId: 2 }],
      services: [
        {
          id: 2,
          endpointCounts: [0, 0, 0, 0, 0, 0, 0],
          lbPolicy: 0,
          servicePorts: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
          targetPorts: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
          waypoint: { addr: '10.0.0.9', port: 15008 },
        },
      ],
      endpoints: [],
      backends: [],
    },
    ops: [
      { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
      { op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port: 80 } },
      { op: 'send', sock: 0, messages: 1 },
    ],
  },
};

describe('validation of a saved failure', () => {
  it('accepts a valid file and names the first invalid value of others', () => {
    expect(savedFailureProblem(VALID)).toBeNull();
    // A finding of the exhaustive phase replays from its choice sequence.
    expect(savedFailureProblem({ ...VALID, phase: 'exhaustive/scope-1', seed: 0, path: '12.0.3' })).toBeNull();
    const bad = (patch: (d: Record<string, unknown> & { case: Record<string, unknown> }) => void) => {
      const d = JSON.parse(JSON.stringify(VALID));
      patch(d);
      return savedFailureProblem(d);
    };
    expect(bad((d) => (d.executor = 'gpu'))).toMatch(/executor/);
    expect(bad((d) => (d.path = 'x; rm'))).toMatch(/path/);
    expect(bad((d) => ((d.case.state as { frontends: { upstreamId: number }[] }).frontends[0]!.upstreamId = -1))).toMatch(/frontends\[0\]/);
    expect(bad((d) => ((d.case.state as { services: { endpointCounts: number[] }[] }).services[0]!.endpointCounts = [1, 2]))).toMatch(/services\[0\]/);
    expect(bad((d) => ((d.case.ops as { dest?: { port: number } }[])[1]!.dest!.port = 65536))).toMatch(/ops\[1\]\.dest/);
    // A map port is a u32 (a raw state may set its upper half); a destination port is not.
    expect(bad((d) => ((d.case.state as { services: { servicePorts: number[] }[] }).services[0]!.servicePorts[0] = 80 + 0x10000))).toBeNull();
    expect(bad((d) => ((d.case.state as { services: { servicePorts: number[] }[] }).services[0]!.servicePorts[0] = 2 ** 32))).toMatch(/services\[0\]/);
    expect(bad((d) => ((d.case.ops as { family?: string }[])[0]!.family = 'unix'))).toMatch(/ops\[0\]/);
    // A socket bound at creation names an address (the model judges which).
    expect(bad((d) => ((d.case.ops as { bindTo?: unknown }[])[0]!.bindTo = '10.6.0.6'))).toBeNull();
    for (const v of [7, '', 'ten.six']) expect(bad((d) => ((d.case.ops as { bindTo?: unknown }[])[0]!.bindTo = v))).toMatch(/ops\[0\]\.bindTo/);
    expect(bad((d) => ((d.case.ops as { messages?: unknown }[])[2]!.messages = '3'))).toMatch(/ops\[2\]\.messages/);
    expect(bad((d) => (d.case.ops = [{ op: 'fork', sock: 0 }]))).toMatch(/ops\[0\]\.op/);
    expect(bad((d) => (d.objects = { connect: 7 }))).toMatch(/objects/);
    // Enrolment by km_manage writes carries a u32 value.
    expect(bad((d) => (d.case.enrolmentWrite = 0xffffffff))).toBeNull();
    for (const v of [-1, 2 ** 32, 1.5, '0']) expect(bad((d) => (d.case.enrolmentWrite = v))).toMatch(/enrolmentWrite/);
    // One kind of key alone: cookie or locals, beside a written enrolment.
    expect(bad((d) => ((d.case.enrolmentWrite = 0), (d.case.enrolmentKeys = 'locals')))).toBeNull();
    expect(bad((d) => (d.case.enrolmentKeys = 'cookie'))).toMatch(/enrolmentKeys/);
    expect(bad((d) => ((d.case.enrolmentWrite = 7), (d.case.enrolmentKeys = 'cookie')))).toMatch(/enrolmentKeys/);
    for (const v of ['both', 1, null]) expect(bad((d) => ((d.case.enrolmentWrite = 0), (d.case.enrolmentKeys = v)))).toMatch(/enrolmentKeys/);
    // Connection reports off is a flag: true or absent.
    expect(bad((d) => (d.case.monitoringOff = true))).toBeNull();
    for (const v of [false, 1, 'true']) expect(bad((d) => (d.case.monitoringOff = v))).toMatch(/monitoringOff/);
  });

  it('accepts the case of every generated phase, DNS datagram operations included', () => {
    for (const shape of ['single', 'sequence', 'dns'] as const) {
      for (const kind of ['consistent', 'raw'] as const) {
        const cases = fc.sample(caseArb({ kind, shape }), { seed: 7, numRuns: 60 });
        if (shape === 'dns') expect(cases.some((c) => c.ops.some((o) => o.op === 'deliver')) && cases.some((c) => c.ops.some((o) => o.op === 'recvfrom'))).toBe(true);
        for (const c of cases) expect(savedFailureProblem({ ...VALID, phase: `${kind}/${shape}`, case: c }), `${kind}/${shape}`).toBeNull();
      }
    }
    const dns = (op: Record<string, unknown>) => savedFailureProblem({ ...VALID, case: { ...VALID.case, ops: [VALID.case.ops[0], op] } });
    expect(dns({ op: 'sendto', sock: 0, dest: { addr: '10.0.0.1', port: 53 }, n: 2 })).toBeNull();
    expect(dns({ op: 'sendto', sock: 0, dest: { addr: '10.0.0.1', port: 53 }, n: -1 })).toMatch(/ops\[1\]\.n/);
    expect(dns({ op: 'deliver', sock: 0, from: { addr: '10.0.0.1' } })).toMatch(/ops\[1\]\.from/);
    expect(dns({ op: 'recvfrom', sock: 0 })).toBeNull();
  });

  it('lists unusable files in one line each and the usable ones beside them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-db-'));
    writeFileSync(join(dir, 'good.json'), JSON.stringify(VALID));
    writeFileSync(join(dir, 'torn.json'), '{"id": "abc');
    writeFileSync(join(dir, 'values.json'), JSON.stringify({ ...VALID, seed: 'one' }));
    const { failures, invalid } = new FailureDb(dir).list();
    expect(failures.map((f) => f.id)).toEqual([VALID.id]);
    expect(invalid).toHaveLength(2);
    for (const line of invalid) {
      expect(line.split('\n')).toHaveLength(1);
      expect(line).toMatch(/(torn|values)\.json: not a (readable|valid) saved failure/);
    }
  });
});

describe('which saved failures belong to a run', () => {
  it('same executor, and the same object paths (rebuilt or not) or the same content elsewhere', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-db-'));
    const objs = Object.fromEntries(['connect', 'sockops', 'sendmsg'].map((r) => [r, join(dir, `${r}.o`)]));
    for (const p of Object.values(objs)) writeFileSync(p, `bytes of ${p}`);
    const db = new FailureDb(join(dir, 'db'));
    const cx = {
      phase: VALID.phase,
      seed: 1,
      path: '0',
      case: VALID.case,
      shrunkFrom: 4,
      size: 4,
      failure: { invariant: 'tlv-prefix', statement: '', detail: '', source: 'executor' as const },
      minimizeTries: 0,
      signature: { id: '0123456789ab', text: 'send | - | stream.tlv' },
      hits: 1,
    };
    const saved = db.save(cx, { executor: 'vm', objects: objs });
    expect(readdirSync(join(dir, 'db')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(belongsTo(saved, { executor: 'vm', objects: objs })).toBe(true);
    expect(belongsTo(saved, { executor: 'kernel', objects: objs })).toBe(false);
    // The same content elsewhere is the same objects.
    const moved = Object.fromEntries(Object.entries(objs).map(([r, p]) => [r, `${p}.copy`]));
    for (const [r, p] of Object.entries(objs)) copyFileSync(p, moved[r]!);
    expect(belongsTo(saved, { executor: 'vm', objects: moved })).toBe(true);
    // Other content elsewhere is other objects; other content at the same paths is a rebuild.
    writeFileSync(moved.sendmsg!, 'other');
    expect(belongsTo(saved, { executor: 'vm', objects: moved })).toBe(false);
    writeFileSync(objs.sendmsg!, 'rebuilt after a fix');
    expect(belongsTo(saved, { executor: 'vm', objects: objs })).toBe(true);
    // Files of earlier versions: null objects meant ours.
    const legacy = { ...VALID, objects: null };
    expect(belongsTo(legacy, { executor: 'vm', objects: objs, ours: true })).toBe(true);
    expect(belongsTo(legacy, { executor: 'vm', objects: objs, ours: false })).toBe(false);
  });
});

describe("a finding's signature", () => {
  it('is the same for the same bug on other seeds', async () => {
    const ids = new Set<string>();
    for (const seed of [1, 2, 3]) {
      const r = await runChecks({ seed, runs: 600, states: 'consistent', env: DEFAULT_ENVIRONMENT, executor: new TlvDroppingExecutor() });
      expect(r.counterexamples.length, `seed ${seed}`).toBeGreaterThan(0);
      for (const cx of r.counterexamples) ids.add(cx.signature.id);
    }
    expect(ids.size).toBe(1);
  });
});
