// The generators' public surface: arbitraries for map states (consistent and raw), connect
// contexts, single-connect and sequence cases, and the consistency checker.

export * from './addresses.js';
export * from '../model/control-plane/control-ops.js';
export * from '../model/control-plane/consistency.js';
export * from './control-plane.js';
export * from './raw-state.js';
export * from './connect.js';
export * from './cases.js';
export * from './dns.js';
export * from './targeted.js';
export * from './choices.js';
