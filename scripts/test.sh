#!/usr/bin/env bash
# The README's test command: set up what is missing, run the suite, and end with one plain
# "N passed, N failed" line that CI systems read. The suite has three vitest projects (see
# vitest.config.ts): unit and vm need no privileges; kernel needs root. As root all three run;
# otherwise unit and vm run and the skipped kernel project is announced, never silently. eslint and
# prettier --check run beside the suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
mkdir -p build

# Style: lint (typescript-eslint) and the formatter's check run beside the suite (they fill the
# cores the suite leaves idle while its tests wait on the kernel or the network) and are reported
# after it; a failure fails the run, so that one run shows both.
style_log=$(mktemp)
(
  rc=0
  echo 'kmesh-check: eslint .'
  npx --no-install eslint . || rc=1
  echo 'kmesh-check: prettier --check'
  npx --no-install prettier --check --log-level warn '**/*.{ts,js,mjs}' || rc=1
  exit $rc
) >"$style_log" 2>&1 &
style_pid=$!

report=build/vitest-report.json
rm -f "$report"

projects=()
skipped=''
if [ "$(id -u)" != 0 ]; then
  projects=(--project unit --project vm)
  skipped="the kernel project was SKIPPED: it runs the kernel executor, which needs root (CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN); you are uid $(id -u). Run \`sudo npm test\` to run it."
fi
banner() {
  printf '\n%s\n' '################################################################################'
  printf '## kmesh-check: %s\n' "$1"
  printf '%s\n\n' '################################################################################'
}
[ -n "$skipped" ] && banner "$skipped" >&2

npx --no-install vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
style=0
wait "$style_pid" || style=1
cat "$style_log"
rm -f "$style_log"
if [ "$style" = 0 ]; then echo 'kmesh-check: lint and format clean'; else
  echo 'kmesh-check: lint or format check FAILED (see above): npm run lint, npm run format' >&2
  status=1
fi
[ -n "$skipped" ] && banner "$skipped" >&2
if [ -f "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    const kernel = process.argv[2] ? " (kernel project skipped: not root)" : "";
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : "") + kernel);
    if (r.numTotalTests === 0) { console.error("kmesh-check: no test ran"); process.exit(1); }
  ' "$report" "$skipped" || status=1
fi
exit $status
