// Connects the pipeline leaves alone or sends to a fixed place, decided before any routing:
// control connects, a namespace that is not enrolled, UDP outside DNS, DNS itself (sections
// 3.1-3.4), and the kernel's refusal of a connect on a connected TCP socket.

import { isIPv4Form } from '../../address.js';
import { DNS_PORT, DNS_PROXY_UID, type SockAddr, type StorageView } from '../../domain.js';
import type { Environment } from '../../environment.js';
import { backendOf, controlAction, ip, kernelResults, observedAs, programConnects, sameSockAddr, show, showResult, stepViews, type StepView } from '../facts.js';
import { Checker, type Invariant } from '../types.js';

type Connect = ReturnType<typeof programConnects>[number];

export function sameStorage(a: StorageView | null | undefined, b: StorageView | null | undefined): boolean {
  if (!a || !b) return !a && !b;
  return a.viaWaypoint === b.viaWaypoint && a.hasSetIp === b.hasSetIp && a.hasEncoded === b.hasEncoded && sameSockAddr(a.original, b.original);
}

/**
 * The connect ends at `final`: the observation is what the kernel does with a connect there
 * (environment.kernelConnect), from one of the states the socket may be in.
 */
export function expectEndsAt(chk: Checker, v: Connect, env: Environment, final: SockAddr, why: string): void {
  const results = kernelResults(env, v, final);
  chk.expect(
    results.some((r) => observedAs(v.obs, r)),
    () => {
      const got = v.obs.peer ? show(v.obs.peer) : `failure (${v.obs.error ?? 'no error'})`;
      const want = [...new Set(results.map(showResult))].join(' or ');
      // Named by what the application asked (`final` is where the pipeline should have sent it).
      return `operation ${v.i + 1} (${why}): a connect to ${show(v.asked)} ended in ${got}, expected ${want}`;
    },
  );
}

function expectStorageUnchanged(chk: Checker, v: StepView, why: string): void {
  if (v.storageBefore === undefined || v.obs.storage === undefined) return;
  chk.expect(sameStorage(v.storageBefore, v.obs.storage), () => `operation ${v.i + 1} (${why}): storage changed from ${JSON.stringify(v.storageBefore)} to ${JSON.stringify(v.obs.storage)}`);
}

export const notEnrolledUntouched: Invariant = {
  name: 'not-enrolled-untouched',
  statement: 'In a network namespace that is not enrolled, a connect goes exactly where the application asked and leaves the socket storage as it was.',
  check(ctx) {
    const chk = new Checker();
    for (const v of programConnects(ctx)) {
      if (v.netnsBefore !== false) continue;
      chk.exercise();
      expectEndsAt(chk, v, ctx.env, v.asked, 'namespace not enrolled');
      expectStorageUnchanged(chk, v, 'namespace not enrolled');
      if (v.passes)
        chk.expect(
          v.passes.length === 1 && ['control', 'not-enrolled'].includes(v.passes[0]!.path),
          () => `operation ${v.i + 1}: passes ${v.passes!.map((p) => p.path).join(', ')} in a namespace that is not enrolled`,
        );
    }
    return chk.verdict();
  },
};

export const controlConnectUntouched: Invariant = {
  name: 'control-connect-untouched',
  statement: 'A control connect (exactly 0.0.0.2 or ::2, port 929 or 930, any protocol) is never rewritten and leaves the socket storage as it was.',
  check(ctx) {
    const chk = new Checker();
    for (const v of programConnects(ctx)) {
      if (!controlAction(v.family, v.asked)) continue;
      chk.exercise();
      expectEndsAt(chk, v, ctx.env, v.asked, 'control connect');
      expectStorageUnchanged(chk, v, 'control connect');
      if (v.passes) chk.expect(v.passes.length === 1 && v.passes[0]!.path === 'control', () => `operation ${v.i + 1}: a control connect took passes ${v.passes!.map((p) => p.path).join(', ')}`);
    }
    return chk.verdict();
  },
};

function dnsProxy(v: Connect): { addr: string } | null {
  if (v.family !== 'inet' || v.asked.port !== DNS_PORT) return null;
  const proxy = backendOf(v.state, DNS_PROXY_UID);
  return proxy ? { addr: ip(proxy.addr) } : null;
}

