// 1-minimisation's last step (properties/minimize.ts): a backend uid that is also a service id is
// renamed away when the case still fails without the clash, so that a finding is not labelled raw
// by a clash that plays no part in it; when the clash matters, the case keeps it.

import { describe, expect, it } from 'vitest';
import { backend, endpoint, frontend, maps, service } from '../../model/builders.js';
import { isConsistent } from '../../model/control-plane/consistency.js';
import type { Case, MapState } from '../../model/domain.js';
import { clashRenamings, enrolmentSimplifications, minimize, monitoringSimplification, singleRemovals } from '../../properties/minimize.js';

const ops: Case['ops'] = [
  { op: 'socket', sock: 0, family: 'inet', protocol: 'tcp' },
  { op: 'connect', sock: 0, dest: { addr: '10.0.0.1', port: 80 } },
];

// Service 1 and backend 1 share an id (as the exhaustive phase's scope-1 states do); frontend
// 10.0.0.9 names 1 too, which a lookup finds as the service.
const clashing: MapState = maps({
  frontends: [frontend('10.0.0.1', 1), frontend('10.0.0.9', 1)],
  services: [service(1, { counts: [1], ports: [[80, 8000]] })],
  endpoints: [endpoint(1, 0, 1, 1)],
  backends: [backend(1, '10.0.0.1')],
});
const raw: Case = { state: clashing, kind: 'raw', enrolled: true, ops };

describe('uid clashes', () => {
  it('renames the backend and its endpoints, keeps the frontends that name the service, and leaves the DNS proxy alone', () => {
    expect(isConsistent(clashing)).toContain('service 1: id is also a backend uid');
    const [renamed] = clashRenamings(raw);
    expect(renamed!.state.backends.map((b) => b.uid)).toEqual([2]);
    expect(renamed!.state.endpoints.map((e) => e.backendUid)).toEqual([2]);
    expect(renamed!.state.frontends.map((f) => f.upstreamId)).toEqual([1, 1]);
    expect(isConsistent(renamed!.state)).toEqual([]);
    const proxy = maps({ services: [service(0)], backends: [backend(0, '10.0.0.53')] });
    expect(clashRenamings({ ...raw, state: proxy })).toEqual([]);
    expect(clashRenamings({ ...raw, state: maps({ services: [service(1)], backends: [backend(2, '10.0.0.2')] }) })).toEqual([]);
  });

  it('follows a frontend that meant the backend (no service of its state has the id), in an applied state too', () => {
    const later = maps({ frontends: [frontend('10.0.0.7', 1)], backends: [backend(1, '10.0.0.7')] });
    const [renamed] = clashRenamings({ ...raw, ops: [...ops, { op: 'apply', state: later }] });
    const applied = renamed!.ops[2];
    expect(applied?.op === 'apply' && applied.state.frontends[0]!.upstreamId).toBe(2);
    expect(applied?.op === 'apply' && applied.state.backends[0]!.uid).toBe(2);
  });

  it('is the last step of minimisation: taken when the case still fails, left when only the clash fails', async () => {
    const fails = async (c: Case) => c.state.services.length > 0 && c.state.endpoints.length > 0 && c.state.backends.length > 0;
    const kept = await minimize(raw, fails);
    expect(kept.case.state.backends.map((b) => b.uid)).toEqual([2]);
    const needsClash = async (c: Case) => c.state.backends.some((b) => c.state.services.some((v) => v.id === b.uid));
    expect((await minimize(raw, needsClash)).case.state.backends.map((b) => b.uid)).toEqual([1]);
  });
});

describe('enrolment by km_manage writes', () => {
  const written: Case = { state: maps({}), kind: 'raw', enrolled: true, enrolmentWrite: 0xffffffff, ops };
  it('becomes control connects, else the ABI value 0, whichever still fails; a case without it is left alone', async () => {
    expect(enrolmentSimplifications(written).map((c) => c.enrolmentWrite)).toEqual([undefined, 0]);
    expect(enrolmentSimplifications({ ...written, enrolmentWrite: 0 }).map((c) => c.enrolmentWrite)).toEqual([undefined]);
    expect(enrolmentSimplifications(raw)).toEqual([]);
    const anyWrite = async (c: Case) => c.enrolmentWrite !== undefined;
    expect((await minimize(written, anyWrite)).case.enrolmentWrite).toBe(0);
    const onlyRaw = async (c: Case) => (c.enrolmentWrite ?? 0) !== 0;
    expect((await minimize(written, onlyRaw)).case.enrolmentWrite).toBe(0xffffffff);
    expect((await minimize(written, async () => true)).case).not.toHaveProperty('enrolmentWrite');
  });

  it('of one kind of key: control connects first, then both kinds written, keeping the value', async () => {
    const cookieOnly: Case = { ...written, enrolmentWrite: 0, enrolmentKeys: 'cookie' };
    expect(enrolmentSimplifications(cookieOnly).map((c) => [c.enrolmentWrite, c.enrolmentKeys])).toEqual([
      [undefined, undefined],
      [0, undefined],
    ]);
    // A finding that needs the cookie alone keeps it.
    const needsCookieAlone = async (c: Case) => c.enrolmentKeys === 'cookie';
    expect((await minimize(cookieOnly, needsCookieAlone)).case.enrolmentKeys).toBe('cookie');
    expect((await minimize(cookieOnly, async (c) => c.enrolmentWrite !== undefined)).case).not.toHaveProperty('enrolmentKeys');
  });
});

describe('connection reports off', () => {
  const on: Case = { state: maps({}), kind: 'consistent', enrolled: true, ops };
  const off: Case = { ...on, monitoringOff: true };
  it('runs with connection reports on again if the case still fails so; a case that needs them off keeps them off', async () => {
    expect(monitoringSimplification(off)).toEqual(on);
    expect(monitoringSimplification(on)).toBeNull();
    expect((await minimize(off, async () => true)).case).not.toHaveProperty('monitoringOff');
    const needsOff = async (c: Case) => c.monitoringOff === true;
    expect((await minimize(off, needsOff)).case.monitoringOff).toBe(true);
  });
});

describe('a bound socket', () => {
  const bound: Case = {
    state: maps({}),
    kind: 'consistent',
    enrolled: true,
    ops: [
      { op: 'socket', sock: 0, family: 'inet', protocol: 'udp', bindTo: '10.6.0.6' },
      { op: 'recvfrom', sock: 0 },
    ],
  };
  it('is tried unbound, and stays unbound when the case still fails so', async () => {
    expect(singleRemovals(bound)).toContainEqual({ ...bound, ops: [{ op: 'socket', sock: 0, family: 'inet', protocol: 'udp' }, bound.ops[1]] });
    const first = async (c: Case) => c.ops.length === 2;
    expect((await minimize(bound, first)).case.ops[0]).not.toHaveProperty('bindTo');
    const needsBind = async (c: Case) => c.ops.some((o) => o.op === 'socket' && o.bindTo !== undefined);
    expect((await minimize(bound, needsBind)).case.ops[0]).toHaveProperty('bindTo', '10.6.0.6');
  });
});
