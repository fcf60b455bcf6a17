// The VM run thread (bpf/vm/run-thread.ts): a VmExecutor of its own on the same objects, which
// runs the batches of cases it is sent and answers with their observation records.

import { readlinkSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { VmExecutor } from './executor.js';
import { decodeCases } from '../codec/case-wire.js';
import { tuneV8 } from '../../shared/v8-tuning.js';
import { threadError, type RunThreadData, type RunThreadReply, type RunThreadRequest } from './run-thread.js';

tuneV8();

/** This thread's id in /proc (the bench reads its CPU time), where there is one. */
function linuxThreadId(): number | null {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return null;
  }
}

const d = workerData as RunThreadData;
const port = parentPort!;
let ex: VmExecutor;
try {
  ex = new VmExecutor(d.objects, { environment: d.environment, seed: d.seed, engine: d.engine });
  port.postMessage({ type: 'ready', tid: linuxThreadId() } satisfies RunThreadReply);
} catch (e) {
  port.postMessage({ type: 'error', id: -1, error: threadError(e) } satisfies RunThreadReply);
}

port.on('message', (m: RunThreadRequest) => {
  try {
    if (m.type === 'run') {
      const { bytes, streams } = ex.runRecorded(decodeCases(m.cases));
      port.postMessage({ type: 'ran', id: m.id, bytes, streams } satisfies RunThreadReply, [bytes.buffer as ArrayBuffer]);
    } else if (m.type === 'sets') {
      port.postMessage({ type: 'sets', id: m.id, sets: ex.outcomeSetsHere(decodeCases(m.cases), m.opts) } satisfies RunThreadReply);
    } else {
      const counts = ex.coverageCounts();
      ex.resetCoverage();
      port.postMessage({ type: 'coverage', id: m.id, counts } satisfies RunThreadReply);
    }
  } catch (e) {
    port.postMessage({ type: 'error', id: m.id, error: threadError(e) } satisfies RunThreadReply);
  }
});
