#!/usr/bin/env bash
# lxcri vs runc, side by side in one run (see docs/benchmarks.md):
#  1. latency of `ctr run --rm --runtime R IMG ID true`: N interleaved runs
#     per runtime (order alternating), after one warm-up run each; median.
#  2. memory: one `sleep` container per runtime, VmRSS of each shim process.
# Prints a markdown table with the ratios lxcri/runc.
#
#   benches/e2e.sh [N]        (root; N defaults to 15)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-${N:-15}}

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
trap ctd_cleanup EXIT
bench_setup lxcri-bench
image=$BENCH_IMAGE

declare -A runtime=([runc]=io.containerd.runc.v2 [lxcri]=io.containerd.lxcri.v2)
declare -A shim=([runc]=containerd-shim-runc-v2 [lxcri]=containerd-shim-lxcri-v2)
declare -A samples=([runc]="" [lxcri]="")

# One `ctr run --rm ... true`; prints its wall time in ms.
run_once() { timed_run "$image" "$2" --runtime "${runtime[$1]}"; }

echo "warm-up..." >&2
run_once runc warm-runc >/dev/null
run_once lxcri warm-lxcri >/dev/null

echo "latency: $n interleaved runs per runtime..." >&2
for i in $(seq 1 "$n"); do
  if [ $((i % 2)) -eq 0 ]; then order="runc lxcri"; else order="lxcri runc"; fi
  for rt in $order; do
    samples[$rt]+=" $(run_once "$rt" "lat-$rt-$i")"
  done
done

echo "memory: one sleep container per runtime..." >&2
declare -A rss
for rt in runc lxcri; do
  ctd_ctr run -d --runtime "${runtime[$rt]}" "$image" "rss-$rt" sleep 1000 >/dev/null
done
# Steady state: a shim serves its container for much longer than it takes
# to start it (lxcri's trims what create ran once after 1 s of quiet).
sleep 3
for rt in runc lxcri; do
  id=rss-$rt
  pid=""
  for f in /proc/[0-9]*/cmdline; do
    c=$(tr '\0' ' ' < "$f" 2>/dev/null) || continue
    case "$c" in
      *"${shim[$rt]}"*"-namespace $CTD_NS "*"-id $id "*) p=${f#/proc/}; pid=${p%/cmdline} ;;
    esac
  done
  [ -n "$pid" ] || { echo "$rt: shim process not found" >&2; exit 1; }
  rss[$rt]=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
done

lat_runc=$(echo "${samples[runc]}" | median)
lat_lxcri=$(echo "${samples[lxcri]}" | median)
# Round i of the two series ran back to back: its ratio is free of drift.
read -r pr_med pr_q1 pr_q3 pr_lo pr_hi < <(paired_ratios "${samples[lxcri]}" "${samples[runc]}")
# Issue 18: <= 0.7 with a margin larger than the noise, i.e. the whole 95%
# interval of the median ratio below it.
verdict=$(awk -v hi="$pr_hi" 'BEGIN { print (hi + 0 <= 0.7) ? "yes" : "no" }')
cat <<TABLE

Measured $(date -u +%Y-%m-%d) on $(uname -r), $(nproc) CPUs; N=$n; command: benches/e2e.sh $n

| metric | runc | lxcri | lxcri/runc | target |
|---|---|---|---|---|
| \`ctr run --rm IMG true\`, median ms | $lat_runc | $lat_lxcri | $(ratio "$lat_lxcri" "$lat_runc") | |
| ... ratio of each round's pair: median (quartiles; median's 95% CI) | | | $pr_med ($pr_q1-$pr_q3; $pr_lo-$pr_hi) | <= 0.7, CI included: $verdict |
| shim VmRSS, KiB (one running container) | ${rss[runc]} | ${rss[lxcri]} | $(ratio "${rss[lxcri]}" "${rss[runc]}") | <= 0.3 |

samples (ms) runc:${samples[runc]}
samples (ms) lxcri:${samples[lxcri]}
TABLE
