// The reference model on the hand-written DNS scenarios of section 6 (test/fixtures/dns-scenarios.ts).

import { describe, expect, it } from 'vitest';
import { DEFAULT_ENVIRONMENT } from '../model/environment.js';
import { outcomes } from '../model/impl/index.js';
import { DNS_SCENARIOS, pick } from './fixtures/dns-scenarios.js';

describe('model: DNS over UDP (section 6)', () => {
  for (const s of DNS_SCENARIOS) {
    it(s.name, () => {
      const traces = outcomes(s.case, DEFAULT_ENVIRONMENT);
      expect(traces).toHaveLength(1);
      const obs = traces[0]!.observations;
      s.expect.forEach((e, i) => expect(pick(obs[i], e), `operation ${i + 1}`).toEqual(e));
    });
  }
});
