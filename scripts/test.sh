#!/usr/bin/env bash
# The README's test command: set up what is missing, run the suite, and end with one plain
# "N passed, N failed" line that CI systems read.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
mkdir -p build
report=build/vitest-report.json
rm -f "$report"
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
if [ -f "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
    if (r.numTotalTests === 0) { console.error("kmesh-check: no test ran"); process.exit(1); }
  ' "$report" || status=1
fi
exit $status
