// The normative rules of same-node acceleration (section 8) as named invariants over a case and
// one observation (the model's or an executor's). Each says what must hold in one sentence; the
// docs print the statements.

import { Checker, type Verdict } from '../spec/types.js';
import { compareKeys, type AccelCase, type AccelKey, type AccelObservation } from './domain.js';
import { accelerationOf, sentStream, sockKey } from './model.js';

export interface AccelInvariant {
  readonly name: string;
  readonly statement: string;
  check(c: AccelCase, o: AccelObservation): Verdict;
}

const DIRS = [
  ['toServer', 'client', 'server'],
  ['toClient', 'server', 'client'],
] as const;

export const redirectTransparent: AccelInvariant = {
  name: 'redirect-transparent',
  statement: 'Each end of a connection reads exactly the bytes the other end sent, in order and once, whether or not the connection is accelerated.',
  check(c, o) {
    const k = new Checker();
    // A refused send is the first thing wrong with what its receiver read.
    const r = o.refused[0];
    if (r) {
      k.exercise();
      k.expect(
        false,
        () =>
          `pair ${r.pair}: the ${r.from}'s send of ${r.size} bytes failed (${r.error})${o.refused.length > 1 ? ` (and ${o.refused.length - 1} more sends)` : ''}: every byte sent must reach the other end`,
        () => 'a send refused',
      );
    }
    c.pairs.forEach((_, i) => {
      for (const [dir, from, to] of DIRS) {
        const want = sentStream(c, i, from);
        const got = o.pairs[i]?.[dir].received ?? '';
        if (want.length) k.exercise();
        k.expect(
          got === want,
          () => `pair ${i}: the ${to} read ${got.length / 2} bytes ${short(got)} but the ${from} sent ${want.length / 2} bytes ${short(want)}`,
          () => `${got.length < want.length ? 'too few' : got.length > want.length ? 'too many' : 'other'} bytes read`,
        );
      }
    });
    return k.verdict();
  },
};

export const redirectIsolation: AccelInvariant = {
  name: 'redirect-isolation',
  statement: 'No socket ever reads a byte of a connection it is not an end of, in particular not a socket in another network namespace with the same four-tuple.',
  check(c, o) {
    const k = new Checker();
    if (c.ops.some((op) => op.op === 'send')) k.exercise();
    const s = o.stray[0];
    if (s) {
      const p = c.pairs[s.pair];
      k.expect(
        false,
        () =>
          `the ${s.end} of pair ${s.pair} (netns ${p?.netns ?? '?'}) read ${s.bytes.length / 2} bytes it was not sent: ${short(s.bytes)}${o.stray.length > 1 ? ` (and ${o.stray.length - 1} more such reads)` : ''}`,
        () => "another connection's bytes read",
      );
    }
    return k.verdict();
  },
};

export const redirectFilter: AccelInvariant = {
  name: 'redirect-filter',
  statement:
    "A connection is accelerated (its bytes bypass TCP: the receiver's tcpi_bytes_received stays 0) exactly when both ends are IPv4 TCP sockets of the node and the filter admits it; otherwise TCP carries every byte.",
  check(c, o) {
    const k = new Checker();
    c.pairs.forEach((p, i) => {
      const { accelerated, reason } = accelerationOf(c, p);
      for (const [dir, from, to] of DIRS) {
        const d = o.pairs[i]?.[dir];
        const n = sentStream(c, i, from).length / 2;
        if (!d || n === 0 || d.received.length / 2 !== n) continue;
        k.exercise();
        const viaTcp = Math.min(d.viaTcp, n);
        const want = accelerated ? 0 : n;
        k.expect(
          viaTcp === want,
          () =>
            accelerated
              ? `pair ${i} (${reason}): TCP carried ${viaTcp} of the ${n} bytes to the ${to}, but the filter admits the connection, so it must be redirected`
              : `pair ${i} (${reason}): only ${viaTcp} of the ${n} bytes to the ${to} went through TCP, but the connection must not be accelerated`,
          () => `${filterShape(c, i)}: ${accelerated ? 'not redirected' : 'redirected'}`,
        );
      }
    });
    return k.verdict();
  },
};

