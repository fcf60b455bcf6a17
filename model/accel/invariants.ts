// The normative rules of same-node acceleration (section 8) as named invariants over a case and
// one observation (the model's or an executor's). Each says what must hold in one sentence; the
// docs print the statements.

import { Checker, type Verdict } from '../spec/types.js';
import type { AccelCase, AccelKey, AccelObservation } from './domain.js';
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
      );
    }
    c.pairs.forEach((_, i) => {
      for (const [dir, from, to] of DIRS) {
        const want = sentStream(c, i, from);
        const got = o.pairs[i]?.[dir].received ?? '';
        if (want.length) k.exercise();
        k.expect(got === want, () => `pair ${i}: the ${to} read ${got.length / 2} bytes ${short(got)} but the ${from} sent ${want.length / 2} bytes ${short(want)}`);
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
        k.expect(viaTcp === want, () =>
          accelerated
            ? `pair ${i} (${reason}): TCP carried ${viaTcp} of the ${n} bytes to the ${to}, but the filter admits the connection, so it must be redirected`
            : `pair ${i} (${reason}): only ${viaTcp} of the ${n} bytes to the ${to} went through TCP, but the connection must not be accelerated`,
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
    const ops = o.sockOpsKeys[0];
    k.expect(!ops, () => `sock_ops_map still holds ${keyText(ops!)} after every end closed`);
    const px = o.proxyEntries[0];
    k.expect(!px, () => `sock_proxy_map still holds ${keyText(px!.key)} (peer ${keyText(px!.peer)}) after every end closed`);
    return k.verdict();
  },
};

/**
 * The keys the sockets of a case may have: each IPv4 end of a connection with its other end's key
 * (exact, as keyText spells it), each IPv4 listener (remote 0.0.0.0:0, no peer); and for the
 * sockets with no IPv4 addresses of their own (AF_INET6 ends, v4-mapped clients, AF_INET6
 * listeners) only their ports and namespace, whatever their address fields hold.
 */
function socketKeys(c: AccelCase): { exact: Map<string, string | null>; loose: Set<string> } {
  const exact = new Map<string, string | null>();
  const loose = new Set<string>();
  for (const p of c.pairs) {
    const client = sockKey(p.netns, p.clientAddr, p.clientPort, p.serverAddr, p.serverPort);
    const server = sockKey(p.netns, p.serverAddr, p.serverPort, p.clientAddr, p.clientPort);
    const listener = sockKey(p.netns, p.serverAddr, p.serverPort, '0.0.0.0', 0);
    if (p.family === 'inet6') loose.add(portsText(listener)).add(portsText(server));
    else exact.set(keyText(listener), null);
    // Ends of the connection by their own key; a v4-mapped client's fields, whatever they hold, by its ports too.
    if (p.family !== 'inet6') exact.set(keyText(server), keyText(client)).set(keyText(client), keyText(server));
    if (p.family !== 'inet') loose.add(portsText(client));
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
      k.expect(isSocketKey(keys, key), () => `while connections are open, sock_ops_map holds ${keyText(key)}, the key of no socket of the case (${layout})`);
    }
    for (const { key, peer } of o.whileOpen.proxyEntries) {
      k.exercise();
      const text = keyText(key);
      const want = keys.exact.get(text);
      if (!isSocketKey(keys, key)) k.expect(false, () => `while connections are open, sock_proxy_map holds ${text}, the key of no socket of the case (${layout})`);
      else if (want) k.expect(keyText(peer) === want, () => `while connections are open, sock_proxy_map maps ${text} to ${keyText(peer)}, not to the other end's key ${want}`);
    }
    return k.verdict();
  },
};

export const accelInvariants: readonly AccelInvariant[] = [redirectTransparent, redirectIsolation, redirectFilter, redirectKeys, redirectCleanup];

function short(hex: string): string {
  return hex.length > 32 ? `${hex.slice(0, 32)}...` : hex || '(none)';
}

/** Every invariant's verdict on one observation. */
export function judgeAccel(c: AccelCase, o: AccelObservation): Array<{ name: string; verdict: Verdict }> {
  return accelInvariants.map((inv) => ({ name: inv.name, verdict: inv.check(c, o) }));
}
