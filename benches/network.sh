#!/usr/bin/env bash
# The create-time cost of NICs (see docs/benchmarks.md): wall time of
# `ctr run --rm IMG ID true` with 0, 1 and 4 NICs on an Open vSwitch bridge
# (a private ovsdb-server + ovs-vswitchd, userspace datapath), for lxcri on
# the lxc backend (lxcri plugs them) and on the pve backend against pve-sim
# (PVE plugs a CT's netN at start), with runc (no NIC) in the same run. N
# interleaved runs per variant, order rotating each round. Prints a
# markdown table.
#
#   benches/network.sh [N]        (root; N defaults to 9)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-${N:-9}}

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
ovs_dir="" ovs_pids=() sim_pid="" sim_dir="" bridge=""
cleanup() {
  ctd_cleanup
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  if [ -n "$sim_dir" ]; then
    for ct in "$sim_dir"/var/lib/lxc/*; do
      [ -d "$ct" ] && lxc-stop -P "$sim_dir/var/lib/lxc" -n "$(basename "$ct")" -k 2>/dev/null || true
    done
    rm -rf "$sim_dir"
  fi
  if [ -n "$bridge" ]; then ovs-vsctl --db="unix:$ovs_dir/db.sock" --timeout=10 --if-exists del-br "$bridge" || true; fi
  for pid in "${ovs_pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ -n "$ovs_dir" ]; then rm -rf "$ovs_dir"; fi
}
trap cleanup EXIT
bench_setup lxcri-bench-net
image=$BENCH_IMAGE

# One userspace datapath per network namespace: the e2e tests' lock.
exec 9>/run/lock/lxcri-e2e-ovs.lock
flock 9
ovs_dir=$(mktemp -d "${TMPDIR:-/tmp}/lxcri-bench-ovs.XXXXXX")
export OVS_RUNDIR=$ovs_dir OVS_LOGDIR=$ovs_dir OVS_DBDIR=$ovs_dir OVS_SYSCONFDIR=$ovs_dir
ovsdb-tool create "$ovs_dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$ovs_dir/conf.db" --remote="punix:$ovs_dir/db.sock" --unixctl="$ovs_dir/ovsdb.ctl" \
  --log-file="$ovs_dir/ovsdb.log" 2>/dev/null &
ovs_pids+=($!)
db="unix:$ovs_dir/db.sock"
for _ in $(seq 100); do [ -S "$ovs_dir/db.sock" ] && break; sleep 0.1; done
ovs-vswitchd "$db" --unixctl="$ovs_dir/vswitchd.ctl" --log-file="$ovs_dir/vswitchd.log" 2>/dev/null &
ovs_pids+=($!)
ovs-vsctl --db="$db" --timeout=20 init
bridge=lxbn$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
ovs-vsctl --db="$db" --timeout=20 add-br "$bridge" -- set bridge "$bridge" datapath_type=netdev

# The stand-in for the pve backend, plugging netN into the same switch.
sim_dir=$(mktemp -d "${TMPDIR:-/tmp}/lxcri-bench-net-pve.XXXXXX")
mkdir -p "$sim_dir/storage/local/template/cache"
tar -czf "$sim_dir/storage/local/template/cache/lxcri-empty.tar.gz" -T /dev/null
secret=bench-$RANDOM$RANDOM
echo "$secret" > "$sim_dir/token"
coproc SIM { exec "$repo/target/release/pve-sim" --listen 127.0.0.1:0 --data-dir "$sim_dir" \
  --node bench --token "lxcri@pve!bench=$secret" --ovsdb "$db" 2>"$sim_dir/pve-sim.log"; }
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
run_dir = "$sim_dir/run/pve"
vmid_range = "2100000-2100999"
[network]
ovsdb = "$db"
TOML
printf 'backend = "lxc"\n[network]\novsdb = "%s"\n' "$db" > "$sim_dir/lxcri-lxc.toml"

variants="runc lxc-0 lxc-1 lxc-4 pve-0 pve-1 pve-4"
declare -A samples=()
run_once() {
  local v=$1 id=$2 args=() k
  case $v in
    runc) timed_run "$image" "$id" --runtime io.containerd.runc.v2; return ;;
    lxc-*) args=(--runtime io.containerd.lxcri.v2 --runtime-config-path "$sim_dir/lxcri-lxc.toml") ;;
    pve-*) args=(--runtime io.containerd.lxcri.v2 --runtime-config-path "$sim_dir/lxcri-pve.toml") ;;
  esac
  for k in $(seq 0 $((${v#*-} - 1))); do
    args+=(--annotation "io.lxcri.net$k=name=eth$((k + 1)),bridge=$bridge,tag=$((10 + k)),ip=10.80.$k.1/24")
  done
  timed_run "$image" "$id" "${args[@]}"
}

echo "warm-up..." >&2
for v in $variants; do run_once "$v" "warm-$v" >/dev/null; done
echo "$n interleaved runs per variant..." >&2
read -r -a order <<< "$variants"
for i in $(seq 1 "$n"); do
  shift_by=$((i % ${#order[@]}))
  for v in "${order[@]:shift_by}" "${order[@]:0:shift_by}"; do
    samples[$v]+=" $(run_once "$v" "net-$v-$i")"
  done
done

m() { echo "${samples[$1]}" | median; }
cat <<TABLE

Measured $(date -u +%Y-%m-%d) on $(uname -r), $(nproc) CPUs; N=$n; command: benches/network.sh $n

| \`ctr run --rm IMG true\`, median ms | 0 NICs | 1 NIC | 4 NICs | 1 NIC / 0 | 4 NICs / 0 | 0 NICs / runc |
|---|---|---|---|---|---|---|
| runc | $(m runc) | | | | | 1.00 |
| lxcri, lxc backend (lxcri plugs) | $(m lxc-0) | $(m lxc-1) | $(m lxc-4) | $(ratio "$(m lxc-1)" "$(m lxc-0)") | $(ratio "$(m lxc-4)" "$(m lxc-0)") | $(ratio "$(m lxc-0)" "$(m runc)") |
| lxcri, pve backend on pve-sim (PVE plugs netN) | $(m pve-0) | $(m pve-1) | $(m pve-4) | $(ratio "$(m pve-1)" "$(m pve-0)") | $(ratio "$(m pve-4)" "$(m pve-0)") | $(ratio "$(m pve-0)" "$(m runc)") |

$(for v in $variants; do echo "samples (ms) $v:${samples[$v]}"; done)
TABLE
