// The byte-level ABI section, generated from bpf/codec/abi.ts (the same tables the codecs and the
// kernel loader use) and the constants of model/domain.ts.

import { BPF_MAP_TYPE, MAPS, STRUCTS, TLV, type FieldAbi, type FieldKind, type StructAbi } from '../../bpf/codec/abi.js';
import { CONTROL_ADDR, ControlPort, DNS_PORT, DNS_PROXY_UID, LbPolicy, PORT_SLOTS, PRIO_GROUPS, SERVICES_PER_BACKEND, TAIL_CALL_LIMIT } from '../../model/domain.js';
import { code, mdTable } from './markdown.js';

const KIND_BYTES: Record<FieldKind, number> = { u8: 1, bool: 1, u32: 4, u64: 8, port: 4, ip_addr: 16, ip4: 4, ip6: 16, port16: 2 };

const KIND_TEXT: Record<FieldKind, string> = {
  u8: 'u8',
  bool: 'bool (one byte, 0 or 1)',
  u32: 'u32, host order',
  u64: 'u64, host order',
  port: 'u32 whose low 16 bits hold the port in network order',
  ip_addr: '16-byte ip_addr: IPv4 in bytes 0..3 with 4..15 zero, else IPv6 (interpretation.md, item 1)',
  ip4: 'IPv4 address, 4 bytes, network order',
  ip6: 'IPv6 address, 16 bytes',
  port16: 'u16 port, network order',
};

function fieldName(f: FieldAbi): string {
  return f.count > 1 ? `${f.name}[${f.count}]` : f.name;
}

function structTable(s: StructAbi): string[] {
  const rows = s.fields.map((f) => {
    const size = KIND_BYTES[f.kind] * f.count;
    return [String(f.offset), code(fieldName(f)), String(size), KIND_TEXT[f.kind]];
  });
  return mdTable(['Offset', 'Field', 'Bytes', 'Encoding'], rows);
}

/** Fields that share an offset with an earlier one are union members. */
function hasUnion(s: StructAbi): boolean {
  const seen = new Set<number>();
  for (const f of s.fields) {
    if (seen.has(f.offset)) return true;
    seen.add(f.offset);
  }
  return false;
}

export function abiSection(): string[] {
  const out: string[] = [];
  out.push(
    'x86-64, little-endian host; routing structs are packed. The codecs in `bpf/codec`, the kernel',
    "loader's and the VM's check of every map before load (type, key and value sizes, max_entries, and",
    'no prealloc where a note says so) and these tables all read `bpf/codec/abi.ts`.',
    '',
    '### Maps',
    '',
    ...mdTable(
      ['Map', 'Type', 'Key', 'Value', 'Key size', 'Value size', 'max_entries', 'Note'],
      MAPS.map((m) => [code(m.name), `${m.type} (${BPF_MAP_TYPE[m.type]})`, code(m.key), code(m.value), String(m.keySize), String(m.valueSize), String(m.maxEntries), m.note || '-']),
    ),
    '',
    '### Constants',
    '',
    ...mdTable(
      ['Constant', 'Value'],
      [
        ['Priority groups (0 best)', String(PRIO_GROUPS)],
        ['Port slots per service', String(PORT_SLOTS)],
        ['Services per backend', String(SERVICES_PER_BACKEND)],
        [
          'lb_policy',
          Object.entries(LbPolicy)
            .map(([n, v]) => `${v} ${n}`)
            .join(', '),
        ],
        ['DNS proxy', `km_backend[${DNS_PROXY_UID}], destination port ${DNS_PORT}`],
        ['Control connects', `${CONTROL_ADDR.inet} / ${CONTROL_ADDR.inet6}, port ${ControlPort.enrol} enrols, ${ControlPort.withdraw} withdraws`],
        ['Tail-call limit', `${TAIL_CALL_LIMIT} (at most ${TAIL_CALL_LIMIT + 1} passes per connect)`],
      ],
    ),
    '',
    '### Structs',
    '',
  );
  for (const s of Object.values(STRUCTS) as StructAbi[]) {
    out.push(`#### ${code(s.name)} (${s.size} bytes)`, '');
    if (hasUnion(s)) out.push('Fields at the same offset are members of a union.', '');
    out.push(...structTable(s), '');
  }
  const tlvRow = (f: 'inet' | 'inet6') => {
    const t = TLV[f];
    const hex = (n: number, bytes: number) =>
      n
        .toString(16)
        .padStart(bytes * 2, '0')
        .replace(/(..)(?!$)/g, '$1 ');
    return [f === 'inet' ? 'AF_INET' : 'AF_INET6', String(t.size), hex(TLV.typeOrigDst, 1), hex(t.length, 4), `${t.addrBytes} bytes`, '2 bytes, network order', `${hex(TLV.typeEnd, 1)} 00 00 00 00`];
  };
  out.push(
    '### Original-destination prefix',
    '',
    'Pushed by sendmsg_prog in front of the first message of a socket in `km_socket` whose storage says',
    '`via_waypoint` (interpretation.md, item 11). Multi-byte fields are big-endian.',
    '',
    ...mdTable(['Socket', 'Total bytes', 'Type', 'Length', 'Original address', 'Original port', 'End'], [tlvRow('inet'), tlvRow('inet6')]),
  );
  return out;
}
