// What the acceleration checks need from an executor (the kernel's real sockets or the VM's
// emulated ones): the observation of each case, in order.

import type { AccelCase, AccelObservation } from './domain.js';

export interface AccelExecutor {
  /** 'kernel' or 'vm', as reports name it. */
  readonly name: string;
  run(cases: readonly AccelCase[]): Promise<AccelObservation[]>;
  close(): Promise<void>;
}
