// Shape checks of the cases the report and acceleration phases save in the failure database, so
// that a hand-edited or foreign file is one line naming what is wrong, never a crash in a harness.

import type { SectionPhase } from '../properties/section-check.js';
import { isAddr, isInt, isPort, isStr, stateProblem } from './failure-db.js';
import { REPORT_LOADED_GLOBALS, connectsDirectly, hasWaits, type ReportConn } from '../model/report/domain.js';

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSockAddr = (v: unknown) => isRec(v) && isAddr(v.addr) && isPort(v.port);
const isEnd = (v: unknown) => v === 'client' || v === 'server';
const optional = (v: unknown, ok: (x: unknown) => boolean) => v === undefined || ok(v);
const isWait = (v: unknown) => isInt(v, 0, 3_600_000_000_000);

function reportProblem(c: unknown): string | null {
  if (!isRec(c)) return 'no "case"';
  if (typeof c.monitoring !== 'boolean' || typeof c.periodic !== 'boolean') return 'a report case needs monitoring and periodic (true or false)';
  if (!optional(c.globalsAsLoaded, (v) => v === true)) return 'globalsAsLoaded must be true when given';
  if (c.globalsAsLoaded === true && (c.monitoring !== REPORT_LOADED_GLOBALS.monitoring || c.periodic !== REPORT_LOADED_GLOBALS.periodic)) {
    return 'a report case with globalsAsLoaded runs with the loaded defaults: monitoring true and periodic false';
  }
  if (!optional(c.nodeIp, isAddr) || !optional(c.podGateway, isAddr)) return 'nodeIp and podGateway must be IPv4 addresses when given';
  if (!optional(c.namespaceOutside, (v) => typeof v === 'boolean')) return 'namespaceOutside must be true or false when given';
  const sp = stateProblem(c.state, 'case.state');
  if (sp) return sp;
  if (!Array.isArray(c.conns) || c.conns.length === 0 || c.conns.length > 16) return 'case.conns must list 1 to 16 connections';
  for (const [i, k] of (c.conns as unknown[]).entries()) {
    const where = `case.conns[${i}]`;
    if (!isRec(k)) return `${where} is not a connection`;
    if (!isSockAddr(k.connectTo) || !isSockAddr(k.listen)) return `${where} needs connectTo and listen, each an address and a port`;
    if (!optional(k.clientFamily, (f) => f === 'inet' || f === 'inet6') || !optional(k.clientAddr, isAddr)) return `${where}: clientFamily must be inet|inet6 and clientAddr an address`;
    if (!isEnd(k.firstClose) || typeof k.storeVerdict !== 'boolean' || !optional(k.closeWaitNs, isWait)) return `${where} needs firstClose client|server, storeVerdict and a closeWaitNs in ns`;
    if (!optional(k.handshakeNs, isWait)) return `${where}: handshakeNs must be a wait in ns when given`;
    if (!optional(k.monitoringOff, (v) => typeof v === 'boolean') || !optional(k.monitoringOn, (v) => typeof v === 'boolean'))
      return `${where}: monitoringOff and monitoringOn must be true or false when given`;
    if (k.monitoringOff === true && k.monitoringOn === true) return `${where} turns monitoring both off and on`;
    if (!optional(k.closeLast, (v) => typeof v === 'boolean')) return `${where}: closeLast must be true or false when given`;
    if (!optional(k.abort, (v) => typeof v === 'boolean')) return `${where}: abort must be true or false when given`;
    if (!Array.isArray(k.sends) || !k.sends.every((x) => isRec(x) && isEnd(x.from) && isInt(x.size, 1, 1 << 20) && optional(x.waitNs, isWait)))
      return `${where}.sends must list sends with from client|server, a size of 1 B to 1 MiB and a waitNs in ns`;
  }
  // What an end is due is its own only while no time passes (ReportConn.closeLast).
  if ((c.conns as ReportConn[]).some((k) => k.closeLast === true) && hasWaits({ conns: c.conns as ReportConn[] }))
    return 'a report case with closeLast connections cannot wait (waitNs, closeWaitNs, handshakeNs)';
  // Outside, nothing rewrites a VIP: every client connects straight to its listener.
  if (c.namespaceOutside === true && !(c.conns as ReportConn[]).every(connectsDirectly)) return 'a case with namespaceOutside must connect each client straight to its listener';
  return null;
}

