// The test runner's transform (esbuild, one file at a time) keeps `const enum` members as
// property reads of a runtime object, while tsc writes their numbers into the compiled code.
// The VM's engines switch on opcode names (bpf/vm/opcodes.ts) in their hottest loop, so under
// vitest they would run slower than they do in dist/. This plugin does what tsc does: it
// replaces each member of the const enums of opcodes.ts with its number before esbuild runs.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';

const SOURCE = fileURLToPath(new URL('../../bpf/vm/opcodes.ts', import.meta.url));

function enumValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/export const enum (\w+) \{([^}]*)\}/g)) {
    for (const e of m[2]!.matchAll(/^\s*(\w+) = (0x[0-9a-f]+|\d+),/gm)) out.set(`${m[1]}.${e[1]}`, e[2]!);
  }
  return out;
}

export function inlineConstEnums(): Plugin {
  const values = enumValues(readFileSync(SOURCE, 'utf8'));
  const names = [...new Set([...values.keys()].map((k) => k.split('.')[0]))];
  const pattern = new RegExp(`\\b(?:${names.join('|')})\\.[A-Z][A-Z0-9_]*\\b`, 'g');
  return {
    name: 'inline-const-enums',
    enforce: 'pre',
    transform(code, id) {
      if (!id.includes('/bpf/vm/') || !id.endsWith('.ts') || id === SOURCE) return null;
      if (!code.includes("from './opcodes.js'")) return null;
      return { code: code.replace(pattern, (m) => values.get(m) ?? m), map: null };
    },
  };
}
