#!/usr/bin/env bash
# Load and soak on one node with lxcri (see docs/benchmarks.md): RUNS
# concurrent `ctr run -d` (all running at once, then killed and deleted
# concurrently), PODS concurrent CRI pods (sandbox + 2
# containers), then LIFECYCLES sequential containers in one long-lived pod
# with its shim's RSS, open fds and threads sampled. Failures, leftovers
# and (pve) distinct VMIDs are counted; exits non-zero on any. Prints
# Markdown tables.
#
#   benches/load.sh [RUNS] [PODS] [LIFECYCLES]        (root; 50 30 1000)
#   LXCRI_E2E_BACKEND=pve benches/load.sh ...          (lxcri on pve-sim)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps >/dev/null
echo "building release binaries..." >&2
cargo build --release --workspace --bins >&2
LXCRI_E2E_BIN_DIR=$PWD/target/release exec target/release/load-bench "$@"
