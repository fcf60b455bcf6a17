// The case runner's one observation sink, as bytes: every executor writes what its socket layer
// read (errno numbers, raw socket addresses, raw sk_storage values) and decodeObservations turns
// them into Observation objects, so there is one way an Observation is made. The bytes also
// cross the kernel worker's pipe cheaply: building and JSON-encoding objects in the worker was a
// large part of its time per case.

import { formatIPv4, formatIPv6 } from '../../model/address.js';
import type { Family, Observation, SockAddr, SocketId, StreamView } from '../../model/domain.js';
import { STRUCTS } from '../codec/abi.js';
import { GrowingBytes } from '../codec/growing-bytes.js';
import { storageView } from '../codec/structs.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { errnoName } from './errno.js';

const AF_INET = 2;
const AF_INET6 = 10;

const END = 0;
const SOCKET = 1;
const CONNECT = 2;
const SEND = 3;
const CLOSE = 4;
const APPLY = 5;
/** An Observation carried as JSON (the datagram operations of section 6: rare, structured). */
const JSON_OBS = 6;
const STORAGE_SIZE = STRUCTS.sock_storage_data.size;
/** One encoder and decoder for the JSON records (each made anew cost more than its few bytes). */
const UTF8_OUT = new TextEncoder();
const UTF8_IN = new TextDecoder();

/** Appends records to a growing buffer; `take` hands the bytes over and starts again. */
export class ObsWriter extends GrowingBytes {
  /** Stream views of sends (rare, structured): carried as JSON next to the bytes. */
  streams: StreamView[] = [];

  constructor() {
    super(256 * 1024);
  }

  private head(kind: number, sock: SocketId): void {
    this.room(9);
    this.buf[this.at] = kind;
    this.view.setFloat64(this.at + 1, sock, true);
    this.at += 9;
  }

  socket(sock: SocketId): void {
    this.head(SOCKET, sock);
  }

  close(sock: SocketId): void {
    this.head(CLOSE, sock);
  }

  apply(): void {
    this.room(1);
    this.buf[this.at++] = APPLY;
  }

  endCase(): void {
    this.room(1);
    this.buf[this.at++] = END;
  }

  /**
   * `error` is the connect's errno or -1; `peer` the sockaddr the kernel wrote, or null; storage
   * the raw sock_storage_data, or null when the socket has none.
   */
  connect(sock: SocketId, error: number, peer: Uint8Array | null, storage: Uint8Array | null, family: Family, inSockhash: boolean): void {
    this.head(CONNECT, sock);
    this.room(4 + 1 + 18 + 1 + STORAGE_SIZE + 1);
    const b = this.buf;
    this.view.setInt32(this.at, error, true);
    this.at += 4;
    this.peer(peer);
    this.storage(storage, family);
    b[this.at++] = inSockhash ? 1 : 0;
  }

  send(sock: SocketId, stream: StreamView | null, storage: Uint8Array | null, family: Family): void {
    this.head(SEND, sock);
    this.room(4 + 1 + STORAGE_SIZE);
    this.view.setInt32(this.at, stream ? this.streams.push(stream) - 1 : -1, true);
    this.at += 4;
    this.storage(storage, family);
  }

  /** Any observation, as UTF-8 JSON behind its length. */
  json(o: Observation): void {
    const bytes = UTF8_OUT.encode(JSON.stringify(o));
    this.room(5 + bytes.length);
    this.buf[this.at++] = JSON_OBS;
    this.view.setUint32(this.at, bytes.length, true);
    this.at += 4;
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
  }

  private peer(sa: Uint8Array | null): void {
    const b = this.buf;
    if (sa === null) {
      b[this.at++] = 0;
      return;
    }
    const fam = (sa[0] ?? 0) | ((sa[1] ?? 0) << 8);
    if (fam === AF_INET) {
      b[this.at++] = 4;
      b.set(sa.subarray(4, 8), this.at);
      this.at += 4;
    } else if (fam === AF_INET6) {
      b[this.at++] = 6;
      b.set(sa.subarray(8, 24), this.at);
      this.at += 16;
    } else {
      throw new KmeshCheckError('worker', `unexpected socket address family ${fam}`);
    }
    b[this.at++] = sa[2] ?? 0;
    b[this.at++] = sa[3] ?? 0;
  }

