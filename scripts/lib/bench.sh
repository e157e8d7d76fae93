# Sourced by benches/*.sh: the release build, a private containerd with the
# busybox test image imported, and the statistics the tables print.
#
#   bench_setup NAMESPACE_PREFIX   # after the caller's EXIT trap is set
#   median < "n1 n2 ..."           # the median of whitespace-separated numbers
#   ratio A B                      # A / B with two decimals
#   paired_ratios "A1 A2.." "B1 B2.."  # Ai/Bi of runs made side by side: median, quartiles, median's 95% CI
#   timed_run IMAGE ID CTR_ARGS... # `ctr run --rm CTR_ARGS IMAGE ID true`; prints its wall time in ms
#   bench_zfs_pool SIZE            # zfs-fuse running, a sparse-file pool of SIZE: sets BENCH_POOL
#   bench_zfs_cleanup              # destroys that pool (call from the EXIT trap)

# shellcheck source=scripts/lib/private-containerd.sh
. "$(dirname "${BASH_SOURCE[0]}")/private-containerd.sh"

BENCH_IMAGE=localhost/lxcri-test/busybox:latest

bench_setup() {
  scripts/install-deps >/dev/null
  echo "building release binaries..." >&2
  cargo build --release --workspace >&2
  ctd_start "$PWD/target/release" "$1-$$-$RANDOM"
  tests/images/build-busybox-image "$CTD_DIR/busybox.tar" >/dev/null
  ctd_ctr images import "$CTD_DIR/busybox.tar" >/dev/null
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# The ratio of each pair of runs made next to each other (round i of two
# interleaved series), so that drift between rounds cancels out. Prints
# "MEDIAN Q1 Q3 CI_LOW CI_HIGH": the quartiles are the run-to-run spread; the
# CI is the distribution-free 95% interval of the median (order statistics
# n/2 -+ 0.98 sqrt(n), rounded outwards), i.e. how far the median itself
# could move in another run of the same size.
paired_ratios() {
  paste <(tr ' ' '\n' <<<"$1" | grep -v '^$') <(tr ' ' '\n' <<<"$2" | grep -v '^$') |
    awk '$2 > 0 { print $1 / $2 }' | sort -g |
    awk '{ r[NR] = $1 }
      function at(k) { if (k < 1) k = 1; if (k > NR) k = NR; return r[k] }
      function q(p,   h, l) { h = (NR - 1) * p + 1; l = int(h); return at(l) + (h - l) * (at(l + 1) - at(l)) }
      END {
        if (NR == 0) { print "n/a n/a n/a n/a n/a"; exit }
        w = 0.98 * sqrt(NR)
        printf "%.2f %.2f %.2f %.2f %.2f\n", q(0.5), q(0.25), q(0.75), at(int(NR / 2 - w)), at(int(NR / 2 + 1 + w + 0.999))
      }'
}

timed_run() {
  local img=$1 id=$2 t0 t1
  shift 2
  t0=$(date +%s%N)
  if ! ctd_ctr run --rm "$@" "$img" "$id" true >/dev/null 2>"$CTD_DIR/err"; then
    echo "ctr run --rm $* $img $id true failed:" >&2
    cat "$CTD_DIR/err" >&2
    return 1
  fi
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}

BENCH_POOL="" BENCH_POOL_DIR=""

# zfs-fuse is started when no daemon answers and left running, like the e2e
# tests; a pid file whose daemon is gone (a reused machine) is dropped first.
bench_zfs_pool() {
  local pidfile=/run/lxcri-bench-zfs-fuse.pid
  if ! zpool list >/dev/null 2>&1; then
    if [ -f "$pidfile" ] &&
      [ "$(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null)" != zfs-fuse ]; then
      rm -f "$pidfile"
    fi
    echo "starting zfs-fuse..." >&2
    zfs-fuse --pidfile "$pidfile"
    for _ in $(seq 1 50); do zpool list >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  BENCH_POOL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lxcri-bench-zfs.XXXXXX")
  BENCH_POOL=lxbench$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
  truncate -s "$1" "$BENCH_POOL_DIR/vdev"
  zpool create -o cachefile=none -m "$BENCH_POOL_DIR/mnt" "$BENCH_POOL" "$BENCH_POOL_DIR/vdev" 2>/dev/null
}

bench_zfs_cleanup() {
  if [ -n "$BENCH_POOL" ]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      zpool destroy -f "$BENCH_POOL" 2>/dev/null && break
      zpool list "$BENCH_POOL" >/dev/null 2>&1 || break
      sleep 0.5
    done
  fi
  [ -z "$BENCH_POOL_DIR" ] || rm -rf "$BENCH_POOL_DIR"
}
