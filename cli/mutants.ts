// Building the mutants of the BPF data path (the `mutants` and `bench` commands and the tests):
// each is one plausible bug, written as a small patch against the production sources
// (bpf/mutants/<name>.patch). A mutant's build copies bpf/src, applies its patch and compiles the
// copy, so the production sources carry no test hooks; the default build is the correct data
// path, and a checker that is worth anything must tell each mutant from it.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withBuildLock } from './build-lock.js';
import { copyObjects, reusableObjects } from './object-reuse.js';
import { PatchError, applyPatch } from './mutant-patch.js';
import type { ObjectPaths } from '../model/executor.js';
import { KmeshCheckError } from '../shared/errors.js';
import { defaultObjects, packageRoot } from '../shared/package.js';

export interface Mutant {
  /** kebab-case; also the build folder under build/mutants/. */
  readonly name: string;
  /** One sentence: what the bug is. */
  readonly description: string;
  /** The object whose code the patch changes; the other two compile as in the default build. */
  readonly object: keyof ObjectPaths;
  /** The invariant expected to catch it (filled by the checker team). */
  readonly expectedInvariant?: string;
  /**
   * Why the exhaustive phase up to scope 2 cannot show it (random sampling does), when it cannot:
   * its sequences have one socket that sends one message.
   */
  readonly beyondExhaustive?: string;
  /**
   * Why only the exhaustive phase's other starts of an enrolled namespace (scope 2: km_manage
   * written, or reports off) show it, when so. The exhaustive-mutants test explores those starts
   * for such a mutant alone, and the rest of scope 2 for the others, instead of walking both for
   * every mutant.
   */
  readonly exhaustiveStart?: string;
}

