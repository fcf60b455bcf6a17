// One acceleration case runner (section 8) for both executors: it plays a case's operations on a
// socket layer (real sockets in private namespaces, or the VM's emulated TCP) and builds the
// observation the same way for both: what each end read, how much of it TCP carried (taken at the
// pair's first close), bytes any other socket read (swept after every send and before every close),
// and the two maps while the connections are open (before the first close) and after every end
// has closed (then emptied for the next case).

import type { AccelCase, AccelFilter, AccelKey, AccelObservation, AccelPair, DirectionObservation, End, Netns } from '../../model/accel/domain.js';
import { compareKeys, messageBytes, toHexBytes } from '../../model/accel/domain.js';
import { decodeSockKey } from '../codec/accel.js';
import { KmeshCheckError } from '../../shared/errors.js';

/** What a case needs from the sockets of one executor; `S` is its handle of a socket. */
export interface AccelSocketLayer<S> {
  /** Starts a case: no namespaces, listeners or sockets of an earlier one. */
  begin(): void;
  /** Writes the filter into sock_param_map[0] (at the case's start, and at a refilter). */
  setFilter(f: AccelFilter): void;
  /** Connects the pair's client to its listener (made on first use) and accepts; both ends established. */
  connect(pair: AccelPair): { client: S; server: S };
  /**
   * Sends all of `bytes`: null, or the errno name of a send the data path refused (an sk_msg
   * verdict: EACCES). Any other failure is the harness's, thrown.
   */
  send(s: S, bytes: Uint8Array): string | null;
  /** Reads up to `want` bytes, waiting a bounded time for them; want 0: what is there now, no wait. */
  read(s: S, want: number): Uint8Array;
  /** tcpi_bytes_received of the socket. */
  tcpReceived(s: S): number;
  /**
   * Closes `s`; given `resetPeer`, `s` aborts (a reset) and the call returns once the reset has
   * taken the peer to CLOSE.
   */
  close(s: S, resetPeer?: S): void;
  /** Closes listeners and namespaces (sockets are closed by then). */
  release(): void;
  /**
   * The two maps' entries, and the namespace a cookie belongs to (null: none of the case's); with
   * `empty`, the maps are emptied after.
   */
  readMaps(empty: boolean): MapsRead;
}

export interface MapsRead {
  readonly opsKeys: Uint8Array[];
  readonly proxy: Array<{ key: Uint8Array; value: Uint8Array }>;
  readonly netnsOf: (cookie: bigint) => Netns | null;
}

/** The maps' entries decoded. */
function decodeMaps(maps: MapsRead): AccelObservation['whileOpen'] {
  const key = (b: Uint8Array): AccelKey => {
    const k = decodeSockKey(b);
    const netns = maps.netnsOf(k.cookie);
    return { local: k.local, localPort: k.localPort, remote: k.remote, remotePort: k.remotePort, netns, cookie: netns === null ? k.cookie.toString() : '' };
  };
  return {
    sockOpsKeys: maps.opsKeys.map(key).sort(compareKeys),
    proxyEntries: maps.proxy.map((x) => ({ key: key(x.key), peer: key(x.value) })).sort((a, b) => compareKeys(a.key, b.key)),
  };
}

interface Ends<S> {
  readonly sock: { client: S; server: S };
  readonly open: { client: boolean; server: boolean };
  /** tcpi_bytes_received of each end, taken before the pair's first close. */
  viaTcp: { client: number; server: number } | null;
  readonly received: { client: Uint8Array[]; server: Uint8Array[] };
  readonly sent: { client: number; server: number };
}

