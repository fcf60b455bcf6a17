// Mutants of the BPF data path: each is one plausible bug, chosen at compile time by one
// `MUTANT_*` flag guarding a small `#ifdef` in bpf/src. The default build (no flag) is the correct
// data path; a checker that is worth anything must tell each mutant from it.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ObjectPaths } from '../model/executor.js';
import { KmeshCheckError } from './errors.js';
import { packageRoot } from './kernel/paths.js';

export interface Mutant {
  /** kebab-case; also the build folder under build/mutants/. */
  readonly name: string;
  /** The preprocessor flag, `MUTANT_...`, passed as -D<flag>. */
  readonly flag: string;
  /** One sentence: what the bug is. */
  readonly description: string;
  /** The object whose code the flag changes; the other two compile as in the default build. */
  readonly object: keyof ObjectPaths;
  /** The invariant expected to catch it (filled by the checker team). */
  readonly expectedInvariant?: string;
}

export const MUTANTS: readonly Mutant[] = [
  {
    name: 'strict-first-nonempty',
    flag: 'MUTANT_STRICT_FIRST_NONEMPTY',
    description: 'Locality strict escapes to the first non-empty priority group, so it can pick a backend of priority 1 or worse.',
    object: 'connect',
  },
  {
    name: 'strict-empty-kept',
    flag: 'MUTANT_STRICT_EMPTY_KEPT',
    description: 'Locality strict with count[0] == 0 keeps the destination and records it as original instead of failing the pass.',
    object: 'connect',
  },
  {
    name: 'failover-last-nonempty',
    flag: 'MUTANT_FAILOVER_LAST_NONEMPTY',
    description: 'Locality failover scans from priority 6 down, so it chooses the last non-empty group instead of the first.',
    object: 'connect',
  },
  {
    name: 'pick-ignores-count',
    flag: 'MUTANT_PICK_IGNORES_COUNT',
    description: "The endpoint index is drawn as prandom % 7 + 1 (the number of priority groups) instead of modulo the group's count.",
    object: 'connect',
  },
  {
    name: 'endpoint-index-zero-based',
    flag: 'MUTANT_ENDPOINT_INDEX_ZERO_BASED',
    description: 'The endpoint index is 0-based (prandom % count), so index 0 can be looked up and index count never is.',
    object: 'connect',
  },
  {
    name: 'endpoint-miss-next-group',
    flag: 'MUTANT_ENDPOINT_MISS_NEXT_GROUP',
    description: 'After an endpoint or backend miss, the same index is tried in the next priority group (entries the semantics never reads).',
    object: 'connect',
  },
  {
    name: 'connect6-no-fold',
    flag: 'MUTANT_CONNECT6_NO_FOLD',
    description: 'connect6 looks a v4-mapped destination up by its 16 bytes instead of folding it to its IPv4 frontend key.',
    object: 'connect',
  },
  {
    name: 'port-map-skips-slot0',
    flag: 'MUTANT_PORT_MAP_SKIPS_SLOT0',
    description: 'Port mapping starts at slot 1, so a destination port found only in slot 0 fails the pass.',
    object: 'connect',
  },
  {
    name: 'port-map-next-slot',
    flag: 'MUTANT_PORT_MAP_NEXT_SLOT',
    description: 'Port mapping is off by one: slot i matches but target_port[i + 1] is used (slot 9 reads the first word of wp_addr).',
    object: 'connect',
  },
  {
    name: 'port-map-keeps-port',
    flag: 'MUTANT_PORT_MAP_KEEPS_PORT',
    description: 'Port mapping writes the matching service port back instead of the target port, so the destination port never changes.',
    object: 'connect',
  },
  {
    name: 'original-overwritten',
    flag: 'MUTANT_ORIGINAL_OVERWRITTEN',
    description: 'The has_set_ip guard is ignored, so a waypoint pass or a later connect overwrites the recorded original destination.',
    object: 'connect',
  },
  {
    name: 'via-waypoint-cleared',
    flag: 'MUTANT_VIA_WAYPOINT_CLEARED',
    description: 'A rewriting pass that is not a waypoint clears via_waypoint, so a chain ending at a backend loses the flag.',
    object: 'connect',
  },
  {
    name: 'dns-no-original',
    flag: 'MUTANT_DNS_NO_ORIGINAL',
    description: 'The DNS rewrite to the proxy does not record the original destination (and a UDP DNS pass creates no storage).',
    object: 'connect',
  },
  {
    name: 'family-truncate',
    flag: 'MUTANT_FAMILY_TRUNCATE',
    description: 'The address-family rule is skipped: an AF_INET socket is rewritten to the first 4 bytes of an IPv6 target.',
    object: 'connect',
  },
  {
    name: 'waypoint-ip4-only',
    flag: 'MUTANT_WAYPOINT_IP4_ONLY',
    description: 'A waypoint counts as configured only when the first 4 bytes of wp_addr are non-zero (upstream accident), not any of the 16.',
    object: 'connect',
  },
  {
    name: 'tail-slot-wrong',
    flag: 'MUTANT_TAIL_SLOT_WRONG',
    description: 'connect4 tail-calls slot 1 of km_cgr_tailcall, which userspace leaves empty, so a waypoint chain on connect4 stops after one pass.',
    object: 'connect',
  },
  {
    name: 'sockops-ignores-waypoint',
    flag: 'MUTANT_SOCKOPS_IGNORES_WAYPOINT',
    description: 'sockops inserts every enrolled socket that has storage into km_socket, waypoint-bound or not.',
    object: 'sockops',
  },
  {
    name: 'tlv-repeated',
    flag: 'MUTANT_TLV_REPEATED',
    description: 'sendmsg does not check has_encoded, so every message of a waypoint-bound socket gets the TLV prefix.',
    object: 'sendmsg',
  },
  {
    name: 'tlv-encoded-not-set',
    flag: 'MUTANT_TLV_ENCODED_NOT_SET',
    description: 'sendmsg never sets has_encoded, so every message of a waypoint-bound socket gets the TLV prefix and the flag stays 0.',
    object: 'sendmsg',
  },
  {
    name: 'tlv-length-host-order',
    flag: 'MUTANT_TLV_LENGTH_HOST_ORDER',
    description: 'The TLV length is written in little-endian host order (06 00 00 00) instead of big-endian.',
    object: 'sendmsg',
  },
];

