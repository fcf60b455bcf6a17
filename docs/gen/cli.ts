// `kmesh-check docs` writes docs/spec.md; `kmesh-check docs --check` exits 1 when it is stale.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkSpecFresh, renderSpec, SPEC_PATH } from './index.js';

export function docsCommand(opts: { check: boolean; root: string }): number {
  if (opts.check) {
    const { fresh } = checkSpecFresh(opts.root);
    if (!fresh) {
      process.stderr.write(`${SPEC_PATH} is stale: run kmesh-check docs\n`);
      return 1;
    }
    process.stdout.write(`${SPEC_PATH} is up to date\n`);
    return 0;
  }
  const path = join(opts.root, SPEC_PATH);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, renderSpec());
  process.stdout.write(`wrote ${SPEC_PATH}\n`);
  return 0;
}
