#!/usr/bin/env bash
# The pve backend's cost, against pve-sim (see docs/benchmarks.md):
#  1. PVE API calls per container lifecycle (`ctr run --rm IMG ID true`:
#     create, start, exit, delete), task-status polls counted apart, from
#     the stand-in's request log;
#  2. wall time of the same lifecycle for runc, lxcri on the lxc backend and
#     lxcri on the pve backend, N interleaved runs each, in one containerd.
# The backend is picked per run with containerd's ConfigPath runtime option
# (`ctr run --runtime-config-path`). Prints a markdown table.
#
#   benches/pve.sh [N]        (root; N defaults to 15)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-${N:-15}}

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
sim_pid="" sim_dir=""
cleanup() {
  ctd_cleanup
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  if [ -n "$sim_dir" ]; then
    for ct in "$sim_dir"/var/lib/lxc/*; do
      [ -d "$ct" ] && lxc-stop -P "$sim_dir/var/lib/lxc" -n "$(basename "$ct")" -k 2>/dev/null || true
    done
    rm -rf "$sim_dir"
  fi
}
trap cleanup EXIT
bench_setup lxcri-bench-pve
image=$BENCH_IMAGE

# The stand-in, with the empty template lxcri creates CTs from.
sim_dir=$(mktemp -d "${TMPDIR:-/tmp}/lxcri-bench-pve.XXXXXX")
mkdir -p "$sim_dir/storage/local/template/cache"
tar -czf "$sim_dir/storage/local/template/cache/lxcri-empty.tar.gz" -T /dev/null
secret=bench-$RANDOM$RANDOM
echo "$secret" > "$sim_dir/token"
coproc SIM { exec "$repo/target/release/pve-sim" --listen 127.0.0.1:0 --data-dir "$sim_dir" \
  --node bench --token "lxcri@pve!bench=$secret" 2>"$sim_dir/pve-sim.log"; }
sim_pid=$SIM_PID
read -r fingerprint <&"${SIM[0]}"
read -r listening <&"${SIM[0]}"
url=${listening#listening on }

cat > "$sim_dir/lxcri-pve.toml" <<TOML
backend = "pve"
[pve]
url = "$url"
node = "bench"
token_id = "lxcri@pve!bench"
token_secret_file = "$sim_dir/token"
fingerprint = "$fingerprint"
config_dir = "$sim_dir/etc/pve"
lxcpath = "$sim_dir/var/lib/lxc"
lock_dir = "$sim_dir/run/lock/lxc"
vmid_range = "2000000-2000999"
TOML
echo 'backend = "lxc"' > "$sim_dir/lxcri-lxc.toml"

declare -A samples=([runc]="" [lxcri-lxc]="" [lxcri-pve]="")
run_once() {
  local rt=$1 id=$2 args
  case $rt in
    runc) args=(--runtime io.containerd.runc.v2) ;;
    lxcri-lxc) args=(--runtime io.containerd.lxcri.v2 --runtime-config-path "$sim_dir/lxcri-lxc.toml") ;;
    lxcri-pve) args=(--runtime io.containerd.lxcri.v2 --runtime-config-path "$sim_dir/lxcri-pve.toml") ;;
  esac
  timed_run "$image" "$id" "${args[@]}"
}
# Requests in the stand-in's log: all, and task-status polls.
count_requests() { wc -l < "$sim_dir/requests.jsonl"; }
count_polls() { grep -c '"/nodes/{node}/tasks/{upid}/status"' "$sim_dir/requests.jsonl" || true; }

echo "warm-up..." >&2
for rt in runc lxcri-lxc lxcri-pve; do run_once "$rt" "warm-$rt" >/dev/null; done

echo "$n interleaved lifecycles per runtime..." >&2
before_all=$(count_requests) before_polls=$(count_polls)
for i in $(seq 1 "$n"); do
  case $((i % 3)) in
    0) order="runc lxcri-lxc lxcri-pve" ;;
    1) order="lxcri-pve runc lxcri-lxc" ;;
    2) order="lxcri-lxc lxcri-pve runc" ;;
  esac
  for rt in $order; do samples[$rt]+=" $(run_once "$rt" "lat-$rt-$i")"; done
done
all=$(($(count_requests) - before_all))
polls=$(($(count_polls) - before_polls))
calls=$((all - polls))
invalid=$(grep -c '"valid":false' "$sim_dir/requests.jsonl" || true)
# Which calls one lifecycle makes (the last run's, polls left out).
per_call=$(grep -v '/tasks/' "$sim_dir/requests.jsonl" | tail -n "$((calls / n))" |
  sed -E 's/.*"method":"([A-Z]+)".*"template":"([^"]*)".*/\1 \2/' | paste -sd ',' | sed 's/,/, /g')

m_runc=$(echo "${samples[runc]}" | median)
m_lxc=$(echo "${samples[lxcri-lxc]}" | median)
m_pve=$(echo "${samples[lxcri-pve]}" | median)
cat <<TABLE

Measured $(date -u +%Y-%m-%d) on $(uname -r), $(nproc) CPUs; N=$n; command: benches/pve.sh $n

| metric | value | target |
|---|---|---|
| PVE API calls per lifecycle, task polls apart | $(awk -v c="$calls" -v n="$n" 'BEGIN{printf "%.1f", c/n}') | <= 6 |
| task-status polls per lifecycle | $(awk -v c="$polls" -v n="$n" 'BEGIN{printf "%.1f", c/n}') | |
| requests refused by the schema | $invalid | 0 |

Calls of one lifecycle: $per_call

| \`ctr run --rm IMG true\`, median ms | runc | lxcri (lxc) | lxcri (pve) | pve/runc | pve/lxc |
|---|---|---|---|---|---|
| | $m_runc | $m_lxc | $m_pve | $(ratio "$m_pve" "$m_runc") | $(ratio "$m_pve" "$m_lxc") |

samples (ms) runc:${samples[runc]}
samples (ms) lxcri-lxc:${samples[lxcri-lxc]}
samples (ms) lxcri-pve:${samples[lxcri-pve]}
TABLE