export const udpOutsideDnsUntouched: Invariant = {
  name: 'udp-outside-dns-untouched',
  statement: 'A UDP connect is never rewritten and gets no socket storage unless it is a connect4 to port 53 in an enrolled namespace with a DNS proxy configured.',
  check(ctx) {
    const chk = new Checker();
    for (const v of programConnects(ctx)) {
      if (v.protocol !== 'udp' || dnsProxy(v)) continue;
      chk.exercise();
      expectEndsAt(chk, v, ctx.env, v.asked, 'UDP outside DNS');
      expectStorageUnchanged(chk, v, 'UDP outside DNS');
    }
    return chk.verdict();
  },
};

export const dnsRedirect: Invariant = {
  name: 'dns-proxy',
  statement:
    "An enrolled connect4 to port 53 with a DNS proxy (km_backend[0]) goes to the proxy's IPv4 address with the port unchanged and records the original destination; an IPv6 proxy address leaves it untouched and records nothing; without a proxy a UDP connect is untouched.",
  check(ctx) {
    const chk = new Checker();
    for (const v of programConnects(ctx)) {
      if (v.family !== 'inet' || v.asked.port !== DNS_PORT || v.netnsBefore !== true) continue;
      const proxy = dnsProxy(v);
      const where = `operation ${v.i + 1}`;
      const before = v.storageBefore;
      const after = v.obs.storage;
      if (!proxy) {
        if (v.protocol === 'tcp') continue; // routed like any other port (interpretation.md, item 5)
        chk.exercise();
        expectEndsAt(chk, v, ctx.env, v.asked, 'UDP DNS without proxy');
        expectStorageUnchanged(chk, v, 'UDP DNS without proxy');
        continue;
      }
      chk.exercise();
      if (!isIPv4Form(proxy.addr)) {
        expectEndsAt(chk, v, ctx.env, v.asked, 'DNS proxy with an IPv6 address');
        if (before !== undefined && after !== undefined) {
          chk.expect(sameSockAddr(before?.original, after?.original), () => `${where}: a failed DNS pass changed the original to ${show(after?.original)}`);
          if (v.protocol === 'udp') expectStorageUnchanged(chk, v, 'failed UDP DNS pass');
        }
        continue;
      }
      expectEndsAt(chk, v, ctx.env, { addr: proxy.addr, port: v.asked.port }, 'DNS proxy');
      if (after === undefined) continue;
      if (!chk.expect(after !== null, () => `${where}: the DNS pass left the socket without storage`) || !after) continue;
      const original = before === undefined ? undefined : (before?.original ?? v.asked);
      // Said of the pass a rewrite to the proxy was due from: a program that did not rewrite gets these too.
      if (original !== undefined) chk.expect(sameSockAddr(after.original, original), () => `${where}: original ${show(after.original)} after the DNS pass, expected ${show(original)}`);
      if (before !== undefined) chk.expect(after.viaWaypoint === (before?.viaWaypoint ?? false), () => `${where}: the DNS pass changed via_waypoint`);
    }
    return chk.verdict();
  },
};

export const enrolledTcpStorage: Invariant = {
  name: 'enrolled-tcp-storage',
  statement: 'Every connect program run for a TCP socket in an enrolled namespace, other than a control connect, leaves the socket with storage, whatever the routing does afterwards.',
  check(ctx) {
    const chk = new Checker();
    for (const v of programConnects(ctx)) {
      if (v.protocol !== 'tcp' || v.netnsBefore !== true || controlAction(v.family, v.asked) || v.obs.storage === undefined) continue;
      chk.exercise();
      chk.expect(v.obs.storage !== null, () => `operation ${v.i + 1}: an enrolled TCP connect to ${show(v.asked)} left the socket without storage`);
    }
    return chk.verdict();
  },
};

export const connectOnConnectedSocket: Invariant = {
  name: 'connect-on-connected-socket',
  statement:
    'A connect on a TCP socket that is already connected, or whose connect is still in progress, fails before any connect program runs, and changes neither its socket storage nor its km_socket membership.',
  check(ctx) {
    const chk = new Checker();
    for (const v of stepViews(ctx)) {
      if (v.op.op !== 'connect' || v.runsProgram || v.family === null) continue;
      chk.exercise();
      const where = `operation ${v.i + 1}`;
      chk.expect((v.obs.peer ?? null) === null && !!v.obs.error, () => `${where}: a connect on a connected or connecting TCP socket did not fail`);
      expectStorageUnchanged(chk, v, 'connected TCP socket');
      if (v.obs.inSockhash !== undefined) chk.expect(v.obs.inSockhash === v.inSockhashBefore, () => `${where}: km_socket membership changed`);
      if (v.passes) chk.expect(v.passes.length === 0, () => `${where}: ${v.passes!.length} passes ran on a connected TCP socket`);
    }
    return chk.verdict();
  },
};
