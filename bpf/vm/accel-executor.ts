// The acceleration executor on the userspace VM: our (or a user's) ma_ops and ma_redirect loaded
// into one VM (maps shared by name, checked against section 8's table), run by the acceleration
// case runner over the VM's socket layer (accel-sockets.ts), so that the acceleration checks run
// without privileges and observe what the kernel executor observes.

import type { AccelCase, AccelObservation } from '../../model/accel/domain.js';
import type { AccelExecutor } from '../../model/accel/executor.js';
import { ACCEL_MAPS, ACCEL_PROGRAMS, checkAccelMapShape } from '../codec/accel.js';
import { KmeshCheckError } from '../../shared/errors.js';
import { defaultAccelObjects, type AccelObjectPaths } from '../../shared/package.js';
import { runAccelCase } from '../runner/accel-runner.js';
import { VmAccelSockets } from './accel-sockets.js';
import { VmFault, type VmProgram } from './program.js';
import { MemoryFault } from './memory.js';
import { coverageOf, type CoverageSummary } from './coverage.js';
import { Vm, loadObjectFile } from './vm.js';

export class AccelVmExecutor implements AccelExecutor {
  readonly name = 'vm';
  readonly vm = new Vm();
  /** The socket layer, for tests that drive connections by hand. */
  readonly sockets: VmAccelSockets;
  private closed = false;

  constructor(objects: Partial<AccelObjectPaths> = {}) {
    const paths = { ...defaultAccelObjects(), ...objects };
    const files = paths.ops === paths.redirect ? [paths.ops] : [paths.ops, paths.redirect];
    for (const f of files) loadObjectFile(this.vm, f, 'acceleration object');
    const program = (name: string): VmProgram => {
      const p = this.vm.allPrograms().find((q) => q.name === name);
      if (!p) throw new KmeshCheckError('object-content', `no acceleration object has program '${name}' (${files.join(', ')})`);
      return p;
    };
    const progs = { ops: program(ACCEL_PROGRAMS.ops), redirect: program(ACCEL_PROGRAMS.redirect) };
    for (const abi of ACCEL_MAPS) {
      const m = this.vm.maps.get(abi.name);
      if (!m) throw new KmeshCheckError('object-content', `no acceleration object defines map ${abi.name} (kmesh-dataplane.md section 8)`);
      checkAccelMapShape(this.vm.mapLabel(abi.name), abi.name, m.def);
    }
    this.sockets = new VmAccelSockets(this.vm, progs);
  }

  static start(objects: Partial<AccelObjectPaths> = {}): Promise<AccelVmExecutor> {
    return Promise.resolve(new AccelVmExecutor(objects));
  }

  /** One case, synchronously (exhaustive enumeration runs thousands). */
  runOne(c: AccelCase): AccelObservation {
    if (this.closed) throw new KmeshCheckError('unsupported', 'the acceleration VM executor is closed');
    try {
      return runAccelCase(this.sockets, c);
    } catch (e) {
      // A fault (a helper the VM lacks, an access the verifier would refuse) is one line, like a load error.
      if (e instanceof VmFault || e instanceof MemoryFault) throw new KmeshCheckError('load', `the VM cannot run the acceleration programs: ${e.message}`);
      throw e;
    }
  }

  run(cases: readonly AccelCase[]): Promise<AccelObservation[]> {
    return Promise.resolve(cases.map((c) => this.runOne(c)));
  }

  /** Instruction and branch coverage of the acceleration programs over the cases run so far. */
  coverage(): CoverageSummary {
    return coverageOf(this.vm.machine, this.vm.allPrograms());
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
