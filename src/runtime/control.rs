//! What both backends do to a running container through the kernel: its
//! signals, its cgroup's limits, and what an exec needs to join it.

use std::fs;

use lxcri_init_spec::{ExecSpec, ProcessSpec};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::container::Container;
use super::error::{Result, RuntimeError};
use crate::cgroup::{CgroupSetting, ContainerCgroup, HostCgroups};
use crate::pidfd;
use crate::plan::cgroup_settings;

/// `signal` to the init (through a pidfd, so a reused pid is never hit),
/// or with `all` to every process of the container's cgroup.
pub fn signal(c: &Container, signal: Signal, all: bool) -> Result<()> {
    if all {
        for pid in c.cgroup()?.procs()? {
            // Processes may exit while we iterate.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
        return Ok(());
    }
    let pid = c.init_pid();
    let fd = pidfd::pidfd_open(pid).map_err(|source| RuntimeError::ProcessGone { pid, source })?;
    pidfd::pidfd_send_signal(&fd, signal as i32)
        .map_err(|source| RuntimeError::Signal { pid, source })
}

/// Writes new limits into the container's cgroup: the same files, checks
/// and host adaptations as create.
pub fn update_cgroup(c: &Container, resources: &LinuxResources) -> Result<()> {
    CgroupUpdate::check(c, resources)?.apply()
}

/// New limits for a container's cgroup, checked and adapted to the host,
/// not written yet.
pub struct CgroupUpdate<'a> {
    cgroup: &'a ContainerCgroup,
    settings: Vec<CgroupSetting>,
}

impl<'a> CgroupUpdate<'a> {
    pub fn check(c: &'a Container, resources: &LinuxResources) -> Result<Self> {
        let cgroup = c.cgroup()?;
        let mut settings = cgroup_settings(resources, cgroup.version())?;
        HostCgroups::detect().adapt(&mut settings)?;
        Ok(Self { cgroup, settings })
    }

    pub fn apply(self) -> Result<()> {
        let pairs = self.settings.iter();
        Ok(self
            .cgroup
            .apply(pairs.map(|s| (s.file.as_str(), s.value.as_str())))?)
    }
}

/// What `lxcri-init exec` needs to join the running container.
pub fn exec_spec(c: &Container, process: ProcessSpec) -> Result<ExecSpec> {
    let init_pid = c.init_pid();
    let cgroup = match &c.cgroup {
        Some(cg) => cg.clone(),
        None => ContainerCgroup::for_pid(init_pid)?,
    };
    let mut cgroup_procs: Vec<String> = cgroup
        .process_dirs()
        .map(|d| d.join("cgroup.procs").to_string_lossy().into_owned())
        .collect();
    cgroup_procs.sort();
    cgroup_procs.dedup();
    Ok(ExecSpec {
        init_pid,
        namespaces: namespaces_to_join(init_pid),
        cgroup_procs,
        process,
    })
}

/// The namespaces of `pid` that differ from ours, `user` next to last: the
/// node's root may join any namespace, but inside a user namespace no
/// longer one the node owns (a pod's network under `userns.unprivileged`).
/// `mnt` last: joining it changes what `/proc` paths mean.
pub fn namespaces_to_join(pid: i32) -> Vec<String> {
    const ORDER: [&str; 8] = ["cgroup", "ipc", "uts", "net", "pid", "time", "user", "mnt"];
    ORDER
        .iter()
        .filter(|ns| {
            let theirs = fs::read_link(format!("/proc/{pid}/ns/{ns}"));
            let ours = fs::read_link(format!("/proc/self/ns/{ns}"));
            matches!((theirs, ours), (Ok(t), Ok(o)) if t != o)
        })
        .map(|s| s.to_string())
        .collect()
}
