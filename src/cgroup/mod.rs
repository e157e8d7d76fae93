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

/// The cgroup mount `root` and every real directory directly below it: on
/// v1 the hierarchies (a `cpu -> cpu,cpuacct` link would repeat one) and a
/// hybrid host's `unified`, so a cgroup's directory in each is
/// `<hierarchy>/<path>`.
pub fn hierarchy_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    dirs.extend(
        std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path()),
    );
    dirs
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
mod host;
mod oom;
mod path;
mod stats;

pub use container::{CgroupError, ContainerCgroup};
pub use cpuset::{CpuSet, CpuSetError};
pub use host::{HostCgroupError, HostCgroups};
pub use oom::{oom_kill_count, OomCheck, OomWatch, OomWatchError};
pub use path::{CgroupPath, CgroupPathError, CgroupPlacement, OwnCgroup};
pub use stats::{parse_flat_keyed, CgroupStats, MemoryCounters};