/** A key as read: its namespace by the case's number for it, or its cookie when that is no namespace's of the case. */
function keyText(k: AccelKey): string {
  return `${k.local}:${k.localPort} -> ${k.remote}:${k.remotePort} ${k.netns !== null ? `in netns ${k.netns}` : `with netns cookie ${k.cookie} (no namespace of the case has it)`}`;
}

export const redirectCleanup: AccelInvariant = {
  name: 'redirect-cleanup',
  statement: 'After both ends of every connection have closed, neither sock_ops_map nor sock_proxy_map holds a key of any of them.',
  check(c, o) {
    const k = new Checker();
    if (c.pairs.length) k.exercise();
    // The first key in one order, whichever order an executor's map gave them in: the same case names the same key.
    const ops = [...o.sockOpsKeys].sort(compareKeys)[0];
    const left = (key: AccelKey) => {
      const near = nearestSocket(c, key);
      return `a key after ${near && c.ops.some((op) => op.op === 'close' && op.pair === near.pair && op.abort) ? 'a reset' : 'FINs'}`;
    };
    k.expect(
      !ops,
      () => `sock_ops_map still holds ${keyText(ops!)} after every end closed`,
      () => `sock_ops_map keeps ${left(ops!)}`,
    );
    const px = [...o.proxyEntries].sort((a, b) => compareKeys(a.key, b.key))[0];
    k.expect(
      !px,
      () => `sock_proxy_map still holds ${keyText(px!.key)} (peer ${keyText(px!.peer)}) after every end closed`,
      () => `sock_proxy_map keeps ${left(px!.key)}`,
    );
    return k.verdict();
  },
};

type SocketRole = 'client' | 'server' | 'listener';

/**
 * The sockets of a case with the key each may have: an IPv4 end of a connection its own key
 * exactly (as keyText spells it), with its other end's as its peer; an IPv4 listener its own
 * (remote 0.0.0.0:0, no peer); the sockets with no IPv4 addresses of their own (AF_INET6 ends,
 * v4-mapped clients, AF_INET6 listeners) by their ports and namespace only (`loose`), whatever
 * their address fields hold (a v4-mapped client exactly too: the server's entry names it).
 */
function caseSockets(c: AccelCase): Array<{ pair: number; role: SocketRole; key: AccelKey; peer: AccelKey | null; exact: boolean; loose: boolean }> {
  return c.pairs.flatMap((p, pair) => {
    const client = sockKey(p.netns, p.clientAddr, p.clientPort, p.serverAddr, p.serverPort);
    const server = sockKey(p.netns, p.serverAddr, p.serverPort, p.clientAddr, p.clientPort);
    const exact = p.family !== 'inet6';
    return [
      { pair, role: 'client' as const, key: client, peer: server, exact, loose: p.family !== 'inet' },
      { pair, role: 'server' as const, key: server, peer: client, exact, loose: !exact },
      { pair, role: 'listener' as const, key: sockKey(p.netns, p.serverAddr, p.serverPort, '0.0.0.0', 0), peer: null, exact, loose: !exact },
    ];
  });
}

/** The keys of caseSockets: exact ones with their peer's key, loose ones by ports and namespace. */
function socketKeys(c: AccelCase): { exact: Map<string, string | null>; loose: Set<string> } {
  const exact = new Map<string, string | null>();
  const loose = new Set<string>();
  for (const x of caseSockets(c)) {
    if (x.exact) exact.set(keyText(x.key), x.peer ? keyText(x.peer) : null);
    if (x.loose) loose.add(portsText(x.key));
  }
  return { exact, loose };
}

/** A key by its ports and namespace alone. */
function portsText(k: AccelKey): string {
  return `${k.localPort}:${k.remotePort}@${k.netns}`;
}

/** Whether `k` is one of `keys`: exactly, or by its ports and namespace where only those are known. */
function isSocketKey(keys: ReturnType<typeof socketKeys>, k: AccelKey): boolean {
  return keys.exact.has(keyText(k)) || (k.netns !== null && keys.loose.has(portsText(k)));
}

