// BPF_PROG_TEST_RUN through libbpf's bpf_prog_test_run_opts. For connect4/6 the context is a
// struct bpf_sock_addr (72 bytes) built from the domain context; on 6.18 the kernel answers
// ENOTSUPP for these program types, and the harness falls back to a real connect.

import koffi from 'koffi';
import { parseAddress, formatIPv4, formatIPv6 } from '../../model/address.js';
import { libbpf } from './libbpf.js';
import { AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, SOCK_STREAM, errno } from './libc.js';
import type { ConnectCtx, TestRunProgram, TestRunResult } from './protocol.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { readSockaddr } from '../codec/sockaddr.js';
import type { RunnerSocket } from '../runner/socket-layer.js';
import { E, errnoName } from './libc.js';
import type { LoadedDataPath } from './loader.js';
import type { KernelSock, KernelSockets } from './sockets.js';

export const BPF_SOCK_ADDR_SIZE = 72;

const TestRunOpts = koffi.struct('kmesh_bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

/** struct bpf_sock_addr of a connect: user_family, user_ip4/ip6, user_port, family, type, protocol. */
export function encodeSockAddrCtx(ctx: ConnectCtx): Uint8Array {
  const b = new Uint8Array(BPF_SOCK_ADDR_SIZE);
  const dv = new DataView(b.buffer);
  const fam = ctx.family === 'inet' ? AF_INET : AF_INET6;
  dv.setUint32(0, fam, true);
  const addr = parseAddress(ctx.dest.addr);
  if (addr.length === 4) b.set(addr, 4);
  else b.set(addr, 8);
  b[24] = ctx.dest.port >>> 8;
  b[25] = ctx.dest.port & 0xff;
  dv.setUint32(28, fam, true);
  dv.setUint32(32, ctx.protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM, true);
  dv.setUint32(36, ctx.protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP, true);
  return b;
}

export function decodeSockAddrCtx(b: Uint8Array): { addr: string; port: number } {
  const fam = new DataView(b.buffer, b.byteOffset).getUint32(0, true);
  const port = ((b[24] ?? 0) << 8) | (b[25] ?? 0);
  return fam === AF_INET ? { addr: formatIPv4(b, 4), port } : { addr: formatIPv6(b, 8), port };
}

export type SyscallOutcome = { ok: true; retval: number; peer: { addr: string; port: number } | null } | { ok: false; errno: number };

export function testRunSyscall(progFd: number, role: 'connect4' | 'connect6' | 'sockops' | 'sendmsg', ctx: ConnectCtx): SyscallOutcome {
  const isConnect = role === 'connect4' || role === 'connect6';
  const ctxIn = isConnect ? encodeSockAddrCtx(ctx) : null;
  const inPtr = ctxIn ? koffi.alloc('uint8_t', ctxIn.length) : null;
  const outPtr = ctxIn ? koffi.alloc('uint8_t', ctxIn.length) : null;
  try {
    if (inPtr && ctxIn) koffi.encode(inPtr, koffi.array('uint8_t', ctxIn.length), Array.from(ctxIn));
    const opts = {
      sz: koffi.sizeof(TestRunOpts),
      data_in: null,
      data_out: null,
      data_size_in: 0,
      data_size_out: 0,
      ctx_in: inPtr,
      ctx_out: outPtr,
      ctx_size_in: ctxIn?.length ?? 0,
      ctx_size_out: ctxIn?.length ?? 0,
      retval: 0,
      repeat: 1,
      duration: 0,
      flags: 0,
      cpu: 0,
      batch_size: 0,
    };
    const buf = new Uint8Array(koffi.sizeof(TestRunOpts));
    koffi.encode(buf, TestRunOpts, opts);
    const rc = libbpf.progTestRun(progFd, buf);
    if (rc < 0) return { ok: false, errno: -rc || errno() };
    const back = koffi.decode(buf, TestRunOpts) as { retval: number };
    let peer: { addr: string; port: number } | null = null;
    if (outPtr && ctxIn) {
      const out = Uint8Array.from(koffi.decode(outPtr, 'uint8_t', ctxIn.length) as number[]);
      peer = decodeSockAddrCtx(out);
    }
    return { ok: true, retval: back.retval, peer };
  } finally {
    if (inPtr) koffi.free(inPtr);
    if (outPtr) koffi.free(outPtr);
  }
}

/**
 * BPF_PROG_TEST_RUN first; on ENOTSUPP (cgroup_sock_addr on 6.18) connect4/6 run for real:
 * a socket of the context's family and protocol connects to its destination, and ctxOut
 * carries the peer it reached. A program verdict of 0 would make the connect fail with EPERM.
 */
export function testRun(dp: LoadedDataPath, sockets: KernelSockets, program: TestRunProgram, ctx: ConnectCtx): TestRunResult {
  // From the maps outside the ABI as loaded, as a case starts (and none fills up over many runs).
  sockets.beginCase();
  const role = program === 'cgroup_connect4_prog' ? 'connect4' : program === 'cgroup_connect6_prog' ? 'connect6' : program === 'sockops_prog' ? 'sockops' : 'sendmsg';
  const tried = testRunSyscall(dp.progs[role], role, ctx);
  if (tried.ok) return { retval: tried.retval, via: 'test-run', ctxOut: { peer: tried.peer, error: null } };
  if (tried.errno !== E.ENOTSUPP && tried.errno !== E.EOPNOTSUPP && tried.errno !== E.EINVAL) {
    throw new KmeshCheckError('worker', `BPF_PROG_TEST_RUN of ${program} failed (${errnoName(tried.errno)})`);
  }
  if (role !== 'connect4' && role !== 'connect6') {
    throw new KmeshCheckError('unsupported', `${program} cannot run standalone on this kernel (BPF_PROG_TEST_RUN: ${errnoName(tried.errno)}): run it through a case (connect, send)`);
  }
  if ((role === 'connect4') !== (ctx.family === 'inet')) {
    throw new KmeshCheckError('codec', `${program} runs on ${role === 'connect4' ? 'AF_INET' : 'AF_INET6'} sockets; the context says ${ctx.family}`);
  }
  sockets.listeners.ensure(ctx.dest.port);
  const r: RunnerSocket<KernelSock> = { id: -1, family: ctx.family, protocol: ctx.protocol, handle: sockets.open(-1, ctx.family, ctx.protocol), sent: 0, expected: [], queries: 0 };
  let error: string | null;
  let peer: { addr: string; port: number } | null = null;
  try {
    const seen = sockets.connect(r, ctx.dest);
    error = seen.error < 0 ? null : errnoName(seen.error);
    if (seen.peer) {
      const p = readSockaddr(seen.peer);
      peer = { addr: p.addr, port: p.port };
    }
  } finally {
    sockets.close(r);
    sockets.endCase();
  }
  return { retval: error === 'EPERM' ? 0 : 1, via: 'socket', ctxOut: { peer, error } };
}
