#!/usr/bin/env bash
# The time each shim itself spends on a container, lxcri vs runc side by
# side (see docs/benchmarks.md): shim-bench plays containerd's part over
# each shim's ttrpc socket (shim start, Create, Start, Wait, Delete,
# Shutdown), N interleaved rounds. Prints a Markdown table.
#
#   benches/shim.sh [N]        (root; N defaults to 15; lxc backend)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps >/dev/null
echo "building release binaries..." >&2
cargo build --release --workspace --bins >&2
LXCRI_E2E_BIN_DIR=$PWD/target/release exec target/release/shim-bench "$@"
