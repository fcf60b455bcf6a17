// Progress: a bar on a terminal, plain lines otherwise (CI logs), at most one every few seconds.

import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, phase: string): void;
  stop(): void;
}

export function progress(total: number, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {value}/{total} cases | {phase} | {duration_formatted}`, hideCursor: true, stream }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { phase: '' });
    return {
      update: (done, phase) => bar.update(Math.min(done, total), { phase }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  const started = Date.now();
  return {
    update(done, phase) {
      const now = Date.now();
      if (now - last < 5000 && done !== total) return;
      last = now;
      stream.write(`${label}: ${done}/${total} cases (${phase}), ${((now - started) / 1000).toFixed(0)} s\n`);
    },
    stop() {},
  };
}
