// Bad objects and bad conditions give one-line KmeshCheckErrors with the right code. Fixture
// objects are compiled here, at test time, from tiny BPF C sources.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmeshCheckError } from '../../shared/errors.js';
import type { KernelExecutorOptions } from '../../bpf/kernel/executor.js';
import { loadError, summariseVerifierLog } from '../../bpf/kernel/loader.js';
import { verifyObjects } from '../../bpf/kernel/verify.js';
import { defaultObjects, packageRoot, workerScript } from '../../bpf/kernel/paths.js';
import { missingCapabilities } from '../../bpf/kernel/privileges.js';
import { startKernel } from '../helpers/kernel.js';

const HEAD = '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar _license[] SEC("license") = "GPL";\n';
const FIXTURES: Record<string, string> = {
  // sendmsg_prog with km_service's value 4 bytes short of the ABI's 132.
  'short-service.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(key_size, 4); __uint(value_size, 128); __uint(max_entries, 16); } km_service SEC(".maps");
SEC("sk_msg") int sendmsg_prog(struct sk_msg_md *m) { return SK_PASS; }`,
  // sendmsg_prog with km_frontend keyed by 4 bytes instead of 16.
  'narrow-frontend.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(key_size, 4); __uint(value_size, 4); __uint(max_entries, 16); } km_frontend SEC(".maps");
SEC("sk_msg") int sendmsg_prog(struct sk_msg_md *m) { return SK_PASS; }`,
  // sendmsg_prog with km_socket as a plain hash.
  'hash-socket.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(key_size, 36); __uint(value_size, 4); __uint(max_entries, 16); } km_socket SEC(".maps");
SEC("sk_msg") int sendmsg_prog(struct sk_msg_md *m) { return SK_PASS; }`,
  // sendmsg_prog with km_manage of 1024 entries instead of 8192.
  'small-manage.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(key_size, 16); __uint(value_size, 4); __uint(max_entries, 1024); } km_manage SEC(".maps");
SEC("sk_msg") int sendmsg_prog(struct sk_msg_md *m) { return SK_PASS; }`,
  // sendmsg_prog with km_frontend preallocated (the ABI says no prealloc).
  'prealloc-frontend.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(key_size, 16); __uint(value_size, 4); __uint(max_entries, 105000); } km_frontend SEC(".maps");
SEC("sk_msg") int sendmsg_prog(struct sk_msg_md *m) { return SK_PASS; }`,
  // sendmsg_prog with km_socket as an LRU hash (a type the data path has no other use for).
  'lru-socket.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(key_size, 36); __uint(value_size, 4); __uint(max_entries, 8192); } km_socket SEC(".maps");
SEC("sk_msg") int sendmsg_prog(struct sk_msg_md *m) { return SK_PASS; }`,
  // A sockops object whose program has another name.
  'renamed-sockops.c': `${HEAD}
SEC("sockops") int other_prog(struct bpf_sock_ops *s) { return 1; }`,
  // A connect object without its tail-call arrays.
  'no-tailcall.c': `${HEAD}
SEC("cgroup/connect4") int cgroup_connect4_prog(struct bpf_sock_addr *c) { return 1; }
SEC("cgroup/connect6") int cgroup_connect6_prog(struct bpf_sock_addr *c) { return 1; }`,
  // A cgroup_skb object whose ingress program the verifier rejects, as the sockops one below.
  'unchecked-skb.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, __u32); __uint(max_entries, 1); } fixture_map SEC(".maps");
SEC("cgroup_skb/ingress") int cgroup_skb_ingress_prog(struct __sk_buff *s) { __u32 k = s->len; __u32 *v = bpf_map_lookup_elem(&fixture_map, &k); return *v; }
SEC("cgroup_skb/egress") int cgroup_skb_egress_prog(struct __sk_buff *s) { return 1; }`,
  // A sockops program with a map pinned by name (libbpf pins it under /sys/fs/bpf at load).
  'pinned-map.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, __u32); __uint(max_entries, 1); __uint(pinning, LIBBPF_PIN_BY_NAME); } kc_pin_probe SEC(".maps");
SEC("sockops") int sockops_prog(struct bpf_sock_ops *s) { __u32 k = 0; return bpf_map_lookup_elem(&kc_pin_probe, &k) ? 1 : 1; }`,
  // A sockops program the verifier rejects: a map value used without the null check.
  'unchecked-sockops.c': `${HEAD}
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, __u32); __uint(max_entries, 1); } fixture_map SEC(".maps");
SEC("sockops") int sockops_prog(struct bpf_sock_ops *s) { __u32 k = s->op; __u32 *v = bpf_map_lookup_elem(&fixture_map, &k); return *v; }`,
};

