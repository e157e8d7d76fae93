# Sourced by benches/*.sh: the release build, a private containerd with the
# busybox test image imported, and the statistics the tables print.
#
#   bench_setup NAMESPACE_PREFIX   # after the caller's EXIT trap is set
#   median < "n1 n2 ..."           # the median of whitespace-separated numbers
#   ratio A B                      # A / B with two decimals
#   timed_run IMAGE ID CTR_ARGS... # `ctr run --rm CTR_ARGS IMAGE ID true`; prints its wall time in ms

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
