#!/usr/bin/env bash
# On a hybrid cgroup host (v1 controllers, a v2 hierarchy at
# /sys/fs/cgroup/unified) whose hugetlb controller is on no v1 hierarchy,
# mounts one for it, as systemd does on such hosts: container huge page
# limits (the kubelet sends one per page size) need it, for runc and lxcri
# alike. Does nothing elsewhere (a v2 host, hugetlb mounted or in use by
# the v2 hierarchy) and when run again.
set -euo pipefail

root=/sys/fs/cgroup
[ "$(stat -f -c %T "$root" 2>/dev/null)" = tmpfs ] || exit 0
[ -e "$root/unified/cgroup.controllers" ] || exit 0
mountpoint -q "$root/hugetlb" && exit 0
# /proc/cgroups: name, hierarchy id (0: no v1 hierarchy), cgroups, enabled.
awk '$1 == "hugetlb" && $2 == 0 && $4 == 1 { found = 1 } END { exit !found }' /proc/cgroups || exit 0
# In use by the v2 hierarchy: it cannot move to v1.
if grep -qw hugetlb "$root/unified/cgroup.subtree_control"; then exit 0; fi
mkdir -p "$root/hugetlb"
mount -t cgroup -o hugetlb cgroup "$root/hugetlb"
echo "mounted the hugetlb controller's cgroup v1 hierarchy at $root/hugetlb"
