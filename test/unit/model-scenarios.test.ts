// The hand-written scenarios (support/scenarios.ts) on the reference model: the same table, the
// same expectations as on the kernel executor, over the model's outcome set of each case.

import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import { outcomes } from '../../model/impl/index.js';
import { outcomeSetExecutor, scenarioSuite } from '../support/scenarios.js';

scenarioSuite('model', async () => outcomeSetExecutor((c) => outcomes(c, DEFAULT_ENVIRONMENT).map((o) => o.observations)));
