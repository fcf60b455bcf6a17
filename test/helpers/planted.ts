// A planted defect that needs no privileges: an executor that answers with the reference model's
// first outcome, except that it never puts the original-destination TLV on the wire. The checker
// must find that, shrink it and replay it.

import type { Case, Observation } from '../../model/domain.js';
import { DEFAULT_ENVIRONMENT } from '../../model/environment.js';
import type { Executor } from '../../model/executor.js';
import { outcomes } from '../../model/impl/index.js';

const TLV_HEX_LENGTH: Record<string, number> = { inet: 32, inet6: 56 };

function dropTlv(o: Observation): Observation {
  if (!o.stream?.tlv) return o;
  const cut = TLV_HEX_LENGTH[o.stream.tlv.form] ?? 0;
  return { ...o, stream: { ...o.stream, tlv: null, hex: o.stream.hex.slice(cut) } };
}

export class TlvDroppingExecutor implements Executor {
  readonly name = 'planted-no-tlv';
  readonly environment = DEFAULT_ENVIRONMENT;
  async run(cases: readonly Case[]): Promise<Observation[][]> {
    return cases.map((c) => {
      const first = outcomes(c, this.environment)[0];
      if (!first) throw new Error('the model has no outcome for this case');
      return first.observations.map(dropTlv);
    });
  }
  async close(): Promise<void> {}
}
