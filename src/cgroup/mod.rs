//! The container's cgroup: which hierarchy the host uses, stats, freezer,
//! and resource updates.

use std::path::{Path, PathBuf};

/// Which cgroup interface carries the resource controllers on this host.
///
/// A hybrid host (v1 controllers, plus an empty v2 hierarchy at
/// `/sys/fs/cgroup/unified`) is [`CgroupVersion::V1`]: limits must be
/// written through the v1 files. PVE 9 is v2-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    /// Detects the layout from a cgroup mount root (normally `/sys/fs/cgroup`).
    pub fn detect(root: &Path) -> Self {
        if root.join("cgroup.controllers").exists() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }
}

/// The `(controllers, path)` of each line of a `/proc/<pid>/cgroup`
/// (`ID:controllers:/path`; controllers empty for the v2 hierarchy).
pub(crate) fn proc_cgroup_entries(content: &str) -> impl Iterator<Item = (&str, &str)> {
    content.lines().filter_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        Some((controllers, path))
    })
}

/// The hierarchies of the cgroup mount `root`, so that a cgroup's
/// directory in each is `<hierarchy>/<path>`: `root` itself on a v2 host;
/// on v1 and hybrid hosts each cgroup mount directly below it (`memory`,
/// `cpu,cpuacct`, `systemd`, a hybrid host's `unified`). Only a cgroup
/// mount has `cgroup.procs` at its top: a plain directory in the tmpfs
/// above them is none, and a `cpu -> cpu,cpuacct` link would repeat one.
pub fn hierarchy_dirs(root: &Path) -> Vec<PathBuf> {
    let is_hierarchy = |dir: &Path| dir.join("cgroup.procs").is_file();
    if is_hierarchy(root) {
        return vec![root.to_path_buf()];
    }
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|dir| is_hierarchy(dir))
        .collect()
}

/// A cgroup interface file and the value to write into it, e.g.
/// `memory.max` = `1073741824`. Used for `lxc.cgroup[2].<file>` and by
/// `update`, which writes the same values into the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupSetting {
    pub file: String,
    pub value: String,
}

impl CgroupSetting {
    pub fn new(file: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            value: value.into(),
        }
    }
}

pub mod attach_lock;
mod container;
mod cpuset;
mod flat_keyed;
mod host;
mod oom;
mod path;
mod stats;
mod stats_v1;
mod stats_v2;

pub use container::{CgroupError, ContainerCgroup};
pub use cpuset::{CpuSet, CpuSetError};
pub use flat_keyed::parse_flat_keyed;
pub use host::{HostCgroupError, HostCgroups};
pub use oom::{oom_kill_count, OomCheck, OomWatch, OomWatchError};
pub use path::{CgroupPath, CgroupPathError, CgroupPlacement, OwnCgroup};
pub use stats::{CgroupStats, MemoryCounters};
pub use stats_v1::{BlkioEntry, BlkioStats, HugetlbCounters, OomControl};
pub use stats_v2::{IoEntry, MemoryEvents, Psi, PsiData, RdmaEntry, V2Counters};

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn hierarchies_are_the_cgroup_mounts_only() {
        let tmp = tempfile::tempdir().unwrap();
        // Hybrid: a tmpfs with v1 mounts, `unified`, a link and a stray
        // directory someone made in the tmpfs.
        let hybrid = tmp.path().join("hybrid");
        for h in ["memory", "cpu,cpuacct", "unified"] {
            fs::create_dir_all(hybrid.join(h).join("child")).unwrap();
            fs::write(hybrid.join(h).join("cgroup.procs"), "").unwrap();
        }
        fs::create_dir_all(hybrid.join("stray/child")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", hybrid.join("cpu")).unwrap();
        let mut found = hierarchy_dirs(&hybrid);
        found.sort();
        let names: Vec<_> = found.iter().map(|d| d.file_name().unwrap()).collect();
        assert_eq!(names, ["cpu,cpuacct", "memory", "unified"]);
        // v2: the root alone, not the cgroups below it.
        let v2 = tmp.path().join("v2");
        fs::create_dir_all(v2.join("system.slice")).unwrap();
        fs::write(v2.join("cgroup.procs"), "").unwrap();
        fs::write(v2.join("system.slice/cgroup.procs"), "").unwrap();
        assert_eq!(hierarchy_dirs(&v2), vec![v2]);
    }
}
