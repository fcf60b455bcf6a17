// fast-check run at a replay path, for the replays and shrinks of printed findings. A path walks
// the case's shrink tree; one printed for another arbitrary (a report case of the kernel executor,
// whose cases may let time pass, replayed on the VM; another version's) names no case there, and
// fast-check throws with its own stack trace: the user gets one line that says so instead.

import fc from 'fast-check';
import { KmeshCheckError } from '../shared/errors.js';

export async function checkAtPath<T>(property: fc.IAsyncProperty<[T]>, params: fc.Parameters<[T]> & { readonly seed: number; readonly path: string }): Promise<fc.RunDetails<[T]>> {
  try {
    return await fc.check(property, params);
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('Unable to replay, got wrong path')) {
      throw new KmeshCheckError(
        'usage',
        `path ${params.path} names no case of this phase at seed ${params.seed}: replay the line printed by a run of the same executor and version, or the finding's saved case with --case`,
      );
    }
    throw e;
  }
}
