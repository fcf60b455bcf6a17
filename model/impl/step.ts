// One operation of a case against the world: every possible outcome. Only a connect can branch
// (the LB draws of its passes); the kernel's part of a connect (route, listener, sockops) is
// predicted from the Environment the executor built.

import { AddressError } from '../address.js';
import { CONTROL_ADDR, ControlPort, localsEnrolledAtStart, netnsEnrolledAtStart, type Case, type Family, type Observation, type Operation, type SockAddr, type SocketId } from '../domain.js';
import { bindProblem, socketAtCreation, enrolledLocalKeys, kernelConnect, manageKey, type Environment } from '../environment.js';
import { runChain } from './chain.js';
import { BOUND_DNS, afterConnect, deliver, recvfrom, sendto, udpSend } from './dns.js';
import { indexMaps } from './maps.js';
import { canonicalDest } from './reach.js';
import { EMPTY_STREAM, sendMessages } from './stream.js';
import type { Branch, Choice, SocketState, World } from './types.js';
import { socketWith, withSocket } from './world.js';

/** Bad input: an operation the model cannot run (what is wrong and what to do). */
export class ModelInputError extends Error {}

/**
 * km_manage ip entries of a namespace that starts enrolled: the keys of env.enrolledLocals, as a
 * TCP control connect from each records them. Executors that start a case enrolled must write the
 * same entries (the kernel harness makes those control connects).
 */
export function enrolledLocalIps(env: Environment): readonly string[] {
  return enrolledLocalKeys(env);
}

export function initialWorld(c: Case, env: Environment): World {
  return {
    maps: c.state,
    netnsEnrolled: netnsEnrolledAtStart(c),
    enrolledIps: localsEnrolledAtStart(c) ? enrolledLocalIps(env) : [],
    sockets: {},
  };
}

function openSocket(world: World, op: Operation & { sock: SocketId }, stepIndex: number): SocketState {
  const s = world.sockets[op.sock];
  if (!s) {
    throw new ModelInputError(`operation ${stepIndex + 1} (${op.op}) uses socket ${op.sock}, which is not open: create it with a 'socket' operation first`);
  }
  return s;
}

function destination(family: Family, dest: SockAddr, stepIndex: number): SockAddr {
  if (!Number.isInteger(dest.port) || dest.port < 0 || dest.port > 0xffff) {
    throw new ModelInputError(`operation ${stepIndex + 1} (connect): port ${dest.port} is not an integer in 0..65535`);
  }
  try {
    return { addr: canonicalDest(family, dest.addr), port: dest.port };
  } catch (e) {
    if (e instanceof AddressError) {
      throw new ModelInputError(`operation ${stepIndex + 1} (connect): ${e.message}; give an address of the socket's family`);
    }
    throw e;
  }
}

function controlAction(family: Family, dest: SockAddr): 'enrol' | 'withdraw' | null {
  if (dest.addr !== CONTROL_ADDR[family]) return null;
  if (dest.port === ControlPort.enrol) return 'enrol';
  if (dest.port === ControlPort.withdraw) return 'withdraw';
  return null;
}

function withIp(ips: readonly string[], ip: string, enrol: boolean): readonly string[] {
  const has = ips.includes(ip);
  if (enrol === has) return ips;
  return enrol ? [...ips, ip].sort() : ips.filter((x) => x !== ip);
}

function connect(world: World, op: Extract<Operation, { op: 'connect' }>, env: Environment, stepIndex: number): Branch[] {
  const sock = openSocket(world, op, stepIndex);
  const dest = destination(sock.family, op.dest, stepIndex);
  if (sock.connected || sock.connecting) {
    // The kernel refuses a connect on a connected or connecting TCP socket before the cgroup hook
    // runs (measured on 6.18: no program run, storage unchanged).
    const observation: Observation = {
      op: 'connect',
      sock: op.sock,
      peer: null,
      error: sock.connected ? 'EISCONN' : 'EALREADY',
      storage: sock.storage,
      inSockhash: sock.inSockhash,
    };
    return [{ world, observation, choices: [], passes: [] }];
  }
  const maps = indexMaps(world.maps);
  const ends = runChain(maps, sock.family, sock.protocol, {
    dest,
    netnsEnrolled: world.netnsEnrolled,
    storage: sock.storage,
  });
  return ends.map((end): Branch => {
    const final = end.state.dest;
    const storage = end.state.storage;
    const k = kernelConnect(env, sock.family, sock.protocol, final, sock.kernel);
    const ok = k.outcome === 'connected';
    let enrolledIps = world.enrolledIps;
    let inSockhash = false;
    if (k.syn) {
      // sockops TCP_CONNECT_CB: the connection's remote end and local address as the kernel has them.
      const action = controlAction(sock.family, k.syn.remote);
      if (action) enrolledIps = withIp(enrolledIps, manageKey(k.syn.local), action === 'enrol');
    }
    const established = ok && sock.protocol === 'tcp';
    // ACTIVE_ESTABLISHED
    if (established && storage?.viaWaypoint && k.local !== null) inSockhash = enrolledIps.includes(manageKey(k.local));
    const after: SocketState = afterConnect(
      socketWith(sock, {
        storage,
        peer: ok ? k.peer : sock.peer,
        connected: sock.connected || established,
        connecting: k.outcome === 'in-progress',
        kernel: k.socket,
        inSockhash: established ? inSockhash : sock.inSockhash,
        stream: established ? EMPTY_STREAM : sock.stream,
        sent: established ? 0 : sock.sent,
      }),
      end.records,
      k.error,
    );
    const next = withSocket(world, { id: op.sock, socket: after, netnsEnrolled: end.state.netnsEnrolled, enrolledIps });
    const observation: Observation = { op: 'connect', sock: op.sock, peer: k.peer, error: k.error, storage, inSockhash: after.inSockhash };
    // A literal, not a spread of the draw (slow in V8, see model/records.ts); the fields in the order reports print them.
    const choices: Choice[] = end.draws.map((d) => ({ step: stepIndex, serviceId: d.serviceId, prio: d.prio, count: d.count, index: d.index, alike: d.alike, pass: d.pass }));
    return { world: next, observation, choices, passes: end.records };
  });
}

