#!/usr/bin/env bash
# Create latency on a busy node (see docs/benchmarks.md): `ctr run --rm
# IMG true` of lxcri with 0, 100 and 300 lxcri containers running (lxc
# backend), or with 0 and 1,000 CTs in the cluster (pve backend on
# pve-sim); the ratio to the empty node. Prints a Markdown table.
#
#   benches/scale.sh [N] [LEVEL...]                 (root; N defaults to 9)
#   LXCRI_E2E_BACKEND=pve benches/scale.sh [N] ...  (lxcri on pve-sim)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps >/dev/null
echo "building release binaries..." >&2
cargo build --release --workspace --bins >&2
LXCRI_E2E_BIN_DIR=$PWD/target/release exec target/release/scale-bench "$@"