const OBJECT_FILES: Readonly<Record<keyof ObjectPaths, string>> = {
  connect: 'cgroup_sock.o',
  sockops: 'sockops.o',
  sendmsg: 'sendmsg.o',
};

/** Where a build's three objects are (or will be). */
function objectsIn(dir: string): ObjectPaths {
  return {
    connect: join(dir, OBJECT_FILES.connect),
    sockops: join(dir, OBJECT_FILES.sockops),
    sendmsg: join(dir, OBJECT_FILES.sendmsg),
  };
}

export function findMutant(name: string): Mutant {
  const m = MUTANTS.find((x) => x.name === name);
  if (!m) throw new KmeshCheckError('unsupported', `unknown mutant '${name}': use one of ${MUTANTS.map((x) => x.name).join(', ')}`);
  return m;
}

/** Where buildMutant puts a mutant's objects, without building them. */
export function mutantObjects(name: string, root = packageRoot()): ObjectPaths {
  return objectsIn(join(root, 'build/mutants', findMutant(name).name));
}

let clangChecked = false;

function assertClang(): void {
  if (clangChecked) return;
  const r = spawnSync('clang', ['--version'], { stdio: 'ignore' });
  if (r.error || r.status !== 0) {
    throw new KmeshCheckError('build', 'clang not found: run `bash scripts/setup.sh` to install clang, llvm and libbpf-dev');
  }
  clangChecked = true;
}

/** Runs bpf/Makefile into `dir` with extra flags; make rebuilds only what changed. */
function make(root: string, dir: string, cflags: string, what: string): ObjectPaths {
  assertClang();
  const args = ['--no-print-directory', '-j2', '-C', join(root, 'bpf'), `OUT=${dir}`, `EXTRA_CFLAGS=${cflags}`];
  const r = spawnSync('make', args, { encoding: 'utf8' });
  if (r.error) throw new KmeshCheckError('build', `cannot run make for ${what} (${r.error.message}): install make`);
  if (r.status !== 0) {
    const lines = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
    const cause = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? `make exited with ${r.status}`;
    throw new KmeshCheckError('build', `building ${what} failed: ${cause}; run make -C bpf OUT=${dir} EXTRA_CFLAGS='${cflags}' for the full log`);
  }
  const objects = objectsIn(dir);
  for (const p of Object.values(objects)) {
    if (!existsSync(p)) throw new KmeshCheckError('build', `building ${what} did not produce ${p}: check bpf/Makefile`);
  }
  return objects;
}

/** Builds one mutant into build/mutants/<name>/ (a no-op when up to date); its three objects. */
export function buildMutant(name: string, root = packageRoot()): ObjectPaths {
  const m = findMutant(name);
  return make(root, join(root, 'build/mutants', m.name), `-D${m.flag}`, `mutant ${m.name}`);
}

/** Builds every mutant; objects by mutant name. */
export function buildAllMutants(root = packageRoot()): ReadonlyMap<string, ObjectPaths> {
  return new Map(MUTANTS.map((m) => [m.name, buildMutant(m.name, root)] as const));
}

/**
 * The default data path built next to the mutants (build/mutants/.baseline/), for comparisons
 * that must not race with whoever rebuilds build/bpf.
 */
export function buildBaseline(root = packageRoot()): ObjectPaths {
  return make(root, join(root, 'build/mutants/.baseline'), '', 'the baseline data path');
}
