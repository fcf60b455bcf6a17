// The executable reference model (DESIGN.md, model/impl): the data path over domain values, every
// LB draw an explicit choice point, the full set of outcomes of a case.

export { initialWorld, enrolledLocalIps, step, ModelInputError } from './step.js';
export { outcomes, OutcomeLimitError, MAX_BRANCHES } from './outcomes.js';
export { MAX_PASSES } from './chain.js';
export { tlvBytes } from './stream.js';
export type { Branch, Choice, SocketState, Trace, World } from './types.js';
export type { PassPath, PassRecord, PassResult, PassTarget, TargetKind } from '../spec/passes.js';
export { PASS_PATHS, RESULT_OF_PATH } from '../spec/passes.js';
