#!/usr/bin/env bash
# Runs the fuzz targets (tests/fuzz, proptest on stable Rust) for a long
# time: rounds of PROPTEST_CASES cases per target with fresh random seeds,
# release build, until SECONDS_TOTAL have passed. A failure stops the run;
# its shrunk input is printed and its seed kept in
# tests/fuzz/regressions/<target>.txt (commit it, and write the input into
# a unit test next to the code it broke). Prints cases run per target.
#
#   benches/fuzz.sh [SECONDS_TOTAL] [CASES_PER_ROUND]   (defaults: 3600, 20000)
#
# No root needed.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-3600}
per_round=${2:-20000}

cargo test --release --test fuzz --no-run >/dev/null 2>&1 || cargo test --release --test fuzz --no-run
targets=$(cargo test --release --test fuzz -- --list 2>/dev/null | sed -n 's/: test$//p')
log=$(mktemp)
trap 'rm -f "$log"' EXIT
deadline=$(( $(date +%s) + total ))
rounds=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  rounds=$((rounds + 1))
  # Every target once per round; a round stops at the first failure.
  if ! PROPTEST_CASES=$per_round cargo test --release --test fuzz -q 2>&1 \
      | tee "$log" | grep -q '^test result: ok'; then
    cat "$log"
    echo "fuzz: round $rounds FAILED (log above); seeds in tests/fuzz/regressions/" >&2
    exit 1
  fi
done
echo "| target | cases |"
echo "|---|---|"
for t in $targets; do
  echo "| $t | $((rounds * per_round)) |"
done
echo
echo "$rounds rounds in $total s, no failure"
