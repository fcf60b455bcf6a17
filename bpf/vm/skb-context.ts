// The context of cgroup_skb programs (struct __sk_buff, offsets pinned by test/vm/context.test.ts
// against the uapi header) with the kernel's access rules: what a packet of a full socket shows
// the report paths of section 7 (its socket, family, addresses, ports and length).

import { Access, Region, buildRules, type FieldRule, type Memory } from './memory.js';
import { AF_INET, AF_INET6, N, writeAddrPair, writePtr, type VmSock } from './context.js';

/** struct __sk_buff: the fields the VM fills for cgroup_skb programs (the packet's socket and sizes). */
export const SK_BUFF = { size: 192, len: 0, protocol: 16, family: 88, remote_ip4: 92, local_ip4: 96, remote_ip6: 100, local_ip6: 116, remote_port: 132, local_port: 136, sk: 168 } as const;

// cg_skb_is_valid_access: every u32 field readable (narrow loads too) but tc_classid, data_meta
// and wire_len; writes to mark, priority and cb[] only. data/data_end are not modelled (the VM
// has no packet bytes), so a program that reads them faults with the field's name.
const SKB_RULES = (() => {
  const names: Record<number, string> = {
    0: 'len',
    4: 'pkt_type',
    8: 'mark',
    12: 'queue_mapping',
    16: 'protocol',
    32: 'priority',
    36: 'ingress_ifindex',
    40: 'ifindex',
    68: 'hash',
    84: 'napi_id',
    88: 'family',
    92: 'remote_ip4',
    96: 'local_ip4',
    132: 'remote_port',
    136: 'local_port',
  };
  const f: FieldRule[] = [];
  for (let o = 0; o < 140; o += 4) {
    if (o === 72 || o === 76 || o === 80) continue; // tc_classid; data and data_end (not modelled)
    const name = names[o] ?? (o >= 48 && o < 68 ? 'cb' : o >= 100 && o < 116 ? 'remote_ip6' : o >= 116 && o < 132 ? 'local_ip6' : `field at ${o}`);
    const writable = o === 8 || o === 32 || (o >= 48 && o < 68);
    f.push({ name, offset: o, size: 4, read: o >= 92 && o < 132 ? [4] : N, ...(writable ? { write: [4] } : {}) });
  }
  f.push({ name: 'tstamp', offset: 152, size: 8, read: [8] });
  f.push({ name: 'gso_segs', offset: 164, size: 4, read: N });
  f.push({ name: 'sk', offset: 168, size: 8, read: [8] });
  f.push({ name: 'gso_size', offset: 176, size: 4, read: N });
  return buildRules(SK_BUFF.size, f);
})();

/**
 * The __sk_buff of cgroup_skb programs, reused from run to run: one packet of `len` bytes that a
 * full socket sends (egress) or receives (ingress); local and remote are the socket's own ends.
 */
export class SkBuffCtx {
  readonly region: Region;
  private readonly info: { readonly kind: 'sk_buff'; sock: VmSock };
  constructor() {
    this.info = { kind: 'sk_buff', sock: null as unknown as VmSock };
    this.region = new Region('__sk_buff', new Uint8Array(SK_BUFF.size), Access.RULES, SKB_RULES, this.info, true);
  }
  prepare(mem: Memory, sock: VmSock, len: number): Region {
    this.info.sock = sock;
    const r = this.region;
    const v = r.view;
    const b = r.bytes;
    b.fill(0);
    v.setUint32(SK_BUFF.len, len, true);
    // skb->protocol is the EtherType in network order (ETH_P_IP 0x0800, ETH_P_IPV6 0x86dd).
    v.setUint16(SK_BUFF.protocol, sock.family === 'inet' ? 0x0800 : 0x86dd, false);
    v.setUint32(SK_BUFF.family, sock.family === 'inet' ? AF_INET : AF_INET6, true);
    if (sock.remote && sock.remoteBytes) {
      writeAddrPair(b, sock.remoteBytes, SK_BUFF.remote_ip4, SK_BUFF.remote_ip6);
      b[SK_BUFF.remote_port + 2] = sock.remote.port >>> 8; // as sock_ops: network order << 16
      b[SK_BUFF.remote_port + 3] = sock.remote.port & 0xff;
    }
    if (sock.local && sock.localBytes) {
      writeAddrPair(b, sock.localBytes, SK_BUFF.local_ip4, SK_BUFF.local_ip6, true);
      v.setUint32(SK_BUFF.local_port, sock.local.port, true);
    }
    mem.attach(r);
    writePtr(v, SK_BUFF.sk, mem, sock.sockRegion);
    return r;
  }
}
