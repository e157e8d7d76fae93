//! What PVE's hotplug writes into a running CT's cgroup that an OCI update
//! does not set, put back as it was.
//!
//! `PUT .../config` of a running CT writes the new `memory`, `swap`,
//! `cpulimit` and `cpuunits` into the CT's cgroup (pve-container
//! src/PVE/LXC/Config.pm `vmconfig_hotplug_pending`, pve-common
//! src/PVE/CGroup.pm `change_memory_limit`, `change_cpu_quota`,
//! `change_cpu_shares`); lxcri then writes the exact OCI values. Where PVE
//! writes a file the update leaves alone, runc would have left it as it was:
//! - v2 `memory.high`: with a new memory PVE sets it to about 99.2 % of it
//!   (`calculate_memory_constraints`), so the container would be throttled
//!   below its limit;
//! - v1 `memory.memsw.limit_in_bytes`: with a new memory and no swap PVE
//!   moves it to the new memory plus the old swap;
//! - v1 `cpu.cfs_period_us`: with a `cpulimit` PVE sets it to 100000.
//!
//! So those files are read before the PUT and written back after the exact
//! values (v1's memsw after the memory, which it may never be below).

use crate::cgroup::{CgroupVersion, ContainerCgroup};
use crate::runtime::error::{PveBackendError, Result};

/// The cgroup files PVE's hotplug writes for these `PUT .../config`
/// parameters (it skips a value equal to the config's, which changes
/// nothing here: that file is written back as it is).
fn pve_writes(params: &[(String, String)], version: CgroupVersion) -> Vec<&'static str> {
    let sent = |key: &str| params.iter().any(|(k, _)| k == key);
    let mut files = Vec::new();
    match version {
        CgroupVersion::V2 => {
            if sent("swap") {
                files.push("memory.swap.max");
            }
            if sent("memory") {
                files.extend(["memory.high", "memory.max"]);
            }
            if sent("cpulimit") {
                files.push("cpu.max");
            }
            if sent("cpuunits") {
                files.push("cpu.weight");
            }
        }
        // v1 changes memory and memory+swap together, whichever is sent.
        CgroupVersion::V1 => {
            if sent("memory") || sent("swap") {
                files.extend(["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]);
            }
            if sent("cpulimit") {
                files.extend(["cpu.cfs_period_us", "cpu.cfs_quota_us"]);
            }
            if sent("cpuunits") {
                files.push("cpu.shares");
            }
        }
    }
    files
}

/// What PVE's hotplug writes and the update (`update_sets`: whether it
/// writes a file) does not.
pub fn left_to_pve(
    params: &[(String, String)],
    version: CgroupVersion,
    update_sets: impl Fn(&str) -> bool,
) -> Vec<&'static str> {
    pve_writes(params, version)
        .into_iter()
        .filter(|f| !update_sets(f))
        .collect()
}

/// Cgroup files of CT `vmid` as they were before PVE's hotplug.
#[derive(Debug, PartialEq, Eq)]
pub struct Kept {
    vmid: u32,
    files: Vec<(&'static str, String)>,
}

impl Kept {
    /// Reads `files` from the container's cgroup (PVE's limiting one,
    /// `lxc/VMID`, where it writes them).
    pub fn read(vmid: u32, cgroup: &ContainerCgroup, files: &[&'static str]) -> Result<Kept> {
        let mut kept = Vec::new();
        for &file in files {
            let value = cgroup
                .read(file)
                .map_err(|source| PveBackendError::Hotplug {
                    vmid,
                    step: "reading",
                    file,
                    source,
                })?;
            kept.push((file, value.trim().to_string()));
        }
        Ok(Kept { vmid, files: kept })
    }

    /// Writes the files back, in the order they were read.
    pub fn put_back(&self, cgroup: &ContainerCgroup) -> Result<()> {
        for &(file, ref value) in &self.files {
            cgroup
                .write(file, value)
                .map_err(|source| PveBackendError::Hotplug {
                    vmid: self.vmid,
                    step: "putting back",
                    file,
                    source,
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
