// Same-node acceleration (kmesh-dataplane.md section 8) in domain terms: the filter user space
// writes, the connections a case opens in one or two private network namespaces, and what an
// executor observes. No bytes here: bpf/codec/accel.ts encodes these for the maps.

/** A CIDR of the filter: `ip` dotted IPv4; `mask` a host-order netmask u32 (raw masks allowed). */
export interface Cidr {
  readonly ip: string;
  readonly mask: number;
}

/** An inclusive host-order port range; begin > end matches nothing. */
export interface PortRange {
  readonly begin: number;
  readonly end: number;
}

/** sock_param's four lists. An empty list constrains nothing. */
export interface AccelFilter {
  readonly acceptCidrs: readonly Cidr[];
  readonly returnCidrs: readonly Cidr[];
  readonly acceptPorts: readonly PortRange[];
  readonly returnPorts: readonly PortRange[];
  /**
   * The count byte of a full list (10 entries) where a control plane wrote it above 10 (11..255):
   * it reads as 10 (docs/interpretation.md, A2), so the filter is the same. Absent: the length.
   */
  readonly countBytes?: Partial<Record<FilterList, number>>;
}

export type FilterList = 'acceptCidrs' | 'returnCidrs' | 'acceptPorts' | 'returnPorts';
export const FILTER_LISTS: readonly FilterList[] = ['acceptCidrs', 'returnCidrs', 'acceptPorts', 'returnPorts'];

export const EMPTY_FILTER: AccelFilter = { acceptCidrs: [], returnCidrs: [], acceptPorts: [], returnPorts: [] };

/** Network namespace of a connection: 0 or 1, two private namespaces sharing one cgroup. */
export type Netns = 0 | 1;

/**
 * One connection: a client bound to (clientAddr, clientPort) connects to a listener at
 * (serverAddr, serverPort) in namespace `netns`. `outside` names an end whose socket is created
 * outside the cgroup the programs are attached to (not a socket "of the node" for the programs).
 * Family 'mapped': an AF_INET6 client with v4-mapped addresses (::ffff:clientAddr) connects to an
 * AF_INET listener, so the two ends differ in family; addresses are written as IPv4 text.
 */
export interface AccelPair {
  readonly netns: Netns;
  readonly family: 'inet' | 'inet6' | 'mapped';
  readonly clientAddr: string;
  readonly clientPort: number;
  readonly serverAddr: string;
  readonly serverPort: number;
  readonly outside: 'none' | 'client' | 'server';
}

export type End = 'client' | 'server';

export type AccelOp =
  | { readonly op: 'connect'; readonly pair: number }
  /** `from` sends `size` bytes (a pattern unique to the pair, direction and message). */
  | { readonly op: 'send'; readonly pair: number; readonly from: End; readonly size: number }
  /**
   * `end` closes; with `abort` (a pair's first close only) it aborts (SO_LINGER on, timeout 0): a
   * reset instead of a FIN, which takes both ends straight from ESTABLISHED to CLOSE.
   */
  | { readonly op: 'close'; readonly pair: number; readonly end: End; readonly abort?: true }
  /**
   * User space writes a new filter into sock_param_map[0]: connections made after it are held to
   * it; an open one keeps what its connect decided, and its close cleans up as any other.
   */
  | { readonly op: 'refilter'; readonly filter: AccelFilter };

export interface AccelCase {
  /** The filter in sock_param_map[0] when the case starts (refilter operations may change it). */
  readonly filter: AccelFilter;
  readonly pairs: readonly AccelPair[];
  /** Per pair: connect first, sends while both ends are open, then each end's close once; refilters anywhere. */
  readonly ops: readonly AccelOp[];
}

/** A key of sock_ops_map or sock_proxy_map, decoded; netns null when the cookie is no namespace's. */
export interface AccelKey {
  readonly local: string;
  readonly localPort: number;
  readonly remote: string;
  readonly remotePort: number;
  readonly netns: Netns | null;
  /** The cookie (decimal) when it is no namespace's of the case; else '' (netns says which). */
  readonly cookie: string;
}

/** The order observations list keys in (the maps' own order differs between executors). */
export function compareKeys(a: AccelKey, b: AccelKey): number {
  return (
    (a.netns ?? 2) - (b.netns ?? 2) ||
    a.local.localeCompare(b.local) ||
    a.localPort - b.localPort ||
    a.remote.localeCompare(b.remote) ||
    a.remotePort - b.remotePort ||
    a.cookie.localeCompare(b.cookie)
  );
}

/** What one direction of one connection did. */
export interface DirectionObservation {
  /** The bytes the receiver read, hex. */
  readonly received: string;
  /** Of those, how many TCP itself received (tcpi_bytes_received of the receiver). */
  readonly viaTcp: number;
}

export interface AccelObservation {
  /** Per pair: client->server and server->client. */
  readonly pairs: ReadonlyArray<{ readonly toServer: DirectionObservation; readonly toClient: DirectionObservation }>;
  /** Bytes read by a socket from a connection it is not an end of: (socket, hex). */
  readonly stray: ReadonlyArray<{ readonly pair: number; readonly end: End; readonly bytes: string }>;
  /**
   * Sends the data path refused (an sk_msg verdict of SK_DROP fails send() with EACCES), in
   * order: the message of `size` bytes from `from`, `error` the errno name.
   */
  readonly refused: ReadonlyArray<{ readonly pair: number; readonly from: End; readonly size: number; readonly error: string }>;
  /** The maps after every end has closed. */
  readonly sockOpsKeys: readonly AccelKey[];
  readonly proxyEntries: readonly ProxyEntry[];
  /**
   * The maps while the connections are open: before the case's first close, or after its last
   * operation when it closes nothing (the harness closes every end then).
   */
  readonly whileOpen: { readonly sockOpsKeys: readonly AccelKey[]; readonly proxyEntries: readonly ProxyEntry[] };
}

/** A sock_proxy_map entry: a message's key, and the key of the socket it goes to. */
export interface ProxyEntry {
  readonly key: AccelKey;
  readonly peer: AccelKey;
}

/** The payload `from` sends in message `seq` of pair `pair`: distinct per (pair, direction, seq). */
export function messageBytes(pair: number, from: End, seq: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const tag = (pair * 2 + (from === 'client' ? 0 : 1)) & 0xff;
  for (let i = 0; i < size; i++) b[i] = i % 4 === 0 ? tag : (seq * 31 + i) & 0xff;
  return b;
}

export function toHexBytes(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