let dir = '';
const obj = (name: string) => join(dir, name.replace(/\.c$/, '.o'));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmesh-check-fixtures-'));
  const arch = `/usr/include/${execFileSync('uname', ['-m']).toString().trim()}-linux-gnu`;
  for (const [name, src] of Object.entries(FIXTURES)) {
    writeFileSync(join(dir, name), src);
    execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-I${arch}`, '-c', join(dir, name), '-o', obj(name)]);
  }
  writeFileSync(join(dir, 'notes.txt'), 'this is not a BPF object\n');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starting an executor with these objects must fail with `code` and a message matching `re`. */
async function failsWith(objects: KernelExecutorOptions['objects'], code: string, re: RegExp): Promise<KmeshCheckError> {
  let err: unknown = null;
  try {
    const ex = await startKernel({ objects });
    await ex.close();
  } catch (e) {
    err = e;
  }
  expect(err, 'the executor started although it should not').toBeInstanceOf(KmeshCheckError);
  const k = err as KmeshCheckError;
  expect(k.code).toBe(code);
  expect(k.message).toMatch(re);
  expect(k.message.split('\n')).toHaveLength(1);
  return k;
}

describe('object errors', () => {
  it('a file that is not ELF', async () => {
    await failsWith({ connect: join(dir, 'notes.txt') }, 'object-file', /notes\.txt is not an ELF file/);
  });

  it('a missing object file', async () => {
    await failsWith({ sockops: join(dir, 'nope.o') }, 'object-file', /nope\.o does not exist: build it/);
  });

  it('an object without the expected program', async () => {
    await failsWith({ sockops: obj('renamed-sockops.c') }, 'object-content', /has no program 'sockops_prog' \(it has: other_prog\)/);
  });

  it('a connect object without its tail-call array', async () => {
    await failsWith({ connect: obj('no-tailcall.c') }, 'object-content', /has no map km_cgr_tailcall/);
  });

  it('a map whose value size differs from the ABI', async () => {
    await failsWith({ sendmsg: obj('short-service.c') }, 'abi-mismatch', /map km_service in short-service\.o: value size 128 B, expected 132 B \(service_value\)/);
  });

  it('a map whose key size differs from the ABI', async () => {
    await failsWith({ sendmsg: obj('narrow-frontend.c') }, 'abi-mismatch', /map km_frontend in narrow-frontend\.o: key size 4 B, expected 16 B/);
  });

  it('a map of the wrong type', async () => {
    await failsWith({ sendmsg: obj('hash-socket.c') }, 'abi-mismatch', /map km_socket in hash-socket\.o: type hash \(1\), expected sockhash \(18\)/);
    await failsWith({ sendmsg: obj('lru-socket.c') }, 'abi-mismatch', /map km_socket in lru-socket\.o: type lru_hash \(9\), expected sockhash \(18\)/);
  });

  it('a map whose capacity differs from the ABI, or preallocated where the ABI says not', async () => {
    await failsWith({ sendmsg: obj('small-manage.c') }, 'abi-mismatch', /^map km_manage in small-manage\.o: max_entries 1024, expected 8192 \(kmesh-dataplane\.md section 2\)$/);
    await failsWith({ sendmsg: obj('prealloc-frontend.c') }, 'abi-mismatch', /^map km_frontend in prealloc-frontend\.o: preallocated \(no BPF_F_NO_PREALLOC in its map_flags\), expected no prealloc/);
  });

  it('a verifier rejection names the program and the verifier message', async () => {
    const e = await failsWith({ sockops: obj('unchecked-sockops.c') }, 'verifier', /verifier rejected program 'sockops_prog' in .*unchecked-sockops\.o: .*invalid mem access/);
    expect(e.message).toMatch(/last instructions: \d+: \(/);
  });

  it('a run of check has the kernel verify its objects first, and stops on one it refuses, on either executor', () => {
    const check = (executor: string, ...objects: string[]) =>
      spawnSync(process.execPath, [join(packageRoot(), 'bin/kmesh-check.js'), 'check', '--executor', executor, '--runs', '50', '--no-failure-db', '--no-explain', ...objects], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 120_000,
      });
    const refused = check('vm', '--objects', `sockops=${obj('unchecked-sockops.c')}`);
    expect(refused.status, refused.stdout + refused.stderr).toBe(2);
    expect(refused.stderr.trim()).toMatch(/^kmesh-check: verifier rejected program 'sockops_prog' in .*unchecked-sockops\.o: .*; the kernel would not load it, so the run stops before it starts$/);
    expect(refused.stdout).not.toContain('executor vm');
    const ours = check('vm', '--objects', `sockops=${defaultObjects().sockops}`);
    expect(ours.status, ours.stdout + ours.stderr).toBe(0);
    expect(ours.stdout).toContain("kernel verifier: loads all 3 object files (each phase's loaded and closed, nothing attached)");
    // The kernel executor met a refused report object only in its phase, after the routing ones (exit 1): now before it starts too.
    const d = defaultObjects();
    const skb = check('kernel', '--report-objects', `connect=${d.connect},sockops=${d.sockops},sendmsg=${d.sendmsg},cgroup_skb=${obj('unchecked-skb.c')}`);
    expect(skb.status, skb.stdout + skb.stderr).toBe(2);
    expect(skb.stderr.trim()).toMatch(/^kmesh-check: verifier rejected program 'cgroup_skb_ingress_prog' in .*unchecked-skb\.o: .*; the kernel would not load it, so the run stops before it starts$/);
  });
});

describe("verifying a run's objects", () => {
  it('pins nothing, though an object declares pinning', () => {
    const pin = '/sys/fs/bpf/kc_pin_probe';
    rmSync(pin, { force: true });
    verifyObjects([[{ what: 'sockops', path: obj('pinned-map.c') }]]);
    expect(existsSync(pin)).toBe(false);
  });
});

describe('a program too complex to verify', () => {
  it('is named with why, not the last line of a log cut mid-state', () => {
    const log = "libbpf: prog 'ma_ops': BPF program load failed: Argument list too long\nlibbpf: prog 'ma_ops': -- BEGIN PROG LOAD LOG --\n1234: R5=scalar(smi";
    const e = loadError({ path: '/x/ma_ops.o' }, -7, log);
    expect(e.code).toBe('verifier');
    expect(e.message).toBe("verifier rejected program 'ma_ops' in /x/ma_ops.o: too complex to verify (E2BIG: the verifier reached its limit of 1,000,000 instructions processed, or of states)");
  });
});

describe('verifier log summary', () => {
  it('keeps the last instructions and the message, drops the statistics', () => {
    const log = [
      "libbpf: prog 'p': BPF program load failed: Permission denied",
      "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --",
      '0: R1=ctx() R10=fp0',
      '0: (61) r2 = *(u32 *)(r1 +0)',
      '1: (63) *(u32 *)(r10 -4) = r2',
      '2: (85) call bpf_map_lookup_elem#1',
      '3: (61) r0 = *(u32 *)(r0 +0)',
      "R0 invalid mem access 'map_value_or_null'",
      'processed 4 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
      '-- END PROG LOAD LOG --',
    ].join('\n');
    expect(summariseVerifierLog(log)).toEqual({
      program: 'p',
      message: "R0 invalid mem access 'map_value_or_null'",
      instructions: ['1: (63) *(u32 *)(r10 -4) = r2', '2: (85) call bpf_map_lookup_elem#1', '3: (61) r0 = *(u32 *)(r0 +0)'],
    });
    expect(summariseVerifierLog('libbpf: something else')).toBeNull();
  });
});

describe('privileges', () => {
  it('names the missing capabilities', () => {
    expect(missingCapabilities(0n)).toEqual(['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_BPF']);
    expect(missingCapabilities((1n << 21n) | (1n << 12n))).toEqual([]);
  });

  // Drops every capability but keeps uid 0, so the checkout stays readable wherever it was cloned.
  it('a process without the capabilities is told to run as root', () => {
    const root = packageRoot();
    const script = `import('${join(root, 'dist/bpf/kernel/executor.js')}').then((m) => m.createKernelExecutor()).then(() => console.log('started'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))`;
    const r = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-all', process.execPath, '-e', script], { encoding: 'utf8', cwd: '/' });
    expect(r.error).toBeUndefined();
    const out = JSON.parse(r.stdout.trim()) as { code: string; message: string };
    expect(out.code).toBe('privileges');
    expect(out.message).toMatch(/needs root \(CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN\): run as root or with sudo/);
  });
});

describe('build checks', () => {
  it('a missing or stale dist/ says to run npm run build:ts', () => {
    const fake = mkdtempSync(join(tmpdir(), 'kmesh-check-root-'));
    try {
      expect(() => workerScript(fake)).toThrow(/dist\/bpf\/kernel\/worker\.js is missing: run npm run build:ts/);
      mkdirSync(join(fake, 'dist/bpf/kernel'), { recursive: true });
      mkdirSync(join(fake, 'bpf/kernel'), { recursive: true });
      writeFileSync(join(fake, 'dist/bpf/kernel/worker.js'), '');
      writeFileSync(join(fake, 'bpf/kernel/worker.ts'), '');
      const old = new Date(Date.now() - 60_000);
      utimesSync(join(fake, 'dist/bpf/kernel/worker.js'), old, old);
      expect(() => workerScript(fake)).toThrow(/dist\/ is older than bpf\/kernel\/worker\.ts: run npm run build:ts/);
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });

  it('the default objects are ours in build/bpf', () => {
    expect(defaultObjects('/x')).toEqual({ connect: '/x/build/bpf/cgroup_sock.o', sockops: '/x/build/bpf/sockops.o', sendmsg: '/x/build/bpf/sendmsg.o' });
  });
});
