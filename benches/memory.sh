#!/usr/bin/env bash
# Memory per pod, lxcri vs runc side by side (see docs/benchmarks.md):
# PODS pods of a sandbox and 2 containers per runtime, all running at once
# in one private containerd (CRI plugin); the PSS of everything each runtime
# keeps running for them (shims, LXC monitors, inits), apps not counted.
# Prints a Markdown table. Shim RSS with one container: benches/e2e.sh.
#
#   benches/memory.sh [PODS]        (root; PODS defaults to 10; lxc backend)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps >/dev/null
echo "building release binaries..." >&2
cargo build --release --workspace --bins >&2
LXCRI_E2E_BIN_DIR=$PWD/target/release exec target/release/memory-bench "$@"
