#!/usr/bin/env bash
# The create-time cost of user namespaces (see docs/benchmarks.md): wall
# time of `ctr run --rm IMG ID true`, in one run:
#   runc          plain, the reference
#   runc-uidmap   `--uidmap/--gidmap 0:2000000:65536` (ctr chowns a copy of
#                 the snapshot once per mapping; reused afterwards)
#   overlay       lxcri, overlay mode
#   overlay-userns  lxcri with userns.unprivileged: the image layers as
#                 idmapped mounts (no copy)
#   zfs           lxcri, zfs mode (a clone of the filled image)
#   zfs-userns-reuse  zfs + userns.unprivileged, the range's shifted image
#                 already made (the same container id takes the same range)
#   zfs-userns-first  zfs + userns.unprivileged, the range's shifted image
#                 destroyed before every run (clone + chown walk each time)
# One warm-up run per variant, then N rounds, the order rotating each
# round; medians. Prints a markdown table.
#
#   benches/userns.sh [N]        (root; N defaults to 7)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-${N:-7}}

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

cleanup() {
  ctd_cleanup
  bench_zfs_cleanup
}
trap cleanup EXIT
bench_setup lxcri-bench-userns
image=$BENCH_IMAGE
# A container's root must reach its bundle under the private containerd's
# state dir (mktemp makes it 0700).
chmod 0711 "$CTD_DIR"

bench_zfs_pool 4G
pool=$BENCH_POOL
images=$pool/lxcri-images

printf '[rootfs]\nmode = "overlay"\n' > "$CTD_DIR/overlay.toml"
printf '[rootfs]\nmode = "overlay"\n[userns]\nunprivileged = true\n' > "$CTD_DIR/overlay-userns.toml"
zfs_toml() {
  printf '[rootfs]\nmode = "zfs"\n[zfs]\npool = "%s"\nimages = "%s"\nsize = "1G"\n' "$pool" "$images"
}
zfs_toml > "$CTD_DIR/zfs.toml"
{ zfs_toml; printf '[userns]\nunprivileged = true\n'; } > "$CTD_DIR/zfs-userns.toml"

# The shifted images (clones of an image) once their containers are gone.
destroy_shifted() {
  local d origin
  zfs list -H -o name,origin -r "$images" 2>/dev/null | while read -r d origin; do
    [ "$origin" != "-" ] || continue
    for _ in $(seq 1 40); do zfs destroy -r "$d" 2>/dev/null && break; sleep 0.25; done
  done
}

variants="runc runc-uidmap overlay overlay-userns zfs zfs-userns-reuse zfs-userns-first"
declare -A samples=()
lxcri() { echo --runtime io.containerd.lxcri.v2 --runtime-config-path "$CTD_DIR/$1.toml"; }
run_once() {
  local v=$1 id=$2
  case $v in
    runc) timed_run "$image" "$id" --runtime io.containerd.runc.v2 ;;
    runc-uidmap) timed_run "$image" "$id" --runtime io.containerd.runc.v2 \
      --uidmap 0:2000000:65536 --gidmap 0:2000000:65536 ;;
    overlay | overlay-userns | zfs)
      # shellcheck disable=SC2046
      timed_run "$image" "$id" $(lxcri "$v") ;;
    # The same id, so the same range and its shifted image.
    zfs-userns-reuse)
      # shellcheck disable=SC2046
      timed_run "$image" zu-reuse $(lxcri zfs-userns) ;;
    zfs-userns-first)
      destroy_shifted
      # shellcheck disable=SC2046
      timed_run "$image" zu-first $(lxcri zfs-userns) ;;
  esac
}

echo "warm-up..." >&2
for v in $variants; do run_once "$v" "warm-$v" >/dev/null; done
echo "$n interleaved runs per variant..." >&2
read -r -a order <<< "$variants"
for i in $(seq 1 "$n"); do
  shift_by=$((i % ${#order[@]}))
  for v in "${order[@]:shift_by}" "${order[@]:0:shift_by}"; do
    samples[$v]+=" $(run_once "$v" "un-$v-$i")"
  done
done

m() { echo "${samples[$1]}" | median; }
cat <<TABLE

Measured $(date -u +%Y-%m-%d) on $(uname -r), $(nproc) CPUs; N=$n; command: benches/userns.sh $n

| \`ctr run --rm IMG true\`, median ms | without a user namespace | with one | with / without | with / runc with one |
|---|---|---|---|---|
| runc (\`--uidmap\`: ctr's chowned copy, made once) | $(m runc) | $(m runc-uidmap) | $(ratio "$(m runc-uidmap)" "$(m runc)") | 1.00 |
| lxcri overlay (\`userns.unprivileged\`: idmapped layers) | $(m overlay) | $(m overlay-userns) | $(ratio "$(m overlay-userns)" "$(m overlay)") | $(ratio "$(m overlay-userns)" "$(m runc-uidmap)") |
| lxcri zfs, the range's image made (clone of a clone) | $(m zfs) | $(m zfs-userns-reuse) | $(ratio "$(m zfs-userns-reuse)" "$(m zfs)") | $(ratio "$(m zfs-userns-reuse)" "$(m runc-uidmap)") |
| lxcri zfs, first container of a range (clone + shift) | $(m zfs) | $(m zfs-userns-first) | $(ratio "$(m zfs-userns-first)" "$(m zfs)") | $(ratio "$(m zfs-userns-first)" "$(m runc-uidmap)") |

$(for v in $variants; do echo "samples (ms) $v:${samples[$v]}"; done)
TABLE
