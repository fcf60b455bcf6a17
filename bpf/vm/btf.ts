// BTF and .BTF.ext, read as far as a userspace loader needs: the types behind BTF-defined maps
// in `.maps` (type, key/value sizes, max_entries, map_flags: `__uint` fields are pointers to
// arrays whose length is the value, `__type` fields are pointers to the type), function and
// line info (instruction -> source line), and CO-RE relocation records (so they can be refused).

export const BtfKind = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export class BtfError extends Error {}

export interface BtfMember {
  readonly name: string;
  readonly type: number;
  /** Bit offset (struct/union), value (enum), or param type slot (func proto). */
  readonly offset: number;
}

export interface BtfVarSecinfo {
  readonly type: number;
  readonly offset: number;
  readonly size: number;
}

export interface BtfType {
  readonly id: number;
  readonly kind: number;
  readonly name: string;
  readonly kindFlag: boolean;
  /** Byte size for INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT; referenced type id otherwise. */
  readonly sizeOrType: number;
  readonly members: readonly BtfMember[];
  readonly array: { readonly type: number; readonly indexType: number; readonly nelems: number } | null;
  readonly vars: readonly BtfVarSecinfo[];
}

export class Btf {
  constructor(
    readonly types: readonly BtfType[],
    private readonly strings: Uint8Array,
  ) {}

  string(off: number): string {
    let end = off;
    while (end < this.strings.length && this.strings[end] !== 0) end++;
    return Buffer.from(this.strings.buffer, this.strings.byteOffset + off, end - off).toString('utf8');
  }

  type(id: number): BtfType {
    const t = this.types[id];
    if (!t) throw new BtfError(`BTF type id ${id} does not exist`);
    return t;
  }

  /** Follows typedefs and qualifiers (const, volatile, restrict, type tags). */
  skipModifiers(id: number): BtfType {
    let t = this.type(id);
    for (let guard = 0; guard < 64; guard++) {
      if (t.kind === BtfKind.TYPEDEF || t.kind === BtfKind.VOLATILE || t.kind === BtfKind.CONST || t.kind === BtfKind.RESTRICT || t.kind === BtfKind.TYPE_TAG) {
        t = this.type(t.sizeOrType);
      } else {
        return t;
      }
    }
    throw new BtfError(`BTF type ${id}: modifier chain too long`);
  }

  /** Byte size of a type, as libbpf's btf__resolve_size. */
  sizeOf(id: number): number {
    const t = this.skipModifiers(id);
    switch (t.kind) {
      case BtfKind.INT:
      case BtfKind.STRUCT:
      case BtfKind.UNION:
      case BtfKind.ENUM:
      case BtfKind.ENUM64:
      case BtfKind.DATASEC:
      case BtfKind.FLOAT:
        return t.sizeOrType;
      case BtfKind.PTR:
        return 8;
      case BtfKind.ARRAY:
        return t.array ? t.array.nelems * this.sizeOf(t.array.type) : 0;
      case BtfKind.VAR:
        return this.sizeOf(t.sizeOrType);
      default:
        throw new BtfError(`BTF type ${id} (${kindName(t.kind)} ${t.name}) has no size`);
    }
  }

  find(kind: number, name: string): BtfType | undefined {
    return this.types.find((t) => t.kind === kind && t.name === name);
  }
}

export function kindName(kind: number): string {
  for (const [k, v] of Object.entries(BtfKind)) if (v === kind) return k;
  return `kind ${kind}`;
}

function header(view: DataView, what: string): { hdrLen: number } {
  if (view.byteLength < 8 || view.getUint16(0, true) !== 0xeb9f) {
    throw new BtfError(`${what}: bad magic; rebuild the object with -g`);
  }
  if (view.getUint8(2) !== 1) throw new BtfError(`${what}: version ${view.getUint8(2)} is not supported (want 1)`);
  return { hdrLen: view.getUint32(4, true) };
}