/** What is wrong with a filter at `where` (case.filter, or a refilter operation's), or null. */
function filterProblem(f: Record<string, unknown>, where: string): string | null {
  for (const k of ['acceptCidrs', 'returnCidrs'] as const) {
    const l = f[k];
    if (!Array.isArray(l) || !l.every((x) => isRec(x) && isAddr(x.ip) && isInt(x.mask, 0, 0xffffffff))) return `${where}.${k} must list {ip, mask}`;
  }
  for (const k of ['acceptPorts', 'returnPorts'] as const) {
    const l = f[k];
    if (!Array.isArray(l) || !l.every((x) => isRec(x) && isInt(x.begin, 0, 0xffffffff) && isInt(x.end, 0, 0xffffffff))) return `${where}.${k} must list {begin, end} u32s`;
  }
  if (f.countBytes !== undefined) {
    const cb = f.countBytes;
    if (!isRec(cb)) return `${where}.countBytes must be an object`;
    for (const [k, v] of Object.entries(cb)) {
      const l = f[k];
      if (!Array.isArray(l) || l.length !== 10 || !isInt(v, 11, 255)) return `${where}.countBytes.${k} must be 11..255, for a list of 10 entries`;
    }
  }
  return null;
}

function accelProblem(c: unknown): string | null {
  if (!isRec(c) || !isRec(c.filter) || !Array.isArray(c.pairs) || !Array.isArray(c.ops)) return 'an acceleration case needs filter, pairs and ops';
  const bad = filterProblem(c.filter, 'case.filter');
  if (bad) return bad;
  if (c.pairs.length === 0 || c.pairs.length > 8) return 'case.pairs must list 1 to 8 connections';
  for (const [i, p] of (c.pairs as unknown[]).entries()) {
    if (!isRec(p) || (p.netns !== 0 && p.netns !== 1) || !['inet', 'inet6', 'mapped'].includes(p.family as string) || !['none', 'client', 'server'].includes(p.outside as string))
      return `case.pairs[${i}] needs netns 0|1, family inet|inet6|mapped and outside none|client|server`;
    if (!isAddr(p.clientAddr) || !isPort(p.clientPort) || !isAddr(p.serverAddr) || !isPort(p.serverPort)) return `case.pairs[${i}] needs client and server addresses and ports`;
  }
  const closed = new Set<unknown>();
  for (const [i, o] of (c.ops as unknown[]).entries()) {
    if (isRec(o) && o.op === 'refilter') {
      const refilter = isRec(o.filter) ? filterProblem(o.filter, `case.ops[${i}].filter`) : `case.ops[${i}] (refilter) needs a filter`;
      if (refilter) return refilter;
      continue;
    }
    const ok =
      isRec(o) &&
      isInt(o.pair, 0, c.pairs.length - 1) &&
      (o.op === 'connect' || (o.op === 'send' && isEnd(o.from) && isInt(o.size, 1, 1 << 20)) || (o.op === 'close' && isEnd(o.end) && (o.abort === undefined || o.abort === true)));
    if (!ok) return `case.ops[${i}] must be connect, send (from, size) or close (end, and abort: true or nothing) of an existing pair, or refilter (filter)`;
    // An abort is a pair's first close: its reset closes the peer too.
    if (o.op === 'close' && o.abort === true && closed.has(o.pair)) return `case.ops[${i}] aborts pair ${String(o.pair)} after its first close (an abort must be the first)`;
    if (o.op === 'close') closed.add(o.pair);
  }
  return null;
}

/** What is wrong with a saved case of the report or acceleration phase, or null. */
export function sectionCaseProblem(phase: SectionPhase, c: unknown): string | null {
  if (!isStr(phase)) return '"phase" is missing';
  return phase === 'report' ? reportProblem(c) : accelProblem(c);
}