const ENDS = ['client', 'server'] as const;

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Runs one case on `layer`; the layer's sockets are all closed afterwards, also when it throws. */
export function runAccelCase<S>(layer: AccelSocketLayer<S>, c: AccelCase): AccelObservation {
  layer.begin();
  layer.setFilter(c.filter);
  const ends: Array<Ends<S> | null> = c.pairs.map(() => null);
  const stray: Array<{ pair: number; end: End; bytes: string }> = [];
  const refused: Array<{ pair: number; from: End; size: number; error: string }> = [];
  const tcpOf = (e: Ends<S>) => ({ client: layer.tcpReceived(e.sock.client), server: layer.tcpReceived(e.sock.server) });
  // Every open socket but `except` is read: what it holds now was not sent to it.
  const sweep = (except: S | null) => {
    ends.forEach((e, p) => {
      if (!e) return;
      for (const end of ENDS) {
        if (!e.open[end] || e.sock[end] === except) continue;
        const got = layer.read(e.sock[end], 0);
        if (got.length) stray.push({ pair: p, end, bytes: toHexBytes(got) });
      }
    });
  };
  let whileOpen: AccelObservation['whileOpen'] | null = null;
  try {
    for (const op of c.ops) {
      if (op.op === 'refilter') {
        layer.setFilter(op.filter);
        continue;
      }
      const pair = c.pairs[op.pair];
      if (!pair) throw new KmeshCheckError('codec', `operation on pair ${op.pair}, but the case has ${c.pairs.length} pairs`);
      if (op.op === 'connect') {
        if (ends[op.pair]) throw new KmeshCheckError('codec', `pair ${op.pair} connects twice`);
        const sock = layer.connect(pair);
        ends[op.pair] = { sock, open: { client: true, server: true }, viaTcp: null, received: { client: [], server: [] }, sent: { client: 0, server: 0 } };
        continue;
      }
      const e = ends[op.pair];
      if (!e) throw new KmeshCheckError('codec', `pair ${op.pair} is used before its connect`);
      if (op.op === 'send') {
        const to: End = op.from === 'client' ? 'server' : 'client';
        if (!e.open[op.from] || !e.open[to]) throw new KmeshCheckError('codec', `pair ${op.pair}: a send needs both ends open`);
        const msg = messageBytes(op.pair, op.from, e.sent[op.from]++, op.size);
        const error = layer.send(e.sock[op.from], msg);
        // A refused message is not waited for: what arrives anyway is read with the next one, or by the sweeps.
        if (error !== null) refused.push({ pair: op.pair, from: op.from, size: op.size, error });
        e.received[to].push(layer.read(e.sock[to], error === null ? msg.length : 0));
        sweep(e.sock[to]);
      } else {
        if (!e.open[op.end]) throw new KmeshCheckError('codec', `pair ${op.pair}: the ${op.end} closes twice`);
        whileOpen ??= decodeMaps(layer.readMaps(false));
        e.viaTcp ??= tcpOf(e);
        sweep(null);
        const peer: End = op.end === 'client' ? 'server' : 'client';
        if (op.abort && !e.open[peer]) throw new KmeshCheckError('codec', `pair ${op.pair}: the ${op.end} aborts after its peer closed (an abort is a pair's first close)`);
        layer.close(e.sock[op.end], op.abort ? e.sock[peer] : undefined);
        e.open[op.end] = false;
      }
    }
    sweep(null);
    whileOpen ??= decodeMaps(layer.readMaps(false));
    for (const e of ends) if (e) e.viaTcp ??= tcpOf(e);
  } finally {
    for (const e of ends) {
      if (!e) continue;
      for (const end of ENDS) {
        if (e.open[end]) layer.close(e.sock[end]);
        e.open[end] = false;
      }
    }
    layer.release();
  }
  const closed = decodeMaps(layer.readMaps(true));
  const direction = (e: Ends<S>, to: End): DirectionObservation => ({ received: toHexBytes(concat(e.received[to])), viaTcp: e.viaTcp?.[to] ?? 0 });
  return {
    pairs: ends.map((e) => (e ? { toServer: direction(e, 'server'), toClient: direction(e, 'client') } : { toServer: { received: '', viaTcp: 0 }, toClient: { received: '', viaTcp: 0 } })),
    stray,
    refused,
    ...closed,
    whileOpen: whileOpen ?? { sockOpsKeys: [], proxyEntries: [] },
  };
}