export function parseBtf(data: Uint8Array): Btf {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const { hdrLen } = header(view, '.BTF');
  const typeOff = view.getUint32(8, true);
  const typeLen = view.getUint32(12, true);
  const strOff = view.getUint32(16, true);
  const strLen = view.getUint32(20, true);
  if (hdrLen + strOff + strLen > data.length || hdrLen + typeOff + typeLen > data.length) {
    throw new BtfError('.BTF: sections extend past the end of the data');
  }
  const strings = data.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
  const str = (off: number) => {
    let end = off;
    while (end < strings.length && strings[end] !== 0) end++;
    return Buffer.from(strings.buffer, strings.byteOffset + off, end - off).toString('utf8');
  };
  const types: BtfType[] = [{ id: 0, kind: 0, name: 'void', kindFlag: false, sizeOrType: 0, members: [], array: null, vars: [] }];
  let p = hdrLen + typeOff;
  const end = p + typeLen;
  while (p < end) {
    const nameOff = view.getUint32(p, true);
    const info = view.getUint32(p + 4, true);
    const sizeOrType = view.getUint32(p + 8, true);
    p += 12;
    const vlen = info & 0xffff;
    const kind = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    const members: BtfMember[] = [];
    const vars: BtfVarSecinfo[] = [];
    let array: BtfType['array'] = null;
    switch (kind) {
      case BtfKind.INT:
      case BtfKind.VAR:
      case BtfKind.DECL_TAG:
        p += 4;
        break;
      case BtfKind.ARRAY:
        array = { type: view.getUint32(p, true), indexType: view.getUint32(p + 4, true), nelems: view.getUint32(p + 8, true) };
        p += 12;
        break;
      case BtfKind.STRUCT:
      case BtfKind.UNION:
        for (let i = 0; i < vlen; i++, p += 12) {
          members.push({ name: str(view.getUint32(p, true)), type: view.getUint32(p + 4, true), offset: view.getUint32(p + 8, true) });
        }
        break;
      case BtfKind.ENUM:
        for (let i = 0; i < vlen; i++, p += 8) members.push({ name: str(view.getUint32(p, true)), type: 0, offset: view.getInt32(p + 4, true) });
        break;
      case BtfKind.ENUM64:
        for (let i = 0; i < vlen; i++, p += 12) members.push({ name: str(view.getUint32(p, true)), type: 0, offset: view.getUint32(p + 4, true) });
        break;
      case BtfKind.FUNC_PROTO:
        for (let i = 0; i < vlen; i++, p += 8) members.push({ name: str(view.getUint32(p, true)), type: view.getUint32(p + 4, true), offset: i });
        break;
      case BtfKind.DATASEC:
        for (let i = 0; i < vlen; i++, p += 12) {
          vars.push({ type: view.getUint32(p, true), offset: view.getUint32(p + 4, true), size: view.getUint32(p + 8, true) });
        }
        break;
      case BtfKind.PTR:
      case BtfKind.FWD:
      case BtfKind.TYPEDEF:
      case BtfKind.VOLATILE:
      case BtfKind.CONST:
      case BtfKind.RESTRICT:
      case BtfKind.FUNC:
      case BtfKind.FLOAT:
      case BtfKind.TYPE_TAG:
        break;
      default:
        throw new BtfError(`.BTF: type ${types.length} has unknown kind ${kind}`);
    }
    types.push({ id: types.length, kind, name: str(nameOff), kindFlag, sizeOrType, members, array, vars });
  }
  return new Btf(types, strings);
}

/** A BTF-defined map as declared in `.maps`. */
export interface BtfMapDef {
  readonly name: string;
  /** The variable's offset as BTF records it: 0 in relocatable objects (libbpf, like link.ts, takes it from the symbol table). */
  readonly offset: number;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly keyType: number;
  readonly valueType: number;
  /** Whether the definition has a `values` member (map-in-map or prog-array initialisers). */
  readonly hasValues: boolean;
}

/** The `.maps` definitions in DATASEC order (the order libbpf creates them in). */
export function btfMapDefinitions(btf: Btf, secName = '.maps'): BtfMapDef[] {
  const sec = btf.find(BtfKind.DATASEC, secName);
  if (!sec) return [];
  const defs: BtfMapDef[] = [];
  for (const v of sec.vars) {
    const varType = btf.type(v.type);
    if (varType.kind !== BtfKind.VAR) throw new BtfError(`${secName}: entry ${v.type} is ${kindName(varType.kind)}, not a variable`);
    const name = varType.name;
    const def = btf.skipModifiers(varType.sizeOrType);
    if (def.kind !== BtfKind.STRUCT) throw new BtfError(`map ${name}: definition is ${kindName(def.kind)}, not a struct`);
    const ints: Record<string, number> = {};
    let keyType = 0;
    let valueType = 0;
    let keySizeFromType = -1;
    let valueSizeFromType = -1;
    let hasValues = false;
    for (const m of def.members) {
      const mt = btf.skipModifiers(m.type);
      switch (m.name) {
        case 'type':
        case 'max_entries':
        case 'map_flags':
        case 'numa_node':
        case 'key_size':
        case 'value_size':
        case 'pinning':
        case 'map_extra': {
          const arr = mt.kind === BtfKind.PTR ? btf.skipModifiers(mt.sizeOrType) : null;
          if (!arr || arr.kind !== BtfKind.ARRAY || !arr.array) {
            throw new BtfError(`map ${name}: field ${m.name} is not declared with __uint()`);
          }
          ints[m.name] = arr.array.nelems;
          break;
        }
        case 'key':
        case 'value': {
          if (mt.kind !== BtfKind.PTR) throw new BtfError(`map ${name}: field ${m.name} is not declared with __type()`);
          const size = btf.sizeOf(mt.sizeOrType);
          if (m.name === 'key') {
            keyType = mt.sizeOrType;
            keySizeFromType = size;
          } else {
            valueType = mt.sizeOrType;
            valueSizeFromType = size;
          }
          break;
        }
        case 'values':
          hasValues = true;
          break;
        default:
          throw new BtfError(`map ${name}: unknown field ${m.name} in its definition`);
      }
    }
    const pick = (fromInt: number | undefined, fromType: number, what: string): number => {
      if (fromInt !== undefined && fromType >= 0 && fromInt !== fromType) {
        throw new BtfError(`map ${name}: ${what}_size ${fromInt} disagrees with ${what} type size ${fromType}`);
      }
      return fromInt ?? (fromType >= 0 ? fromType : 0);
    };
    if (ints['type'] === undefined) throw new BtfError(`map ${name}: no map type declared`);
    defs.push({
      name,
      offset: v.offset,
      type: ints['type'],
      keySize: pick(ints['key_size'], keySizeFromType, 'key'),
      valueSize: pick(ints['value_size'], valueSizeFromType, 'value'),
      maxEntries: ints['max_entries'] ?? 0,
      flags: ints['map_flags'] ?? 0,
      keyType,
      valueType,
      hasValues,
    });
  }
  return defs;
}

