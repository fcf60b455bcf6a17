// The harness process, started by the executor as `unshare -n node dist/bpf/kernel/worker.js`.
// It builds the namespace, makes and joins its own cgroup, loads and attaches the data path, then
// answers length-prefixed JSON requests on stdin/stdout. It cleans up on `close`, when stdin
// closes (the parent died), on SIGINT and SIGTERM; after a SIGKILL only an empty cgroup dir can
// remain, which the parent or the next start removes.

import { closeSync, openSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { isIPv4Form } from '../../model/address.js';
import type { Environment } from '../../model/environment.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { tuneV8 } from '../../shared/v8-tuning.js';
import { cleanUpOnExit, errorReply } from './worker-lifecycle.js';
import { createAndJoinCgroup, findCgroup2Mount, removeCgroup, sweepStaleCgroups } from './cgroup.js';
import { KernelCases } from './cases.js';
import { fastPath, fastPathUnavailable, openMapWriter, type FastPath } from './fastpath.js';
import { libbpf } from './libbpf.js';
import { growSendBuffer } from './libc.js';
import { loadDataPath, type LoadedDataPath } from './loader.js';
import { checkLocalAddresses, setupNamespace } from './netns.js';
import { testRun } from './testrun.js';
import type { Case } from '../../model/domain.js';
import { decodeCases } from '../codec/case-wire.js';
import { FrameReader, STDIO_SEND_BUFFER, frame, type EncodedRunResult, type Request, type WorkerInfo } from './protocol.js';

// stdout carries the protocol: nothing else may write there.
console.log = console.error;
console.info = console.error;

// Tuned as the checker's own process is (shared/v8-tuning.ts).
tuneV8();

// stdin and stdout are Unix sockets (Node's stdio pipes), and writes to stdout block: with room
// for several batches' replies the worker goes on with the next batch even while the parent is
// busy. (The parent grows its end of stdin alike, worker-process.ts.)
growSendBuffer(1, STDIO_SEND_BUFFER);

interface Session {
  root: string;
  cgroup: string;
  cgroupFd: number;
  dp: LoadedDataPath | null;
  cases: KernelCases | null;
  swept: string[];
  /** What init was given and found, for loading other objects into the same namespace and cgroup. */
  env: Environment;
  wholeCases: boolean;
  fast: FastPath;
  /** How the shim makes map writes (WorkerInfo.shim.mapWriter). */
  mapWriter: string;
}

let session: Session | null = null;
let cleaned = false;

function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  const s = session;
  if (!s) return;
  try {
    s.cases?.close();
  } catch {
    // keep going: the rest must still be released
  }
  try {
    s.dp?.close();
  } catch {
    // idem
  }
  try {
    closeSync(s.cgroupFd);
  } catch {
    // idem
  }
  try {
    removeCgroup(s.root, s.cgroup);
  } catch (e) {
    process.stderr.write(`kmesh-check worker: ${(e as Error).message}\n`);
  }
}

function objectInfoIds(fd: number): number {
  // struct bpf_prog_info / bpf_link_info / bpf_map_info: u32 type, u32 id (maps: type, id too).
  const info = new Uint8Array(256);
  const len = new Uint32Array([info.length]);
  if (libbpf.objGetInfoByFd(fd, info, len) < 0) return -1;
  return new DataView(info.buffer).getUint32(4, true);
}

function mapId(fd: number): number {
  // struct bpf_map_info: u32 type, u32 id.
  return objectInfoIds(fd);
}

function progId(fd: number): number {
  // struct bpf_prog_info: u32 type, u32 id.
  return objectInfoIds(fd);
}

function linkId(fd: number): number {
  // struct bpf_link_info: u32 type, u32 id.
  return objectInfoIds(fd);
}

function init(objects: { connect: string; sockops: string; sendmsg: string }, env: Environment, wholeCases: boolean, mapWriter: boolean): unknown {
  // The shim is the one way the worker makes socket operations: without it, nothing runs.
  const fast = fastPath();
  if (!fast) throw new KmeshCheckError('build', `the kernel executor's C shim is unavailable (${fastPathUnavailable()}): install gcc and libbpf-dev, then retry`);
  setupNamespace(env);
  const root = findCgroup2Mount();
  const swept = sweepStaleCgroups(root);
  const cgroup = createAndJoinCgroup(root);
  const cgroupFd = openSync(cgroup, 'r');
  session = { root, cgroup, cgroupFd, dp: null, cases: null, swept, env, wholeCases, fast, mapWriter: mapWriter ? openMapWriter(fast) : 'off' };
  attach(session, objects);
  const samples = [...env.localPrefixes.map((p) => p.split('/')[0] ?? '')]
    .filter((a) => a !== '0.0.0.0' && a !== '::')
    .map((a) => {
      const v4 = isIPv4Form(a);
      // AnyIP ranges: the first address of the prefix (a prefix's base address like 10.0.0.0 is fine on lo).
      return { family: v4 ? ('inet' as const) : ('inet6' as const), dest: a, local: v4 ? env.podAddress.inet : env.podAddress.inet6 };
    });
  checkLocalAddresses(samples);
  return info();
}

/** Loads and attaches `objects` to the session's cgroup, with fresh sockets and maps. */
function attach(s: Session, objects: { connect: string; sockops: string; sendmsg: string }): void {
  const dp = loadDataPath(objects, s.cgroupFd);
  s.dp = dp;
  s.cases = new KernelCases(dp, s.env, s.fast, { wholeCases: s.wholeCases });
}

