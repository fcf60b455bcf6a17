// Help and usage-error text of the command line: examples and exit codes for --help, one-line
// usage errors, and the nearest command for a mistyped one.

export const EXIT_CODES = `Exit codes:
  0  every property holds (or the command did its job)
  1  a counterexample was found (or a required check failed, or a phase stopped half-way)
  2  usage or environment error (bad option, missing object, missing privileges)`;

export const PROGRAM_EXAMPLES = `Examples:
  $ kmesh-check check --executor vm --objects build/bpf/cgroup_sock.o,build/bpf/sockops.o,build/bpf/sendmsg.o
  $ sudo kmesh-check check --runs 5000 --json report.json --junit report.xml
  $ kmesh-check check --executor vm --coverage-out lcov.info     # C source coverage (lcov + HTML)
  $ kmesh-check replay --case .kmesh-check/failures/<id>.json
  $ kmesh-check doctor`;

export const CHECK_EXAMPLES = `Examples:
  $ kmesh-check check --executor vm --objects connect=my/cgroup_sock.o,sockops=my/sockops.o,sendmsg=my/sendmsg.o
  $ kmesh-check check --time-limit 5m --json report.json --junit junit.xml
  $ kmesh-check check --executor vm --coverage-out lcov.info && genhtml lcov.info -o coverage/
  $ kmesh-check check --shard 2/4 --seed 7 --json shard2.json
  $ kmesh-check check --exhaustive --scope 2 --time-limit 10m --executor vm`;

/** Edit distance, for suggesting the command a typo meant. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/** The closest known name, or null when none is close enough to be what was meant. */
export function nearest(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.startsWith(name) || name.startsWith(k) ? 1 : distance(name, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(best.length / 2)) ? best : null;
}

/** Commander's "error: ..." text as one line that names the command's --help. */
export function usageLine(command: string, message: string): string {
  const text = message
    .trim()
    .replace(/^error:\s*/, '')
    .replace(/\s*\n\s*/g, ' ');
  const where = command ? `kmesh-check ${command}` : 'kmesh-check';
  return `${where}: ${text} (see ${where} --help)\n`;
}
