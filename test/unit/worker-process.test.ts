// What a dead worker's error says (bpf/kernel/worker-process.ts crashLine): the error line of a
// Node.js crash, not the version line its stderr ends with.

import { describe, expect, it } from 'vitest';
import { crashLine } from '../../bpf/kernel/worker-process.js';

describe('the line a dead worker is reported with', () => {
  it('is the last error line of a Node.js crash', () => {
    const crash = [
      'file:///x/dist/bpf/kernel/accel/worker.js:42',
      '        throw e;',
      '        ^',
      '',
      'KmeshCheckError: accept failed (EMFILE)',
      '    at AccelDriver.accept (file:///x/dist/bpf/kernel/accel/driver.js:10:15)',
      '',
      'Node.js v20.20.2',
      '',
    ].join('\n');
    expect(crashLine(crash)).toBe('KmeshCheckError: accept failed (EMFILE)');
  });

  it('is the last line otherwise, and empty for no output', () => {
    expect(crashLine('unshare: write failed\nsomething went wrong\n')).toBe('something went wrong');
    expect(crashLine('Node.js v20.20.2\n')).toBe('');
    expect(crashLine('')).toBe('');
  });
});
