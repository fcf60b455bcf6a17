// Contexts and helper ids against the kernel's uapi header (a host program prints offsetof and
// BPF_FUNC_* from /usr/include/linux/bpf.h), and the kernel's context access rules as the VM
// enforces them: which fields, which sizes, which writes, and what a load returns.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SOCK_ADDR,
  SOCK_OPS,
  SK_MSG,
  BPF_SOCK,
  TCP_SOCK,
  SockOps,
  BPF_SOCK_OPS_ALL_CB_FLAGS,
  BPF_SOCK_OPS_STATE_CB_FLAG,
  BPF_F_INGRESS,
  VmSock,
  SockAddrCtx,
  SockOpsCtx,
  skMsgContext,
  TCP_ESTABLISHED,
} from '../../bpf/vm/context.js';
import { HelperId } from '../../bpf/vm/helpers.js';
import { SK_BUFF } from '../../bpf/vm/skb-context.js';
import { Memory } from '../../bpf/vm/memory.js';
import { Machine } from '../../bpf/vm/machine.js';
import { bindProgram, VmFault } from '../../bpf/vm/program.js';
import { assemble, exit, ldx, st, stx, mov64, type Insn } from '../support/asm.js';
import { scratchDir } from '../fixtures/vm/helpers.js';

function header(): Map<string, number> {
  const fields: Array<[string, string, string]> = [];
  const add = (struct: string, table: Record<string, number>, rename: Record<string, string> = {}) => {
    for (const k of Object.keys(table)) if (k !== 'size') fields.push([struct, k, rename[k] ?? k]);
  };
  add('bpf_sock_addr', SOCK_ADDR);
  add('bpf_sock_ops', SOCK_OPS);
  add('sk_msg_md', SK_MSG, { size_field: 'size' });
  add('bpf_sock', BPF_SOCK);
  add('bpf_tcp_sock', TCP_SOCK);
  add('__sk_buff', SK_BUFF);
  const lines = [
    '#include <stdio.h>',
    '#include <stddef.h>',
    '#include <linux/bpf.h>',
    'int main(void) {',
    ...fields.map(([s, k, f]) => `printf("${s}.${k} %d\\n", (int)offsetof(struct ${s}, ${f}));`),
    ...['bpf_sock_addr', 'bpf_sock_ops', 'sk_msg_md', 'bpf_sock', 'bpf_tcp_sock', '__sk_buff'].map((s) => `printf("${s}.size %d\\n", (int)sizeof(struct ${s}));`),
    ...Object.keys(HelperId).map((h) => `printf("helper.${h} %d\\n", (int)BPF_FUNC_${h});`),
    'printf("ops.TCP_CONNECT_CB %d\\n", BPF_SOCK_OPS_TCP_CONNECT_CB);',
    'printf("ops.ACTIVE_ESTABLISHED_CB %d\\n", BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB);',
    'printf("ops.PASSIVE_ESTABLISHED_CB %d\\n", BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB);',
    'printf("ops.ALL_CB_FLAGS %d\\n", BPF_SOCK_OPS_ALL_CB_FLAGS);',
    'printf("ops.STATE_CB %d\\n", BPF_SOCK_OPS_STATE_CB);',
    'printf("ops.STATE_CB_FLAG %d\\n", BPF_SOCK_OPS_STATE_CB_FLAG);',
    'printf("flags.F_INGRESS %d\\n", BPF_F_INGRESS);',
    'return 0; }',
  ];
  const dir = scratchDir();
  writeFileSync(join(dir, 'uapi.c'), lines.join('\n'));
  execFileSync('clang', [`-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, join(dir, 'uapi.c'), '-o', join(dir, 'uapi')]);
  const out = execFileSync(join(dir, 'uapi'), { encoding: 'utf8' });
  return new Map(
    out
      .trim()
      .split('\n')
      .map((l) => {
        const [k, v] = l.split(' ');
        return [k!, Number(v)];
      }),
  );
}

describe('uapi agreement', () => {
  const h = header();
  it('context layouts match <linux/bpf.h>', () => {
    const check = (struct: string, table: Record<string, number>) => {
      for (const [k, v] of Object.entries(table)) expect(v, `${struct}.${k}`).toBe(h.get(`${struct}.${k}`));
    };
    check('bpf_sock_addr', SOCK_ADDR);
    check('bpf_sock_ops', SOCK_OPS);
    check('sk_msg_md', SK_MSG);
    check('bpf_sock', BPF_SOCK);
    check('bpf_tcp_sock', TCP_SOCK);
    check('__sk_buff', SK_BUFF);
  });
  it('helper ids and sock_ops constants match <linux/bpf.h>', () => {
    for (const [name, id] of Object.entries(HelperId)) expect(id, name).toBe(h.get(`helper.${name}`));
    expect(SockOps.TCP_CONNECT_CB).toBe(h.get('ops.TCP_CONNECT_CB'));
    expect(SockOps.ACTIVE_ESTABLISHED_CB).toBe(h.get('ops.ACTIVE_ESTABLISHED_CB'));
    expect(SockOps.PASSIVE_ESTABLISHED_CB).toBe(h.get('ops.PASSIVE_ESTABLISHED_CB'));
    expect(BPF_SOCK_OPS_ALL_CB_FLAGS).toBe(h.get('ops.ALL_CB_FLAGS'));
    expect(SockOps.STATE_CB).toBe(h.get('ops.STATE_CB'));
    expect(BPF_SOCK_OPS_STATE_CB_FLAG).toBe(h.get('ops.STATE_CB_FLAG'));
    expect(BPF_F_INGRESS).toBe(h.get('flags.F_INGRESS'));
  });
});

/** Runs hand-written code on a real context of each kind; returns r0 (low word) or the fault. */
function onContext(engine: 'jit' | 'interp', kind: 'connect4' | 'connect6' | 'sockops' | 'skmsg', code: Insn[]) {
  const mem = new Memory();
  const m = new Machine(mem);
  m.engine = engine;
  const family = kind === 'connect6' ? 'inet6' : 'inet';
  const sock = new VmSock(1, family, 'tcp', 77);
  sock.setEnds({ addr: family === 'inet' ? '10.255.0.1' : 'fd00:ffff::1', port: 40001 }, { addr: family === 'inet' ? '10.0.1.2' : '::ffff:10.0.1.2', port: 8080 }, TCP_ESTABLISHED);
  const prog = bindProgram(assemble(kind, code), {
    handle: () => {
      throw new Error();
    },
    value: () => {
      throw new Error();
    },
  });
  m.beginRun();
  let region;
  if (kind === 'connect4' || kind === 'connect6') {
    const c = new SockAddrCtx(kind);
    region = c.prepare(mem, sock, kind === 'connect4' ? Uint8Array.of(10, 96, 0, 10) : new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 96, 0, 10]), 80);
    const r0 = m.run(prog, region);
    return { r0, ctx: c, fault: null as VmFault | null };
  }
  if (kind === 'sockops') region = new SockOpsCtx().prepare(mem, sock, SockOps.ACTIVE_ESTABLISHED_CB);
  else region = skMsgContext(mem, sock, new Uint8Array(10)).ctx;
  return { r0: m.run(prog, region), ctx: null, fault: null };
}

const faultOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof VmFault) return e.reason;
    throw e;
  }
  return 'no fault';
};

describe.each(['interp', 'jit'] as const)('context access rules (%s)', (engine) => {
  it('bpf_sock_addr: reads give the destination, narrow reads work, user_port stores 16 bits', () => {
    expect(onContext(engine, 'connect4', [ldx('w', 0, 1, SOCK_ADDR.user_ip4), exit()]).r0).toBe(0x0a00600a);
    expect(onContext(engine, 'connect4', [ldx('w', 0, 1, SOCK_ADDR.user_port), exit()]).r0).toBe(0x5000);
    expect(onContext(engine, 'connect4', [ldx('b', 0, 1, SOCK_ADDR.user_port + 1), exit()]).r0).toBe(80);
    expect(onContext(engine, 'connect4', [ldx('h', 0, 1, SOCK_ADDR.user_ip4 + 2), exit()]).r0).toBe(0x0a00);
    expect(onContext(engine, 'connect4', [ldx('w', 0, 1, SOCK_ADDR.protocol), exit()]).r0).toBe(6);
    expect(onContext(engine, 'connect6', [ldx('dw', 0, 1, SOCK_ADDR.user_ip6 + 8), exit()]).r0).toBe(0xffff0000);
    const r = onContext(engine, 'connect4', [st('w', 1, SOCK_ADDR.user_port, 0x12349999), mov64(0, 1), exit()]);
    expect(r.ctx!.dest()).toEqual({ addr: '10.96.0.10', port: 0x9999 });
    expect(onContext(engine, 'connect4', [st('w', 1, SOCK_ADDR.user_ip4, 0x0100007f), mov64(0, 1), exit()]).ctx!.dest().addr).toBe('127.0.0.1');
  });

  it('bpf_sock_addr: the other family, read-only fields, wrong sizes and padding fault', () => {
    expect(faultOf(() => onContext(engine, 'connect4', [ldx('w', 0, 1, SOCK_ADDR.user_ip6), exit()]))).toMatch(/4-byte read of offset 8 is not allowed/);
    expect(faultOf(() => onContext(engine, 'connect6', [ldx('w', 0, 1, SOCK_ADDR.user_ip4), exit()]))).toMatch(/read of offset 4 is not allowed/);
    expect(faultOf(() => onContext(engine, 'connect4', [st('w', 1, SOCK_ADDR.family, 10), exit()]))).toMatch(/4-byte write to family is not allowed/);
    expect(faultOf(() => onContext(engine, 'connect4', [st('h', 1, SOCK_ADDR.user_port, 80), exit()]))).toMatch(/2-byte write to user_port is not allowed/);
    expect(faultOf(() => onContext(engine, 'connect4', [ldx('h', 0, 1, SOCK_ADDR.family), exit()]))).toMatch(/2-byte read of family/);
    expect(faultOf(() => onContext(engine, 'connect4', [ldx('w', 0, 1, 60), exit()]))).toMatch(/read of offset 60 is not allowed/);
    expect(faultOf(() => onContext(engine, 'connect4', [ldx('w', 0, 1, 72), exit()]))).toMatch(/out of bounds/);
  });

  it('bpf_sock_addr.sk points at a read-only bpf_sock of the socket', () => {
    expect(onContext(engine, 'connect4', [ldx('dw', 2, 1, SOCK_ADDR.sk), ldx('w', 0, 2, BPF_SOCK.family), exit()]).r0).toBe(2);
    expect(onContext(engine, 'connect4', [ldx('dw', 2, 1, SOCK_ADDR.sk), ldx('b', 0, 2, BPF_SOCK.dst_port + 1), exit()]).r0).toBe(8080 & 0xff);
    expect(faultOf(() => onContext(engine, 'connect4', [ldx('dw', 2, 1, SOCK_ADDR.sk), st('w', 2, BPF_SOCK.mark, 1), exit()]))).toMatch(/write to mark is not allowed/);
  });

  it('bpf_sock_ops: remote_port is the network-order port shifted up, local_port host order, 4-byte reads only', () => {
    expect(onContext(engine, 'sockops', [ldx('w', 0, 1, SOCK_OPS.remote_port), exit()]).r0).toBe((((8080 >> 8) | ((8080 & 0xff) << 8)) << 16) >>> 0);
    expect(onContext(engine, 'sockops', [ldx('w', 0, 1, SOCK_OPS.local_port), exit()]).r0).toBe(40001);
    expect(onContext(engine, 'sockops', [ldx('w', 0, 1, SOCK_OPS.op), exit()]).r0).toBe(SockOps.ACTIVE_ESTABLISHED_CB);
    expect(onContext(engine, 'sockops', [ldx('w', 0, 1, SOCK_OPS.remote_ip4), exit()]).r0).toBe(0x02_01_00_0a);
    expect(faultOf(() => onContext(engine, 'sockops', [ldx('h', 0, 1, SOCK_OPS.local_port), exit()]))).toMatch(/2-byte read of local_port/);
    expect(faultOf(() => onContext(engine, 'sockops', [st('w', 1, SOCK_OPS.family, 1), exit()]))).toMatch(/write to family is not allowed/);
    expect(onContext(engine, 'sockops', [st('w', 1, SOCK_OPS.reply, 5), mov64(0, 1), exit()]).r0).toBe(1);
  });

  it('sk_msg_md: data..data_end is the message; the context is read-only', () => {
    const r = onContext(engine, 'skmsg', [
      ldx('dw', 2, 1, SK_MSG.data),
      ldx('dw', 3, 1, SK_MSG.data_end),
      stx('dw', 10, -8, 3),
      { code: 0x1f, dst: 3, src: 2, off: 0, imm: 0 },
      ldx('w', 4, 1, SK_MSG.size_field),
      { code: 0x0f, dst: 3, src: 4, off: 0, imm: 0 },
      { code: 0xbf, dst: 0, src: 3, off: 0, imm: 0 },
      exit(),
    ]);
    expect(r.r0).toBe(20); // (data_end - data) + size
    expect(faultOf(() => onContext(engine, 'skmsg', [st('w', 1, SK_MSG.family, 1), exit()]))).toMatch(/write to family is not allowed/);
    expect(faultOf(() => onContext(engine, 'skmsg', [ldx('dw', 2, 1, SK_MSG.data), ldx('b', 0, 2, 10), exit()]))).toMatch(/offset 10 of sk_msg data \(10 bytes\) is out of bounds/);
  });
});

describe("a socket's addresses in the contexts' IPv4 fields", () => {
  // Measured on 6.18 with an object recording them: an AF_INET6 socket with a native local address
  // shows 127.0.0.6 as its IPv4 local address (bpf_sock src_ip4 in sendmsg4; sock_ops local_ip4 at
  // TCP_CONNECT_CB and ACTIVE_ESTABLISHED), 0 as its IPv4 remote; a v4-mapped one, its IPv4 form.
  const views = (local: string, remote: string) => {
    const sock = new VmSock(1, 'inet6', 'tcp', 77);
    sock.setEnds({ addr: local, port: 40001 }, { addr: remote, port: 8080 }, TCP_ESTABLISHED);
    const ops = new SockOpsCtx().prepare(new Memory(), sock, SockOps.ACTIVE_ESTABLISHED_CB).view;
    const msg = skMsgContext(new Memory(), sock, new Uint8Array(10)).ctx.view;
    const ip = (v: DataView, off: number) => [0, 1, 2, 3].map((i) => v.getUint8(off + i)).join('.');
    return {
      srcIp4: ip(sock.sockRegion.view, BPF_SOCK.src_ip4),
      dstIp4: ip(sock.sockRegion.view, BPF_SOCK.dst_ip4),
      opsLocal: ip(ops, SOCK_OPS.local_ip4),
      opsRemote: ip(ops, SOCK_OPS.remote_ip4),
      msgLocal: ip(msg, SK_MSG.local_ip4),
    };
  };
  it('native IPv6: the local one is 127.0.0.6, the remote one 0', () => {
    expect(views('fd00:ffff::1', 'fd00::1:1')).toEqual({ srcIp4: '127.0.0.6', dstIp4: '0.0.0.0', opsLocal: '127.0.0.6', opsRemote: '0.0.0.0', msgLocal: '127.0.0.6' });
  });
  it('v4-mapped: both are their IPv4 form; the wildcard local is 0', () => {
    expect(views('::ffff:10.255.0.1', '::ffff:10.0.1.2')).toEqual({ srcIp4: '10.255.0.1', dstIp4: '10.0.1.2', opsLocal: '10.255.0.1', opsRemote: '10.0.1.2', msgLocal: '10.255.0.1' });
    expect(views('::', 'fd00::1:1').srcIp4).toBe('0.0.0.0');
  });
});
