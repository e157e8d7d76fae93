//! What both backends do to a running container through the kernel: its
//! signals, its cgroup's limits, and what an exec needs to join it.

use std::fs;

use lxcri_init_spec::{ExecSpec, ProcessSpec};
use oci_spec::runtime::LinuxResources;

use super::container::Container;
use super::error::{Result, RuntimeError};
use crate::cgroup::{CgroupSetting, ContainerCgroup, HostCgroups};
use crate::pidfd;
use crate::plan::cgroup_settings;

/// A signal by its number, as containerd sends it: any Linux signal,
/// real-time ones included (systemd stops on SIGRTMIN+3), which nix's
/// `Signal` cannot name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalNumber(i32);

#[derive(Debug, thiserror::Error)]
#[error("signal {0} is not a Linux signal (1 to {max})", max = libc::SIGRTMAX())]
pub struct InvalidSignal(pub u32);

impl SignalNumber {
    pub const KILL: Self = Self(libc::SIGKILL);

    pub fn new(number: u32) -> std::result::Result<Self, InvalidSignal> {
        match i32::try_from(number) {
            Ok(n) if (1..=libc::SIGRTMAX()).contains(&n) => Ok(Self(n)),
            _ => Err(InvalidSignal(number)),
        }
    }

    pub fn number(self) -> i32 {
        self.0
    }
}

/// `signal` to the init (through a pidfd, so a reused pid is never hit),
/// or with `all` to every process of the container's cgroup.
pub fn signal(c: &Container, signal: SignalNumber, all: bool) -> Result<()> {
    if all {
        for pid in c.cgroup()?.procs()? {
            // Processes may exit while we iterate, so errors are expected.
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid, signal.number()) };
        }
        return Ok(());
    }
    signal_process(c.init_pid(), c.record.pid_start_time, signal)
}

/// `signal` to `pid` if it is still the process that started at `start`.
/// LXC's monitor reaps an init the moment it ends, and the shim records
/// the exit a little later: in between, the pid may already be another
/// process's. A pidfd holds on to whichever process has the pid when it is
/// opened, so it is checked after the open: the start time can only match
/// if that process is the init.
fn signal_process(pid: i32, start: Option<u64>, signal: SignalNumber) -> Result<()> {
    let gone = |source| RuntimeError::ProcessGone { pid, source };
    let fd = pidfd::pidfd_open(pid).map_err(gone)?;
    if !pidfd::is_live_process(std::path::Path::new("/proc"), pid, start) {
        return Err(gone(std::io::Error::from_raw_os_error(libc::ESRCH)));
    }
    pidfd::pidfd_send_signal(&fd, signal.number())
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
        // runc's update takes no huge page limits (runc update.go): they
        // stay as created, and the kubelet resizes none.
        let mut resources = resources.clone();
        resources.set_hugepage_limits(None);
        let mut settings = cgroup_settings(&resources, cgroup.version())?;
        HostCgroups::detect().adapt(&mut settings)?;
        Ok(Self { cgroup, settings })
    }

    /// Whether this update writes the cgroup file `file`.
    pub fn sets(&self, file: &str) -> bool {
        self.settings.iter().any(|s| s.file == file)
    }

    pub fn apply(self) -> Result<()> {
        let pairs = self.settings.iter();
        Ok(self
            .cgroup
            .apply(pairs.map(|s| (s.file.as_str(), s.value.as_str())))?)
    }
}

/// What `lxcri-init exec` needs to join the running container. A process
/// whose spec names no AppArmor profile gets the one the container's init
/// runs under (one LXC or PVE applied, e.g. PVE's generated profile), as
/// `lxc-attach` and so `pct exec` do: the helper starts unconfined, on the
/// host.
pub fn exec_spec(c: &Container, mut process: ProcessSpec) -> Result<ExecSpec> {
    let init_pid = c.init_pid();
    if process.apparmor_profile.is_none() {
        process.apparmor_profile = crate::security::lsm::apparmor_profile_of(init_pid);
    }
    let cgroup = match &c.cgroup {
        Some(cg) => cg.clone(),
        None => ContainerCgroup::for_pid(init_pid)?,
    };
    Ok(ExecSpec {
        init_pid,
        namespaces: namespaces_to_join(init_pid),
        cgroup_procs: cgroup
            .procs_files()
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        process,
    })
}

/// Moves an exec helper (our child, which joined the container's cgroups to
/// fork its process there) back into our own cgroups once the process
/// runs: the container's cgroups then hold the process alone, as with runc.
/// Done by us, on the host, so no namespace the helper joined has a say.
pub fn return_exec_helper(helper: i32) -> Result<()> {
    Ok(ContainerCgroup::for_pid(std::process::id() as i32)?.attach(helper)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linux_signal_is_accepted_and_nothing_else() {
        assert_eq!(SignalNumber::new(9).unwrap(), SignalNumber::KILL);
        // SIGRTMIN+3, systemd's stop signal, and SIGRTMAX.
        assert_eq!(SignalNumber::new(37).unwrap().number(), 37);
        assert_eq!(SignalNumber::new(64).unwrap().number(), 64);
        for bad in [0, 65, u32::MAX] {
            let e = SignalNumber::new(bad).unwrap_err();
            assert!(e.to_string().contains(&bad.to_string()), "{e}");
        }
    }

    #[test]
    fn only_the_process_that_started_then_is_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let started = pidfd::start_time(pid).unwrap();
        // Another process's start time: the pid counts as reused.
        let other = signal_process(pid, Some(started + 1), SignalNumber::KILL);
        assert!(
            matches!(other, Err(RuntimeError::ProcessGone { .. })),
            "{other:?}"
        );
        assert!(child.try_wait().unwrap().is_none(), "not signalled");
        signal_process(pid, Some(started), SignalNumber::KILL).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