export const MUTANTS: readonly Mutant[] = [
  {
    name: 'strict-first-nonempty',
    description: 'Locality strict escapes to the first non-empty priority group, so it can pick a backend of priority 1 or worse.',
    object: 'connect',
  },
  {
    name: 'strict-empty-kept',
    description: 'Locality strict with count[0] == 0 keeps the destination and records it as original instead of failing the pass.',
    object: 'connect',
  },
  {
    name: 'failover-last-nonempty',
    description: 'Locality failover scans from priority 6 down, so it chooses the last non-empty group instead of the first.',
    object: 'connect',
  },
  {
    name: 'failover-empty-u16',
    description: "Locality failover tests a group's count at 16 bits, so a group whose u32 count is a multiple of 65536 looks empty and a later group is chosen.",
    object: 'connect',
  },
  {
    name: 'failover-count-signed',
    description:
      "Locality failover reads a group's count as a signed int and takes a group for empty unless it is positive, so a group whose u32 count has its top bit set is skipped and a later group is chosen.",
    object: 'connect',
  },
  {
    name: 'control-other-port-withdraws',
    description: 'A connect to the control address on any port but 929 withdraws, so the namespace leaves km_manage where only 930 should take it out: a connect to [::2]:80 gets no storage.',
    object: 'connect',
  },
  {
    name: 'pick-ignores-count',
    description: "The endpoint index is drawn as prandom % 7 + 1 (the number of priority groups) instead of modulo the group's count.",
    object: 'connect',
  },
  {
    name: 'endpoint-index-zero-based',
    description: 'The endpoint index is 0-based (prandom % count), so index 0 can be looked up and index count never is.',
    object: 'connect',
  },
  {
    name: 'endpoint-miss-next-group',
    description: 'After an endpoint or backend miss, the same index is tried in the next priority group (entries the semantics never reads).',
    object: 'connect',
  },
  {
    name: 'connect6-no-fold',
    description: 'connect6 looks a v4-mapped destination up by its 16 bytes instead of folding it to its IPv4 frontend key.',
    object: 'connect',
  },
  {
    name: 'port-map-skips-slot0',
    description: 'Port mapping starts at slot 1, so a destination port found only in slot 0 fails the pass.',
    object: 'connect',
  },
  {
    name: 'port-map-next-slot',
    description: 'Port mapping is off by one: slot i matches but target_port[i + 1] is used (slot 9 reads the first word of wp_addr).',
    object: 'connect',
  },
  {
    name: 'port-map-16bit',
    description: "Port mapping compares a slot's service_port with the destination port at 16 bits, so a raw port with an upper half matches its low half.",
    object: 'connect',
  },
  {
    name: 'waypoint-port-16bit',
    description: 'A waypoint is configured only when the low 16 bits of waypoint_port are not 0, so a raw port that has only an upper half is no waypoint.',
    object: 'connect',
  },
  {
    name: 'any-target-unmapped',
    description: 'A target whose address is all zero (0.0.0.0) is written as :: on an AF_INET6 socket instead of ::ffff:0.0.0.0.',
    object: 'connect',
  },
  {
    name: 'port-map-keeps-port',
    description: 'Port mapping writes the matching service port back instead of the target port, so the destination port never changes.',
    object: 'connect',
  },
  {
    name: 'original-overwritten',
    description: 'The has_set_ip guard is ignored, so a waypoint pass or a later connect overwrites the recorded original destination.',
    object: 'connect',
  },
  {
    name: 'waypoint-marked-with-original',
    description: 'via_waypoint is set only by the pass that records the original, so a socket whose earlier connect recorded it without a waypoint is never marked (and its stream gets no TLV).',
    object: 'connect',
    beyondExhaustive: 'it needs a connect that records the original and fails, then one via a waypoint',
  },
  {
    name: 'via-waypoint-cleared',
    description: 'A rewriting pass that is not a waypoint clears via_waypoint, so a chain ending at a backend loses the flag.',
    object: 'connect',
  },
  {
    name: 'dns-no-original',
    description: 'The DNS rewrite to the proxy does not record the original destination (and a UDP DNS pass creates no storage).',
    object: 'connect',
  },
  {
    name: 'family-truncate',
    description: 'The address-family rule is skipped: an AF_INET socket is rewritten to the first 4 bytes of an IPv6 target.',
    object: 'connect',
  },
  {
    name: 'waypoint-ip4-only',
    description: 'A waypoint counts as configured only when the first 4 bytes of wp_addr are non-zero (upstream accident), not any of the 16.',
    object: 'connect',
  },
  {
    name: 'tail-slot-wrong',
    description: 'connect4 tail-calls slot 1 of km_cgr_tailcall, which userspace leaves empty, so a waypoint chain on connect4 stops after one pass.',
    object: 'connect',
  },
  {
    name: 'sockops-ignores-waypoint',
    description: 'sockops inserts every enrolled socket that has storage into km_socket, waypoint-bound or not.',
    object: 'sockops',
  },
  {
    name: 'sockhash-netns-not-local-ip',
    description: 'sockops puts a waypoint-bound socket into km_socket when its namespace is enrolled, though its local IP is not (section 4 asks for the local IP).',
    object: 'sockops',
    exhaustiveStart: 'it needs an enrolled namespace whose local IP is not: control connects enrol both',
  },
  {
    name: 'waypoint-needs-monitoring',
    description: 'sockops puts a waypoint-bound socket into km_socket only while enable_monitoring is on, so with connection reports off the waypoint gets no TLV.',
    object: 'sockops',
    exhaustiveStart: 'it needs connection reports off',
  },
  {
    name: 'tlv-repeated',
    description: 'sendmsg does not check has_encoded, so every message of a waypoint-bound socket gets the TLV prefix.',
    object: 'sendmsg',
  },
  {
    name: 'tlv-skips-short-first-send',
    description: 'sendmsg leaves a first message shorter than the TLV prefix alone, so the prefix goes in front of a later message, in the middle of the stream.',
    object: 'sendmsg',
    beyondExhaustive: "a short first message is the second socket's, or a later one of the first",
  },
  {
    name: 'tlv-encoded-not-set',
    description: 'sendmsg never sets has_encoded, so every message of a waypoint-bound socket gets the TLV prefix and the flag stays 0.',
    object: 'sendmsg',
  },
  {
    name: 'tlv-length-host-order',
    description: 'The TLV length is written in little-endian host order (06 00 00 00) instead of big-endian.',
    object: 'sendmsg',
  },
  {
    name: 'dns-first-server',
    description: "The DNS server a socket's redirected queries addressed is recorded once, so every later reply is reported as coming from the first server the socket queried.",
    object: 'connect',
  },
  {
    name: 'random-never-last',
    description:
      'The random pick draws among count - 1 endpoints, so the last endpoint of a group is never chosen: every single connect goes somewhere the model allows, only the set of outcomes shows it.',
    object: 'connect',
  },
  {
    name: 'lb-redraw-on-miss',
    description:
      'A pick that finds no endpoint draws once more instead of leaving the connect unrewritten: every outcome is one the model allows and the set of outcomes is the same, only the odds and the number of draws differ.',
    object: 'connect',
  },
  {
    name: 'dns-server-global',
    description:
      'The DNS server of the last redirected query is kept in one array entry for the whole node instead of per socket, so a reply is restored to whichever server any socket queried last (the entry also outlives the sockets: a harness must put such a map back between cases).',
    object: 'connect',
    beyondExhaustive: 'it needs two sockets whose queries interleave',
  },
  {
    name: 'dns-any-source',
    description: 'The receive hooks rewrite the source of every datagram on a socket that sent a redirected query, not only replies from the proxy at port 53.',
    object: 'connect',
  },
  {
    name: 'dns-mapped-unrestored',
    description: "recvmsg6 leaves a v4-mapped reply's source alone, so an AF_INET6 socket that queried ::ffff:a.b.c.d sees the proxy's address.",
    object: 'connect',
  },
  {
    name: 'dns-control-mapped-enrols',
    description: "sendmsg4 takes an AF_INET6 socket's send to ::ffff:0.0.0.2:929 for a control send and enrols the namespace.",
    object: 'connect',
  },
  {
    name: 'dns-any-server-unredirected',
    description: 'sendmsg4 takes a query to 0.0.0.0:53 (an old resolver default) for a send without an address and leaves it to the kernel, which sends it to loopback instead of the proxy.',
    object: 'connect',
  },
  {
    name: 'dns-recv6-native-as-mapped',
    description: "recvmsg6 reads only the last 32 bits of a datagram's source, so a native IPv6 source ending in the proxy's IPv4 address is reported as the socket's server.",
    object: 'connect',
  },
  {
    name: 'dns-recv6-mapped-word2-only',
    description:
      "recvmsg6 takes a datagram's source for v4-mapped by its third word alone, so a native IPv6 source like fd00::ffff:a.b.c.d whose last 32 bits are the proxy's address is reported as the socket's server.",
    object: 'connect',
  },
  {
    name: 'dns-connected-redirect',
    description: "sendmsg4 also redirects a connected socket's queries (an AF_INET6 socket connected to ::ffff:a.b.c.d:53), whose replies from the proxy the kernel then drops.",
    object: 'connect',
  },
  {
    name: 'dns-bound-ip-enrols',
    description: 'sendmsg4 counts a socket bound to a local IP that km_manage holds as enrolled, though its namespace is not (km_manage written with the local IPs alone), and redirects its queries.',
    object: 'connect',
    exhaustiveStart: 'it needs km_manage written with the local IPs alone: the bound address managed, the namespace not',
  },
  {
    name: 'dns-control-needs-enrol',
    description:
      'sendmsg4 looks at a send to the control address only in an enrolled namespace, so a resolver outside one cannot enrol it by a send (section 6, step 1); its later queries are not redirected.',
    object: 'connect',
  },
  {
    name: 'policy-low-byte',
    description: 'The LB policy is read as one byte, so 0x100-0x102 (no policy) are routed as random, strict or failover instead of failing the pass.',
    object: 'connect',
  },
  {
    name: 'v4-mapped-word2-only',
    description: 'A connect destination is looked up by its IPv4 key when its third word is 0000ffff, whatever its first two: fd00:1::ffff:a.b.c.d is taken for a.b.c.d.',
    object: 'connect',
    beyondExhaustive: 'the exhaustive address classes have no near-mapped IPv6 address',
  },
  {
    name: 'enrol-init-netns-cookie',
    description:
      "The connect hooks key km_manage by bpf_get_netns_cookie(NULL), the initial namespace's cookie, so every namespace enrols and is looked up under one key; a namespace a control plane enrolled (its own cookie) is never seen as enrolled.",
    object: 'connect',
    exhaustiveStart: 'control connects write and read the same wrong key: it needs km_manage written as a control plane does',
  },
  {
    name: 'enrol-value-zero-only',
    description: "The connect hooks count a namespace's km_manage entry only when its value is 0, so an entry a control plane wrote with another value reads as absent.",
    object: 'connect',
    exhaustiveStart: 'control connects write 0: it needs an entry written with another value',
  },
];

