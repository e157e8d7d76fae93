//! A process's cgroups seen from the host, for tests that read what the
//! kernel applies to a container (runc limits the container's own cgroup;
//! PVE limits `lxc/VMID` and runs the processes in `lxc/VMID/ns`).

use std::path::{Path, PathBuf};

use lxcri::cgroup::ContainerCgroup;

/// The cgroup of `controller` that `pid` is in, and each one above it up
/// to the hierarchy's root cgroup: the limits of the whole chain apply.
/// `controller` on the v2 hierarchy of a hybrid host is found there.
pub fn chain(pid: u32, controller: &str) -> Vec<PathBuf> {
    let cgroup = ContainerCgroup::for_pid(pid as i32).expect("the cgroups of the process");
    let dir = cgroup
        .process_dir(controller)
        .or_else(|_| cgroup.process_dir("unified"))
        .unwrap_or_else(|e| panic!("{e}"));
    dir.ancestors()
        .take_while(|d| d.join("cgroup.procs").exists())
        .map(Path::to_path_buf)
        .collect()
}

/// The cgroup of `controller` that `pid` is in (the first of [`chain`]).
pub fn process_dir(pid: u32, controller: &str) -> PathBuf {
    chain(pid, controller).swap_remove(0)
}

/// The container's own cgroup of `controller` for process `pid` (on
/// PVE's layout the CT's, above `ns`); `None` when no hierarchy has it.
pub fn own_dir(pid: u32, controller: &str) -> Option<PathBuf> {
    let cgroup = ContainerCgroup::for_pid(pid as i32).ok()?.with_inner("ns");
    cgroup.dir(controller).ok().map(Path::to_path_buf)
}

/// The memory limit `pid` lives under: the lowest of its cgroup's and each
/// one's above it (v1 `memory.limit_in_bytes`, v2 `memory.max`; `max` is
/// none).
pub fn memory_limit(pid: u32) -> u64 {
    chain(pid, "memory")
        .iter()
        .filter_map(|d| {
            std::fs::read_to_string(d.join("memory.limit_in_bytes"))
                .or_else(|_| std::fs::read_to_string(d.join("memory.max")))
                .ok()
        })
        .map(|v| v.trim().parse::<u64>().unwrap_or(u64::MAX))
        .min()
        .unwrap_or(u64::MAX)
}
