// Helpers the generator and control-plane suites share: the seed they sample with and checks
// on the states and operation lists the generators build.

import { EMPTY_STATE, type MapState, type Operation, type Service } from '../../model/domain.js';
import { applyControlOps, type ControlOp } from '../../generators/index.js';

export const SEED = 20240611;

export function build(ops: readonly ControlOp[]): MapState {
  return applyControlOps(EMPTY_STATE, ops);
}

/** Socket ops refer only to open sockets; at most three at once. */
export function opsValid(ops: readonly Operation[]): boolean {
  const open = new Set<number>();
  for (const op of ops) {
    if (op.op === 'apply') continue;
    if (op.op === 'socket') {
      if (open.has(op.sock) || open.size >= 3) return false;
      open.add(op.sock);
    } else if (!open.has(op.sock)) {
      return false;
    } else if (op.op === 'close') {
      open.delete(op.sock);
    }
  }
  return true;
}

export function uniqueKeys(s: MapState): boolean {
  const distinct = <T>(xs: readonly T[], k: (x: T) => string) => new Set(xs.map(k)).size === xs.length;
  return (
    distinct(s.frontends, (f) => f.addr) &&
    distinct(s.services, (v) => String(v.id)) &&
    distinct(s.backends, (b) => String(b.uid)) &&
    distinct(s.endpoints, (e) => `${e.serviceId}/${e.prio}/${e.index}`)
  );
}

export function serviceOf(s: MapState, id: number): Service {
  const v = s.services.find((x) => x.id === id);
  if (!v) throw new Error(`no service ${id}`);
  return v;
}
