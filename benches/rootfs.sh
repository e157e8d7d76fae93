#!/usr/bin/env bash
# The rootfs modes side by side in one run (see docs/benchmarks.md):
#  1. create time: wall time of `ctr run --rm IMG ID true` for a 10 MiB and a
#     500 MiB image, in each mode: runc (overlay, the reference), lxcri
#     overlay, lxcri zfs with the image's dataset already filled (a clone),
#     and lxcri zfs on first use of the image (its dataset is destroyed
#     before every run, so the run includes the full copy of the image).
#     One warm-up run per mode, then N rounds, the order rotating each round;
#     medians.
#  2. disk: COUNT running containers of the 500 MiB image in each mode, and
#     COUNT full copies of its rootfs (`zfs create` + `cp -a`, what a
#     copy-per-container rootfs such as `pct create` from a template costs).
# Prints markdown tables.
#
#   benches/rootfs.sh [N] [COUNT]     (root; N defaults to 7, COUNT to 20)
#
# Needs zfs-fuse (scripts/install-deps installs it): starts the daemon when
# none answers and leaves it running, like the e2e tests; the pool is a
# sparse file in a temp dir, destroyed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-${N:-7}}
count=${2:-${COUNT:-20}}

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

cleanup() {
  ctd_cleanup
  bench_zfs_cleanup
}
trap cleanup EXIT

bench_setup lxcri-rootfs

# --- ZFS pool -----------------------------------------------------------
bench_zfs_pool 24G
pool=$BENCH_POOL
images=$pool/lxcri-images

cat > "$CTD_DIR/overlay.toml" <<TOML
[rootfs]
mode = "overlay"
TOML
cat > "$CTD_DIR/zfs.toml" <<TOML
[rootfs]
mode = "zfs"

[zfs]
pool = "$pool"
images = "$images"
size = "2G"
TOML

# --- images -------------------------------------------------------------
snapshots=$CTD_DIR/root/io.containerd.snapshotter.v1.overlayfs/snapshots
# Bytes under a dir (snapshots that containerd removes meanwhile are skipped).
du_bytes() { { du -sxB1 "$1" 2>/dev/null || true; } | cut -f1; }
# settled CMD ARGS...: the number CMD prints once it stops changing (two
# readings 2 s apart agree): containerd removes snapshots of removed
# containers in the background, and ZFS accounts writes when a transaction
# group commits, seconds later.
settled() {
  local a b
  a=$("$@")
  for _ in $(seq 1 20); do
    sleep 2
    b=$("$@")
    [ "$a" = "$b" ] && break
    a=$b
  done
  echo "$a"
}
zfs_used() { zfs get -Hp -o value used "$1"; }
declare -A image layer_bytes
for mb in 10 500; do
  image[$mb]=localhost/lxcri-bench/filled-$mb:latest
  echo "building and importing the ${mb} MiB image..." >&2
  before=$(du_bytes "$snapshots")
  IMAGE_REF=${image[$mb]} IMAGE_SIZE_MB=$mb \
    tests/images/build-busybox-image "$CTD_DIR/img-$mb.tar" "$CTD_DIR/rootfs-$mb" >/dev/null
  ctd_ctr images import "$CTD_DIR/img-$mb.tar" >/dev/null
  rm -f "$CTD_DIR/img-$mb.tar"
  layer_bytes[$mb]=$(($(du_bytes "$snapshots") - before))
done

# --- 1. create time -----------------------------------------------------
modes="runc overlay zfs-clone zfs-first-use"

# zfs_destroy ARGS...: `zfs destroy`, retried while the dataset is busy (a
# dataset just read from, or whose clone was just destroyed, can be for a
# moment; lxcri retries the same way).
zfs_destroy() {
  local i
  for i in $(seq 1 40); do
    zfs destroy "$@" 2>"$CTD_DIR/zfs-err" && return 0
    grep -q busy "$CTD_DIR/zfs-err" || break
    sleep 0.25
  done
  cat "$CTD_DIR/zfs-err" >&2
  return 1
}

# Destroys every image dataset, so the next zfs run fills its image anew.
forget_images() {
  local d
  for d in $(zfs list -H -o name -d 1 -t filesystem "$images" 2>/dev/null | tail -n +2); do
    zfs_destroy -r "$d"
  done
}

# run_once MODE IMAGE ID: one `ctr run --rm ... true`; prints its wall time in ms.
run_once() {
  local mode=$1 img=$2 id=$3 args
  case "$mode" in
    runc) args=(--runtime io.containerd.runc.v2) ;;
    overlay) args=(--runtime io.containerd.lxcri.v2 "--runtime-config-path=$CTD_DIR/overlay.toml") ;;
    zfs-clone) args=(--runtime io.containerd.lxcri.v2 "--runtime-config-path=$CTD_DIR/zfs.toml") ;;
    zfs-first-use)
      forget_images
      args=(--runtime io.containerd.lxcri.v2 "--runtime-config-path=$CTD_DIR/zfs.toml") ;;
  esac
  timed_run "$img" "$id" "${args[@]}"
}

