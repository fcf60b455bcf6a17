// Byte-exact codecs of the data path's ABI: the ABI table, struct codecs, the TLV, map states.
export * from './abi.js';
export * from './structs.js';
export * from './tlv.js';
export * from './state.js';
export * from './tracker.js';
export * from './manage.js';