/** Where a build's three objects are (or will be). */
function objectsIn(dir: string): ObjectPaths {
  return defaultObjects(packageRoot(), dir);
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

/**
 * Runs bpf/Makefile on the sources in `src` into `dir`; make rebuilds only what changed. With
 * `reuse` (a patched copy of `reuse.from`, whose build is in `reuse.baseline`), objects not there
 * yet whose inputs the patch left alone are copied from the baseline instead of compiled.
 */
function make(root: string, src: string, dir: string, what: string, reuse?: { baseline: string; from: string }): ObjectPaths {
  assertClang();
  const reused = reuse ? reusableObjects(reuse.baseline, reuse.from, src).filter((o) => !existsSync(join(dir, o))) : [];
  // make is then asked for the other objects only (or for nothing but its flags file).
  const rest = reuse && reused.length ? readdirSync(reuse.baseline).filter((f) => f.endsWith('.o') && !reused.includes(f)) : [];
  const targets = reused.length ? (rest.length ? rest : ['.cflags']).map((f) => join(dir, f)) : [];
  const args = ['--no-print-directory', '-j2', '-C', join(root, 'bpf'), `SRC=${src}`, `OUT=${dir}`, ...targets];
  const r = spawnSync('make', args, { encoding: 'utf8' });
  if (r.error) throw new KmeshCheckError('build', `cannot run make for ${what} (${r.error.message}): install make`);
  if (r.status !== 0) {
    const lines = `${r.stderr}\n${r.stdout}`
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const cause = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? `make exited with ${r.status}`;
    throw new KmeshCheckError('build', `building ${what} failed: ${cause}; run make -C bpf SRC=${src} OUT=${dir} for the full log`);
  }
  if (reuse) copyObjects(reused, reuse.baseline, reuse.from, src, dir);
  const objects = objectsIn(dir);
  for (const p of Object.values(objects)) {
    if (!existsSync(p)) throw new KmeshCheckError('build', `building ${what} did not produce ${p}: check bpf/Makefile`);
  }
  return objects;
}

/** The objects (file names as bpf/Makefile writes them) of a build in `dir`, checked to exist. */
export function builtObjects<K extends string>(dir: string, files: Readonly<Record<K, string>>, what: string): Record<K, string> {
  const out = {} as Record<K, string>;
  for (const k of Object.keys(files) as K[]) {
    const p = join(dir, files[k]);
    if (!existsSync(p)) throw new KmeshCheckError('build', `building ${what} did not produce ${p}: check bpf/Makefile`);
    out[k] = p;
  }
  return out;
}

/** The patch file of a mutant. */
export function mutantPatch(name: string, root = packageRoot()): string {
  return join(root, 'bpf/mutants', `${findMutant(name).name}.patch`);
}

/**
 * Writes the production sources with the mutants' patches applied (in order) into `dir`, touching
 * only files whose content changes (so that make rebuilds only when something did).
 */
function patchedSources(root: string, names: readonly string[], dir: string): void {
  const src = join(root, 'bpf/src');
  let files: ReadonlyMap<string, string> = new Map(
    readdirSync(src)
      .filter((f) => /\.[ch]$/.test(f))
      .map((f) => [f, readFileSync(join(src, f), 'utf8')] as const),
  );
  for (const [i, name] of names.entries()) {
    try {
      files = applyPatch(files, readFileSync(join(root, 'bpf/mutants', `${name}.patch`), 'utf8'));
    } catch (e) {
      if (e instanceof PatchError) {
        const also = names.length > 1 ? ` (after ${names.slice(0, i).join(', ') || 'no other'})` : '';
        throw new KmeshCheckError('build', `mutant ${name} no longer applies${also}: ${e.message}; update bpf/mutants/${name}.patch to the production source`);
      }
      throw e;
    }
  }
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of files) {
    const p = join(dir, f);
    if (!existsSync(p) || readFileSync(p, 'utf8') !== text) writeFileSync(p, text);
  }
}

