// One global seed for every property test (fast-check and @fast-check/vitest's test.prop), so
// a run is reproducible; KMESH_CHECK_TEST_SEED picks another one to explore further.

import fc from 'fast-check';

const seed = Number(process.env.KMESH_CHECK_TEST_SEED ?? 20251130);
fc.configureGlobal({ seed });