function send(world: World, op: Extract<Operation, { op: 'send' }>, env: Environment, stepIndex: number): Branch {
  const sock = openSocket(world, op, stepIndex);
  if (!Number.isInteger(op.messages) || op.messages < 0) {
    throw new ModelInputError(`operation ${stepIndex + 1} (send): messages must be a non-negative integer, got ${op.messages}`);
  }
  if (sock.protocol === 'udp') {
    const after = udpSend(sock, op.sock, op.messages, env);
    const next = after === sock ? world : withSocket(world, { id: op.sock, socket: after });
    return { world: next, observation: { op: 'send', sock: op.sock, storage: sock.storage, stream: null }, choices: [], passes: [] };
  }
  if (!sock.connected || !sock.stream) {
    const observation: Observation = { op: 'send', sock: op.sock, storage: sock.storage, stream: null };
    return { world, observation, choices: [], passes: [] };
  }
  const r = sendMessages(op.sock, sock.family, sock.inSockhash, sock.storage, sock.stream, sock.sent, op.messages);
  const after: SocketState = socketWith(sock, { stream: r.stream, storage: r.storage, sent: r.sent });
  const next = withSocket(world, { id: op.sock, socket: after });
  const observation: Observation = { op: 'send', sock: op.sock, storage: r.storage, stream: r.stream };
  return { world: next, observation, choices: [], passes: [] };
}

/** Every possible outcome of `op` in `world`. `stepIndex` (0-based) labels choices and errors. */
export function step(world: World, op: Operation, env: Environment, stepIndex = 0): Branch[] {
  switch (op.op) {
    case 'socket': {
      if (world.sockets[op.sock]) {
        throw new ModelInputError(`operation ${stepIndex + 1} (socket): socket ${op.sock} is already open; close it first or use another id`);
      }
      const bound = op.bindTo !== undefined;
      if (bound) {
        const wrong = bindProblem(env, op.family, op.protocol, op.bindTo);
        if (wrong !== null) throw new ModelInputError(`operation ${stepIndex + 1} (socket): ${wrong}`);
      }
      const fresh: SocketState = {
        family: op.family,
        protocol: op.protocol,
        peer: null,
        connected: false,
        connecting: false,
        kernel: socketAtCreation(op),
        storage: null,
        inSockhash: false,
        sent: 0,
        stream: null,
        // Present though undefined: socketWith always writes it, and a socket keeps one shape.
        dns: bound ? BOUND_DNS : undefined,
      };
      const next = withSocket(world, { id: op.sock, socket: fresh });
      return [{ world: next, observation: { op: 'socket', sock: op.sock }, choices: [], passes: [] }];
    }
    case 'connect':
      return connect(world, op, env, stepIndex);
    case 'send':
      return [send(world, op, env, stepIndex)];
    case 'sendto':
      return [sendto(world, openSocket(world, op, stepIndex), op, env, stepIndex, (m) => new ModelInputError(m))];
    case 'recvfrom': {
      const sock = openSocket(world, op, stepIndex);
      if (sock.protocol !== 'udp') throw new ModelInputError(`operation ${stepIndex + 1} (recvfrom): socket ${op.sock} is TCP; recvfrom needs a UDP socket`);
      return [recvfrom(world, sock, op.sock)];
    }
    case 'deliver':
      return [deliver(world, openSocket(world, op, stepIndex), op, stepIndex, env, (m) => new ModelInputError(m))];
    case 'close': {
      openSocket(world, op, stepIndex);
      const next = withSocket(world, { id: op.sock, socket: undefined });
      return [{ world: next, observation: { op: 'close', sock: op.sock }, choices: [], passes: [] }];
    }
    case 'apply': {
      const next: World = { maps: op.state, netnsEnrolled: world.netnsEnrolled, enrolledIps: world.enrolledIps, sockets: world.sockets };
      return [{ world: next, observation: { op: 'apply', sock: null }, choices: [], passes: [] }];
    }
    default: {
      const never: never = op;
      throw new ModelInputError(`unknown operation ${JSON.stringify(never)}: expected socket, connect, send, sendto, recvfrom, deliver, close or apply`);
    }
  }
}