/** Builds one mutant into build/mutants/<name>/ (a no-op when up to date); its three objects. */
export function buildMutant(name: string, root = packageRoot()): ObjectPaths {
  const m = findMutant(name);
  return patchedBuild([m.name], root, (src, dir, reuse) => make(root, src, dir, `mutant ${m.name}`, reuse));
}

/**
 * Writes a mutant's patched copy of the sources (build/mutants/<name>/src) and runs bpf/Makefile
 * on it into build/mutants/<name>/; the build folder. The acceleration and report mutant tables
 * (accel-mutants.ts, report-mutants.ts) build through here too: one mechanism, one patch each.
 */
export function buildPatched(name: string, root = packageRoot()): string {
  return patchedBuild([name], root, (src, dir, reuse) => {
    make(root, src, dir, `mutant ${name}`, reuse);
    return dir;
  });
}

/**
 * Writes the patched copy of several mutants (applied in order) into build/mutants/<a>+<b>/src and
 * builds it there with `build`, holding the folder's lock throughout: two test files (or two users)
 * building the same mutant at once would otherwise read half-written sources or objects.
 */
function patchedBuild<T>(names: readonly string[], root: string, build: (src: string, dir: string, reuse?: { baseline: string; from: string }) => T): T {
  const dir = join(root, 'build/mutants', names.join('+'));
  // Only a folder without a build yet takes objects from the baseline (make keeps a built one up to
  // date alone): an up-to-date mutant costs no baseline build.
  const reuse = existsSync(join(dir, '.cflags')) ? undefined : reuseFrom(root);
  return withBuildLock(dir, () => {
    patchedSources(root, names, join(dir, 'src'));
    return build(join(dir, 'src'), dir, reuse);
  });
}

