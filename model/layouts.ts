// Object layouts settled once, before any case. V8 stores a number field of an object shape as a
// small integer until some object of that shape gets a number beyond 31 bits (u32 ids, counts,
// policies: 0xfffffffe, 0xffffffff); it then moves the shape to a boxed-number layout and throws
// away the code compiled for the old one. Left to the cases, that happens in every process during
// its first cases, for each shape and field, each time followed by compiling the code again. One
// object of each such shape, made at load with such a number, sets the layout a run reaches anyway
// (the values and the JSON are the same either way): a 5,500-case run deoptimises a third less.
// Field order is the literals' own (model/records.ts): the same fields in another order are another shape.

import type { Backend, Endpoint, Frontend, Service } from './domain.js';
import type { SockAddr } from './address.js';
import type { Draw } from './impl/pass.js';
import type { Choice } from './impl/types.js';

const U32 = 0xfffffffe;

const waypoint: SockAddr = { addr: '', port: U32 };
const backend: Backend = { uid: U32, addr: '', services: [], waypoint };
const service: Service = { id: U32, endpointCounts: [], lbPolicy: U32, servicePorts: [], targetPorts: [], waypoint };
const endpoint: Endpoint = { serviceId: U32, prio: 0, index: U32, backendUid: U32 };
const frontend: Frontend = { addr: '', upstreamId: U32 };
const draw: Draw = { serviceId: U32, prio: 0, count: U32, index: U32, alike: U32 };
const drawInPass: Draw & { readonly pass: number } = { serviceId: U32, prio: 0, count: U32, index: U32, alike: U32, pass: 1 };
const choice: Choice = { step: 0, serviceId: U32, prio: 0, count: U32, index: U32, alike: U32, pass: 1 };

/** Kept alive: a shape no object holds any more may be dropped, and made again with small integers. */
export const SETTLED_LAYOUTS: readonly object[] = [waypoint, backend, service, endpoint, frontend, draw, drawInPass, choice];