declare -A samples med
for mb in 10 500; do
  echo "create time, ${mb} MiB image: warm-up, then $n rounds..." >&2
  for mode in $modes; do run_once "$mode" "${image[$mb]}" "warm-$mode-$mb" >/dev/null; done
  for mode in $modes; do samples[$mode-$mb]=""; done
  order=($modes)
  for i in $(seq 1 "$n"); do
    for mode in "${order[@]}"; do
      samples[$mode-$mb]+=" $(run_once "$mode" "${image[$mb]}" "t-$mode-$mb-$i")"
    done
    order=("${order[@]:1}" "${order[0]}")
  done
  for mode in $modes; do med[$mode-$mb]=$(echo "${samples[$mode-$mb]}" | median); done
done

# --- 2. disk used by COUNT containers of the 500 MiB image ----------------
img=${image[500]}
echo "disk: $count containers of the 500 MiB image per mode..." >&2
# start_many MODE: COUNT `sleep` containers; prints nothing.
start_many() {
  local mode=$1 i
  for i in $(seq 1 "$count"); do
    ctd_ctr run -d --runtime io.containerd.lxcri.v2 "--runtime-config-path=$CTD_DIR/$mode.toml" \
      "$img" "disk-$mode-$i" sleep 1000 >/dev/null
  done
}
stop_many() {
  local mode=$1 i
  for i in $(seq 1 "$count"); do
    ctd_ctr task kill -s SIGKILL "disk-$mode-$i" >/dev/null 2>&1 || true
  done
  for i in $(seq 1 "$count"); do
    for _ in $(seq 1 50); do
      ctd_ctr task rm "disk-$mode-$i" >/dev/null 2>&1 && break
      sleep 0.1
    done
    ctd_ctr containers rm "disk-$mode-$i" >/dev/null
  done
}

# overlay: the image's layer once (containerd's), plus an upper dir each.
snap0=$(settled du_bytes "$snapshots")
start_many overlay
overlay_added=$(($(settled du_bytes "$snapshots") - snap0))
stop_many overlay

# zfs: the image's dataset once (filled above), plus a clone each (and
# containerd's empty active snapshot each, counted too).
image_ds_bytes=$(settled zfs_used "$images")
pool0=$(settled zfs_used "$pool") snap0=$(settled du_bytes "$snapshots")
start_many zfs
zfs_added=$(($(settled zfs_used "$pool") - pool0 + $(settled du_bytes "$snapshots") - snap0))
stop_many zfs

# full copy: COUNT datasets, each with its own copy of the image's rootfs.
pool0=$(settled zfs_used "$pool")
for i in $(seq 1 "$count"); do
  zfs create "$pool/copy-$i"
  cp -a "$CTD_DIR/rootfs-500/." "$BENCH_POOL_DIR/mnt/copy-$i/"
done
sync
copy_added=$(($(settled zfs_used "$pool") - pool0))
for i in $(seq 1 "$count"); do zfs_destroy "$pool/copy-$i"; done

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
row() { # MODE LABEL
  printf '| %s | %s | %s | %s |\n' "$2" "${med[$1-10]}" "${med[$1-500]}" "$(ratio "${med[$1-500]}" "${med[$1-10]}")"
}
cat <<TABLE

Measured $(date -u +%Y-%m-%d) on $(uname -r), $(nproc) CPUs; N=$n, COUNT=$count; command: benches/rootfs.sh $n $count

Create time: \`ctr run --rm IMG ID true\`, median ms

| mode | 10 MiB image | 500 MiB image | 500/10 |
|---|---|---|---|
$(row runc "runc (overlay)")
$(row overlay "lxcri, rootfs.mode = overlay")
$(row zfs-clone "lxcri, rootfs.mode = zfs (clone of the filled image)")
$(row zfs-first-use "lxcri, rootfs.mode = zfs, first use (full copy into the image dataset)")

Target: zfs clone 500/10 <= 1.1.

Disk used by $count running containers of the 500 MiB image

| mode | stored once | added by $count containers | total |
|---|---|---|---|
| overlay | $(mib "${layer_bytes[500]}") MiB (containerd's layer) | $(mib "$overlay_added") MiB | $(mib $((layer_bytes[500] + overlay_added))) MiB |
| zfs clones | $(mib "$image_ds_bytes") MiB (image dataset; containerd's layer besides) | $(mib "$zfs_added") MiB | $(mib $((image_ds_bytes + zfs_added))) MiB |
| full copy | - | $(mib "$copy_added") MiB | $(mib "$copy_added") MiB |

samples (ms):
$(for mb in 10 500; do for mode in $modes; do echo "  $mode $mb MiB:${samples[$mode-$mb]}"; done; done)
TABLE
