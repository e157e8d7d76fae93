#!/usr/bin/env bash
# The cost of a metrics scrape (see docs/benchmarks.md): with COUNT lxcri
# containers running (lxc backend), in one run,
#   exporter     `lxcri exporter`'s /metrics: every container's cgroup,
#                /proc entries and state, the shims' journal
#   containerd   containerd's own /v1/metrics for the same containers: its
#                cgroups task monitor asks each container's shim for Stats
#                (the collection cAdvisor-style dashboards get from containerd)
# N timed scrapes of each, alternating, after one warm-up each; medians in
# ms, the ratio, the series each returned, and the exporter's RSS after
# them. Prints a markdown table.
#
#   benches/metrics.sh [N] [COUNT]   (root; N defaults to 21, COUNT to 200)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-${N:-21}}
count=${2:-${COUNT:-200}}

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

exporter_pid=""
cleanup() {
  [ -z "$exporter_pid" ] || kill "$exporter_pid" 2>/dev/null || true
  ctd_cleanup
}
trap cleanup EXIT
CTD_METRICS_ADDRESS=127.0.0.1:$(free_port)
export CTD_METRICS_ADDRESS
bench_setup lxcri-bench-metrics
image=$BENCH_IMAGE

echo "starting $count containers..." >&2
for i in $(seq 1 "$count"); do
  ctd_ctr run -d --runtime io.containerd.lxcri.v2 "$image" "m$i" sleep 1000000 >/dev/null
done

exporter_address=127.0.0.1:$(free_port)
target/release/lxcri exporter --web.listen-address "$exporter_address" 2>"${EXPORTER_LOG:-$CTD_DIR/exporter.log}" &
exporter_pid=$!
for _ in $(seq 1 50); do curl -sf "http://$exporter_address/metrics" >/dev/null && break; sleep 0.1; done

scrape_ms() { curl -sf -o "$CTD_DIR/scrape.txt" -w '%{time_total}' "$1" | awk '{printf "%.1f", $1 * 1000}'; }
exporter_url=http://$exporter_address/metrics
containerd_url=http://$CTD_METRICS_ADDRESS/v1/metrics
scrape_ms "$exporter_url" >/dev/null
exporter_series=$(grep -vc '^#' "$CTD_DIR/scrape.txt")
exporter_containers=$(grep -c '^container_cpu_usage_seconds_total{' "$CTD_DIR/scrape.txt")
scrape_ms "$containerd_url" >/dev/null
containerd_series=$(grep -vc '^#' "$CTD_DIR/scrape.txt")

exp="" ctd=""
for _ in $(seq 1 "$n"); do
  exp="$exp $(scrape_ms "$exporter_url")"
  ctd="$ctd $(scrape_ms "$containerd_url")"
done
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$exporter_pid/status")
exp_med=$(echo "$exp" | median)
ctd_med=$(echo "$ctd" | median)

echo
echo "| scrape of $count containers | median ms | series | ratio |"
echo "|---|---|---|---|"
echo "| lxcri exporter /metrics | $exp_med | $exporter_series ($exporter_containers containers) | $(ratio "$exp_med" "$ctd_med") |"
echo "| containerd /v1/metrics | $ctd_med | $containerd_series | 1.00 |"
echo
echo "lxcri exporter RSS after $((n + 1)) scrapes: $((rss_kib / 1024)) MiB ($rss_kib KiB)"
echo "exporter samples (ms):$exp"
echo "containerd samples (ms):$ctd"