export interface FuncInfo {
  readonly insn: number;
  readonly typeId: number;
  readonly name: string;
}
export interface LineInfo {
  /** Instruction index inside the section. */
  readonly insn: number;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The source line's text as the compiler recorded it. */
  readonly text: string;
}
export interface CoreRelo {
  readonly insn: number;
  readonly typeId: number;
  readonly access: string;
  readonly kind: number;
}

export interface BtfExt {
  readonly funcInfo: ReadonlyMap<string, readonly FuncInfo[]>;
  readonly lineInfo: ReadonlyMap<string, readonly LineInfo[]>;
  readonly coreRelos: ReadonlyMap<string, readonly CoreRelo[]>;
}

/**
 * Parses .BTF.ext. In a relocatable object the instruction offsets are already relative to
 * their section (the .rel.BTF.ext entries only matter to a static linker), so none are applied.
 */
export function parseBtfExt(data: Uint8Array, btf: Btf): BtfExt {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const { hdrLen } = header(view, '.BTF.ext');
  const sub = (off: number, len: number) => ({ start: hdrLen + off, end: hdrLen + off + len });
  const funcSec = sub(view.getUint32(8, true), view.getUint32(12, true));
  const lineSec = sub(view.getUint32(16, true), view.getUint32(20, true));
  const coreSec = hdrLen >= 32 ? sub(view.getUint32(24, true), view.getUint32(28, true)) : { start: 0, end: 0 };

  function walk<T>(s: { start: number; end: number }, minRec: number, what: string, read: (p: number) => T): Map<string, T[]> {
    const out = new Map<string, T[]>();
    if (s.end <= s.start) return out;
    if (s.end > data.length) throw new BtfError(`.BTF.ext: ${what} extends past the end of the data`);
    const recSize = view.getUint32(s.start, true);
    if (recSize < minRec) throw new BtfError(`.BTF.ext: ${what} record size ${recSize} is too small`);
    let p = s.start + 4;
    while (p < s.end) {
      const secName = btf.string(view.getUint32(p, true));
      const n = view.getUint32(p + 4, true);
      p += 8;
      const list = out.get(secName) ?? [];
      for (let i = 0; i < n; i++, p += recSize) list.push(read(p));
      out.set(secName, list);
    }
    return out;
  }

  const funcInfo = walk(funcSec, 8, 'func info', (p) => {
    const typeId = view.getUint32(p + 4, true);
    return { insn: view.getUint32(p, true) / 8, typeId, name: btf.types[typeId]?.name ?? '' };
  });
  const lineInfo = walk(lineSec, 16, 'line info', (p) => {
    const lineCol = view.getUint32(p + 12, true);
    return {
      insn: view.getUint32(p, true) / 8,
      file: btf.string(view.getUint32(p + 4, true)),
      text: btf.string(view.getUint32(p + 8, true)),
      line: lineCol >>> 10,
      col: lineCol & 0x3ff,
    };
  });
  const coreRelos = walk(coreSec, 16, 'CO-RE relocations', (p) => ({
    insn: view.getUint32(p, true) / 8,
    typeId: view.getUint32(p + 4, true),
    access: btf.string(view.getUint32(p + 8, true)),
    kind: view.getUint32(p + 12, true),
  }));
  return { funcInfo, lineInfo, coreRelos };
}
