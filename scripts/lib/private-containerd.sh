# Sourced by scripts/demo and benches/e2e.sh: a private containerd with its
# own root, state, sockets and config under a temp dir, and a cleanup that
# removes everything it and its shims made. (The Rust e2e harness in
# tests/e2e/src does the same for the tests.)
#
#   ctd_start BIN_DIR NAMESPACE   # sets CTD_DIR CTD_SOCK CTD_PID CTD_NS;
#                                 # CTD_METRICS_ADDRESS (HOST:PORT) serves /v1/metrics
#   ctd_ctr ARGS...               # ctr against it, in CTD_NS
#   ctd_cleanup                   # idempotent; call from an EXIT trap
#
# The lxcri shim keeps LXC containers under /var/lib/lxcri/lxc named
# <namespace>_<id> and runtime dirs under /run/lxcri/<namespace>.

CTD_DIR="" CTD_SOCK="" CTD_PID="" CTD_NS=""

ctd_start() {
  local bin_dir=$1
  CTD_NS=$2
  CTD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lxcri-ctd.XXXXXX")
  CTD_SOCK=$CTD_DIR/c.sock
  cat > "$CTD_DIR/config.toml" <<TOML
version = 2
root = "$CTD_DIR/root"
state = "$CTD_DIR/state"

[grpc]
  address = "$CTD_SOCK"
[ttrpc]
  address = "$CTD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = "${CTD_METRICS_ADDRESS:-}"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTD_DIR/opt"

# What a node needs for Kubernetes: the lxcri runtime for the CRI plugin
# (RuntimeClass handler "lxcri"). ctr needs no config for it:
# --runtime io.containerd.lxcri.v2 finds containerd-shim-lxcri-v2 on PATH.
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri]
    runtime_type = "io.containerd.lxcri.v2"
TOML
  PATH="$bin_dir:$PATH" containerd --config "$CTD_DIR/config.toml" \
    > "$CTD_DIR/containerd.log" 2>&1 &
  CTD_PID=$!
  local i
  for i in $(seq 1 150); do
    if ctd_ctr version >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$CTD_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "containerd did not start; its log:" >&2
  tail -n 30 "$CTD_DIR/containerd.log" >&2
  return 1
}

ctd_ctr() {
  ctr --address "$CTD_SOCK" --namespace "$CTD_NS" --connect-timeout 10s "$@"
}

# ctd_ctr with a deadline: _ctd_ctr_t SECONDS ARGS...
_ctd_ctr_t() {
  local t=$1; shift
  timeout "$t" ctr --address "$CTD_SOCK" --namespace "$CTD_NS" --connect-timeout 10s "$@"
}

# pids of processes whose command line mentions $1 (never this shell).
_ctd_pids_mentioning() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [ "$pid" = $$ ] && continue
    tr '\0' ' ' < "$f" 2>/dev/null | grep -qF -- "$1" && echo "$pid"
  done
  return 0
}

ctd_cleanup() {
  [ -n "$CTD_DIR" ] || return 0
  local id pid i name m
  if [ -n "$CTD_PID" ] && kill -0 "$CTD_PID" 2>/dev/null; then
    for id in $(_ctd_ctr_t 20 task ls -q 2>/dev/null); do
      _ctd_ctr_t 20 task kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(_ctd_ctr_t 20 task ls -q 2>/dev/null); do
      _ctd_ctr_t 30 task rm -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(_ctd_ctr_t 20 containers ls -q 2>/dev/null); do
      _ctd_ctr_t 30 containers rm "$id" >/dev/null 2>&1 || true
    done
    kill -TERM "$CTD_PID" 2>/dev/null || true
    for i in $(seq 1 75); do kill -0 "$CTD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$CTD_PID" 2>/dev/null || true
    wait "$CTD_PID" 2>/dev/null || true
  fi
  # Shims (and anything else) started for this containerd or namespace.
  for pid in $(_ctd_pids_mentioning "$CTD_SOCK") $(_ctd_pids_mentioning "$CTD_NS"); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -d "/run/containerd/runc/$CTD_NS" ]; then
    for id in $(ls "/run/containerd/runc/$CTD_NS"); do
      runc --root "/run/containerd/runc/$CTD_NS" delete --force "$id" >/dev/null 2>&1 || true
    done
    rm -rf "/run/containerd/runc/$CTD_NS"
  fi
  if [ -d /var/lib/lxcri/lxc ]; then
    for name in $(ls /var/lib/lxcri/lxc | grep -F "${CTD_NS}_" || true); do
      timeout 30 lxc-stop -P /var/lib/lxcri/lxc -n "$name" -k >/dev/null 2>&1 || true
    done
  fi
  # Mounts below our dirs, deepest first.
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($CTD_DIR|/run/lxcri/$CTD_NS|/var/lib/lxcri/lxc/${CTD_NS}_)" | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "/run/lxcri/$CTD_NS"
  for name in /var/lib/lxcri/lxc/"${CTD_NS}"_*; do
    [ -e "$name" ] && rm -rf "$name"
  done
  # Empty cgroups named after the namespace (runc leaves /<ns>), deepest first.
  find /sys/fs/cgroup -mindepth 1 -maxdepth 6 -type d -path "*${CTD_NS}*" 2>/dev/null \
    | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- \
    | while read -r m; do rmdir "$m" 2>/dev/null || true; done
  rm -rf "$CTD_DIR"
  CTD_DIR=""
}