  private storage(s: Uint8Array | null, family: Family): void {
    if (s === null) {
      this.buf[this.at++] = 0;
      return;
    }
    this.buf[this.at++] = family === 'inet' ? 4 : 6;
    this.buf.set(s.subarray(0, STORAGE_SIZE), this.at);
    this.at += STORAGE_SIZE;
  }

  /** The bytes written since the last take (a copy), and the stream views; then starts over. */
  take(): { bytes: Uint8Array; streams: StreamView[] } {
    const bytes = this.buf.slice(0, this.at);
    const streams = this.streams;
    this.at = 0;
    this.streams = [];
    return { bytes, streams };
  }

  /** Records written elsewhere in this format (by the shim's kf_run). */
  append(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
  }

  /** What was written since the last take, as a string: a key for the observations so far. */
  key(): string {
    let s = '';
    for (let i = 0; i < this.at; i++) s += (this.buf[i]! < 16 ? '0' : '') + this.buf[i]!.toString(16);
    return this.streams.length === 0 ? s : `${s}|${JSON.stringify(this.streams)}`;
  }

  /** Forgets everything written since the last take. */
  clear(): void {
    this.at = 0;
    this.streams = [];
  }

  /** Forgets what the current, unfinished case wrote (it failed). */
  rewindTo(mark: number): void {
    this.at = mark;
  }

  get mark(): number {
    return this.at;
  }
}

/** The Observation lists of consecutive cases, as ObsWriter wrote them. */
export function decodeObservations(bytes: Uint8Array, streams: readonly StreamView[]): Observation[][] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Observation[][] = [];
  let cur: Observation[] = [];
  let at = 0;
  const sockAt = (): SocketId => {
    const s = view.getFloat64(at + 1, true);
    at += 9;
    return s;
  };
  const storage = (): Observation['storage'] => {
    const f = bytes[at++];
    if (f === 0) return null;
    const s = storageView(bytes.subarray(at, at + STORAGE_SIZE), f === 4 ? 'inet' : 'inet6');
    at += STORAGE_SIZE;
    return s;
  };
  while (at < bytes.length) {
    const kind = bytes[at];
    switch (kind) {
      case END:
        out.push(cur);
        cur = [];
        at++;
        break;
      case SOCKET:
        cur.push({ op: 'socket', sock: sockAt() });
        break;
      case CLOSE:
        cur.push({ op: 'close', sock: sockAt() });
        break;
      case APPLY:
        cur.push({ op: 'apply', sock: null });
        at++;
        break;
      case CONNECT: {
        const sock = sockAt();
        const err = view.getInt32(at, true);
        at += 4;
        const f = bytes[at++];
        let peer: SockAddr | null = null;
        if (f !== 0) {
          const addr = f === 4 ? formatIPv4(bytes, at) : formatIPv6(bytes, at);
          at += f === 4 ? 4 : 16;
          peer = { addr, port: ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0) };
          at += 2;
        }
        const error = err < 0 ? null : errnoName(err);
        const st = storage();
        const inSockhash = bytes[at++] === 1;
        cur.push({ op: 'connect', sock, peer, error, storage: st, inSockhash });
        break;
      }
      case SEND: {
        const sock = sockAt();
        const si = view.getInt32(at, true);
        at += 4;
        const stream = si < 0 ? null : (streams[si] ?? null);
        cur.push({ op: 'send', sock, stream, storage: storage() });
        break;
      }
      case JSON_OBS: {
        const n = view.getUint32(at + 1, true);
        cur.push(JSON.parse(UTF8_IN.decode(bytes.subarray(at + 5, at + 5 + n))) as Observation);
        at += 5 + n;
        break;
      }
      default:
        throw new KmeshCheckError('worker', `corrupt observation record ${kind} at byte ${at} of a worker reply`);
    }
  }
  return out;
}