export const redirectKeys: AccelInvariant = {
  name: 'redirect-keys',
  statement:
    "While connections are open, every key in sock_ops_map and sock_proxy_map is the own key of a socket of the case in the sock_key layout (its local then remote IPv4 address and port, in network order, and its namespace's cookie), and each sock_proxy_map entry of an IPv4 end maps its key to the other end's.",
  check(c, o) {
    const k = new Checker();
    const keys = socketKeys(c);
    const layout = "a key is the socket's local then remote address and port, in network order, and its namespace's cookie";
    for (const key of o.whileOpen.sockOpsKeys) {
      k.exercise();
      k.expect(
        isSocketKey(keys, key),
        () => `while connections are open, sock_ops_map holds ${keyText(key)}, the key of no socket of the case (${layout})`,
        () => `sock_ops_map holds ${keyShape(nearestSocket(c, key))}`,
      );
    }
    for (const { key, peer } of o.whileOpen.proxyEntries) {
      k.exercise();
      const text = keyText(key);
      const want = keys.exact.get(text);
      if (!isSocketKey(keys, key))
        k.expect(
          false,
          () => `while connections are open, sock_proxy_map holds ${text}, the key of no socket of the case (${layout})`,
          () => `sock_proxy_map holds ${keyShape(nearestSocket(c, key))}`,
        );
      else if (want)
        k.expect(
          keyText(peer) === want,
          () => `while connections are open, sock_proxy_map maps ${text} to ${keyText(peer)}, not to the other end's key ${want}`,
          () => `sock_proxy_map maps ${keyShape(nearestSocket(c, key))} to ${keyShape(nearestSocket(c, peer))}`,
        );
    }
    return k.verdict();
  },
};

/**
 * Shapes name the rule a violation broke and no more (not the pair's family or end): every such
 * context a bug shows in multiplies the shapes a sample must hit for a baseline of one run to
 * know the bug in the next. The filter invariant's rules: the filter's decision (admitted, or
 * rejected whichever list did it: one bug in the lists' reading rejects by either), a pair that
 * is not IPv4 (by its family), an end outside the cgroup.
 */
function filterShape(c: AccelCase, i: number): string {
  const p = c.pairs[i];
  if (!p) return 'no pair';
  const { reason } = accelerationOf(c, p);
  if (reason === 'not-ipv4') return `${p.family === 'mapped' ? 'v4-mapped' : 'IPv6'} pair`;
  return reason === 'admitted' || reason === 'client-outside' || reason === 'server-outside' ? reason : 'rejected by the filter';
}

const KEY_FIELDS = ['local address', 'local port', 'remote address', 'remote port', 'namespace'] as const;

/**
 * The socket of the case whose own key `key` is closest to (most fields equal; for a socket known
 * by its ports, those and its namespace only), with the fields that differ; null for a case
 * without pairs. The first of equals in pair order, client before server and listener.
 */
function nearestSocket(c: AccelCase, key: AccelKey): { pair: number; role: SocketRole; differ: string[]; loose: boolean } | null {
  let best: { pair: number; role: SocketRole; differ: string[]; loose: boolean } | null = null;
  for (const { pair, role, key: own, loose } of caseSockets(c)) {
    const equal = [key.local === own.local || loose, key.localPort === own.localPort, key.remote === own.remote || loose, key.remotePort === own.remotePort, key.netns === own.netns];
    const differ = KEY_FIELDS.filter((_, f) => !equal[f]);
    // On a tie a socket known by its whole key wins over one known by its ports: an IPv4 key is an AF_INET socket's.
    if (!best || differ.length < best.differ.length || (differ.length === best.differ.length && best.loose && !loose)) best = { pair, role, differ, loose };
  }
  return best;
}

/** "a server's key but for its namespace": which socket's key, and what is wrong in it. */
function keyShape(near: ReturnType<typeof nearestSocket>): string {
  if (!near) return 'a key of no socket';
  return `a ${near.role}'s key${near.differ.length ? ` but for its ${near.differ.join(' and ')}` : ''}`;
}

export const accelInvariants: readonly AccelInvariant[] = [redirectTransparent, redirectIsolation, redirectFilter, redirectKeys, redirectCleanup];

function short(hex: string): string {
  return hex.length > 32 ? `${hex.slice(0, 32)}...` : hex || '(none)';
}

/** Every invariant's verdict on one observation. */
export function judgeAccel(c: AccelCase, o: AccelObservation): Array<{ name: string; verdict: Verdict }> {
  return accelInvariants.map((inv) => ({ name: inv.name, verdict: inv.check(c, o) }));
}
