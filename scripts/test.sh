#!/usr/bin/env bash
# make test: run every suite, even after one fails, then print one line per
# suite and a closing "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."

suites=(units sanity lint packaging molecule)
began=$(date +%s)
passed=0
failed=0
report=()
for suite in "${suites[@]}"; do
  printf '\n==== make %s ====\n' "$suite"
  start=$(date +%s)
  if make --no-print-directory "$suite"; then
    outcome=passed; passed=$((passed + 1))
  else
    outcome=FAILED; failed=$((failed + 1))
  fi
  report+=("$(printf '%-10s %-7s %5d s' "$suite" "$outcome" "$(( $(date +%s) - start ))")")
done

printf '\n==== summary ====\n'
printf '%s\n' "${report[@]}"
printf '%-18s %5d s\n' "total" "$(( $(date +%s) - began ))"
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
