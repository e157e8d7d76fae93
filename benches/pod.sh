#!/usr/bin/env bash
# Pod start through containerd's CRI plugin, lxcri vs runc side by side
# (see docs/benchmarks.md): RunPodSandbox + CreateContainer +
# StartContainer until RUNNING, N interleaved rounds per runtime, in one
# private containerd with its own bridge CNI network (the e2e harness's
# Containerd::start_cri). Prints a markdown table.
#
#   benches/pod.sh [N]                          (root; N defaults to 15)
#   LXCRI_E2E_BACKEND=pve benches/pod.sh [N]    (lxcri on pve-sim with PVE-like
#       latencies, without and with the warm pool; also the PVE API round
#       trips and task polls per CT start)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-${N:-15}}

scripts/install-deps >/dev/null
echo "building release binaries..." >&2
cargo build --release --workspace --bins >&2
LXCRI_E2E_BIN_DIR=$PWD/target/release exec target/release/pod-bench "$n"