/**
 * Builds several mutants at once (their patches applied together, in order) into
 * build/mutants/<a>+<b>/: objects with more than one planted bug, for testing that one run
 * reports each of them.
 */
export function buildMutantSet(names: readonly string[], root = packageRoot()): ObjectPaths {
  const ms = names.map(findMutant).map((m) => m.name);
  return patchedBuild(ms, root, (src, dir, reuse) => make(root, src, dir, `mutants ${ms.join(' + ')}`, reuse));
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
  const dir = join(root, 'build/mutants/.baseline');
  let built = baselines.get(dir);
  if (!built) {
    built = withBuildLock(dir, () => make(root, join(root, 'bpf/src'), dir, 'the baseline data path'));
    baselines.set(dir, built);
  }
  return built;
}
/** Baselines built by this process (the sources do not change while it runs). */
const baselines = new Map<string, ObjectPaths>();

/**
 * The baseline build patched copies take unchanged objects from; none when it cannot be built
 * here (a user who may not write build/ still builds a mutant that is up to date already).
 */
function reuseFrom(root: string): { baseline: string; from: string } | undefined {
  try {
    return { baseline: dirname(buildBaseline(root).connect), from: join(root, 'bpf/src') };
  } catch (e) {
    if (e instanceof KmeshCheckError) return undefined;
    throw e;
  }
}