/**
 * Other objects in place of the loaded ones, in the same namespace and cgroup (a worker serves
 * one mutant after another without starting again): the old sockets are closed and the old
 * programs detached and released first, so that a load that fails leaves nothing attached.
 */
function load(objects: { connect: string; sockops: string; sendmsg: string }): unknown {
  const s = session;
  if (!s) throw new KmeshCheckError('worker', 'the worker is not initialised');
  const { cases, dp } = s;
  s.cases = null;
  s.dp = null;
  // The timing is the process's: what kf_run took for the objects before stays counted.
  if (cases) timing.shim += cases.shimMs;
  cases?.close();
  dp?.close();
  attach(s, objects);
  return info();
}

function info(): WorkerInfo {
  const s = session;
  if (!s || !s.dp || !s.cases) throw new KmeshCheckError('worker', 'the worker is not initialised');
  const mapIds: Record<string, number> = {};
  for (const [name, fd] of s.dp.maps) mapIds[name] = mapId(fd);
  return {
    pid: process.pid,
    cgroup: s.cgroup,
    progIds: Object.values(s.dp.progs).map(progId),
    linkIds: s.dp.links.map(linkId),
    dnsHooks: [...s.dp.dnsHooks],
    mapIds,
    resets: s.dp.resettable.map((m) => ({ name: m.name, maxEntries: m.maxEntries })),
    enrolment: s.cases.runner.enrolment,
    listeners: s.cases.sockets.listeners.count,
    swept: s.swept,
    manage: s.cases.sockets.maps.manageKeys(),
    shim: { wholeCases: s.cases.wholeCasesOn, casesRunWhole: s.cases.casesRunWhole, mapWriter: s.mapWriter },
    lateWaits: { stream: s.cases.sockets.lateStreamWaits, dns: s.cases.sockets.dns.lateWaits },
    timing: { ...timing, shim: timing.shim + s.cases.shimMs },
  };
}

function baseline(binary: string, iterations: number): unknown {
  const s = session;
  if (!s || !s.dp || !s.cases) throw new KmeshCheckError('worker', 'the worker is not initialised');
  s.cases.ensureEnrolment(true);
  const fds = (['km_frontend', 'km_service', 'km_endpoint', 'km_backend', 'km_sockstorage', 'km_socket'] as const).map((m) => s.dp!.maps.get(m)!);
  // Inherits this netns and cgroup; the maps arrive as fds 3..8.
  const r = spawnSync(binary, [String(iterations)], { stdio: ['ignore', 'pipe', 'pipe', ...fds], encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new KmeshCheckError('worker', `baseline ${binary} failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').at(-1)}`);
  // The baseline wrote its own map entries: empty the routing maps so that they hold what we think.
  s.cases.resetMaps();
  return JSON.parse(r.stdout);
}

/** A result that travels as the frame's binary part. */
class Binary {
  constructor(
    readonly result: unknown,
    readonly bytes: Uint8Array,
  ) {}
}

function handle(req: Request, cases: Case[] | null): unknown {
  switch (req.type) {
    case 'init':
      return init(req.objects, req.environment, req.wholeCases !== false, req.mapWriter !== false);
    case 'load':
      return load(req.objects);
    case 'run':
      if (!session?.cases) throw new KmeshCheckError('worker', 'the worker is not initialised');
      {
        const { bytes, streams, order } = session.cases.runCases(cases ?? [], req.offset);
        return new Binary({ encoded: true, streams, order } satisfies EncodedRunResult, bytes);
      }
    case 'testRun':
      if (!session?.cases || !session.dp) throw new KmeshCheckError('worker', 'the worker is not initialised');
      return testRun(session.dp, session.cases.sockets, req.program, req.ctx);
    case 'info':
      return info();
    case 'baseline':
      return baseline(req.binary, req.iterations);
    case 'close':
      cleanup();
      return { closed: true };
    default:
      throw new KmeshCheckError('worker', `unknown request ${JSON.stringify((req as { type: unknown }).type)}`);
  }
}

function reply(message: unknown, bin?: Uint8Array): void {
  process.stdout.write(frame(message, bin));
}

/**
 * Where the worker's time on batches of cases goes, in ms (reported by `info`; the bench reads
 * it). Only `run` requests count: the `info` requests that read it bracket a bare run, and their
 * own reading and answering fall outside the run's wall time.
 */
const timing = { parse: 0, handle: 0, reply: 0, shim: 0 };
const ms = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e6;

const reader = new FrameReader();
process.stdin.on('data', (chunk: Buffer) => {
  const t0 = process.hrtime.bigint();
  const msgs = reader.push(chunk);
  if (msgs.some((m) => (m as Request).type === 'run')) timing.parse += ms(t0);
  for (const msg of msgs) {
    const req = msg as Request & { readonly bin?: Uint8Array };
    try {
      // A batch's cases are part of parsing its request.
      const t1 = process.hrtime.bigint();
      const cases = req.type === 'run' ? decodeCases(req.bin ?? new Uint8Array(0)) : null;
      const t2 = process.hrtime.bigint();
      const result = handle(req, cases);
      const t3 = process.hrtime.bigint();
      if (result instanceof Binary) reply({ ok: true, result: result.result }, result.bytes);
      else reply({ ok: true, result });
      if (cases) {
        timing.parse += Number(t2 - t1) / 1e6;
        timing.handle += Number(t3 - t2) / 1e6;
        timing.reply += ms(t3);
      }
    } catch (e) {
      reply(errorReply(e));
    }
    if (req.type === 'close') {
      process.exit(0);
    }
  }
});
cleanUpOnExit(cleanup);
