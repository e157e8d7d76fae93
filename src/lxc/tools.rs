//! The `lxc-*` tools, as lxcri drives them (PVE itself runs containers
//! with `lxc-start`, so the same mechanics work on a PVE node): start,
//! state, stop, and removing what LXC leaves of a container.
//!
//! Each container is `<lxcpath>/<name>/config` plus its `lxc.log`; the
//! rootfs is not managed by LXC (`lxc.rootfs.managed = 0`), so removing a
//! container is removing that directory (and LXC's cgroups for it). Every
//! command runs through [`CommandRunner`], with a deadline.
//!
//! A container started inside another network namespace
//! ([`super::Namespaces::inherit_net`]) has its monitor there, and LXC's
//! command socket is an abstract unix socket (lxc 5.0.2 src/lxc/commands.c
//! `lxc_cmd_connect`), reachable from that namespace only: the namespace's
//! path is kept next to the config ([`NETNS_FILE`]) and every `lxc-*` tool
//! for the container runs there, through `nsenter`.

use std::ffi::OsString;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::placed_cgroups::{self, PlacedCgroupError};
use crate::cgroup::{CgroupPath, CgroupPathError};
use crate::command::{display, CommandRunner, SystemCommands};

#[derive(Debug, thiserror::Error)]
pub enum LxcToolsError {
    #[error("writing LXC config {path}: {source}")]
    WriteConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("running `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {detail}")]
    Failed {
        command: String,
        status: String,
        detail: String,
    },
    #[error("removing LXC container directory {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing LXC's cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },
    #[error(transparent)]
    Placed(#[from] PlacedCgroupError),
}

pub type Result<T> = std::result::Result<T, LxcToolsError>;

/// LXC log file name inside the container directory.
pub const LOG_FILE: &str = "lxc.log";
/// The network namespace the container's monitor runs in, if not the
/// node's: a path, in the container directory.
pub const NETNS_FILE: &str = "lxcri.netns";

#[derive(Debug, Clone)]
pub struct LxcTools<R: CommandRunner = SystemCommands> {
    lxcpath: PathBuf,
    log_level: String,
    runner: R,
    /// Where the host's cgroup hierarchies are mounted (`/sys/fs/cgroup`).
    cgroup_root: PathBuf,
}

/// LXC's names for a container's cgroups: its monitor's and its own.
const LXC_CGROUP_PREFIXES: [&str; 2] = ["lxc.monitor.", "lxc.payload."];

/// The monitor's cgroup of container `name` when its own is placed with
/// `lxc.cgroup.dir.container` (LXC then needs both): LXC's usual name.
pub fn monitor_cgroup(name: &str) -> std::result::Result<CgroupPath, CgroupPathError> {
    CgroupPath::parse(&format!("{}{name}", LXC_CGROUP_PREFIXES[0]))
}
/// How long `remove` waits for LXC's monitor to leave its cgroup.
const MONITOR_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

impl LxcTools<SystemCommands> {
    pub fn new(lxcpath: impl Into<PathBuf>, log_level: impl Into<String>) -> Self {
        Self::with_runner(lxcpath, log_level, SystemCommands::default())
    }
}

impl<R: CommandRunner> LxcTools<R> {
    pub fn with_runner(
        lxcpath: impl Into<PathBuf>,
        log_level: impl Into<String>,
        runner: R,
    ) -> Self {
        Self {
            lxcpath: lxcpath.into(),
            log_level: log_level.into(),
            runner,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    pub fn lxcpath(&self) -> &Path {
        &self.lxcpath
    }

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.lxcpath.join(name)
    }

    /// Writes the container's config; `netns`: the network namespace it is
    /// to be started in (see the module's notes).
    pub fn write_config(&self, name: &str, rendered: &str, netns: Option<&Path>) -> Result<()> {
        let dir = self.container_dir(name);
        let write = |path: PathBuf, body: &[u8]| {
            crate::owner_only::write(&path, body)
                .map_err(|source| LxcToolsError::WriteConfig { path, source })
        };
        fs::create_dir_all(&dir).map_err(|source| LxcToolsError::WriteConfig {
            path: dir.clone(),
            source,
        })?;
        if let Some(netns) = netns {
            write(dir.join(NETNS_FILE), netns.as_os_str().as_encoded_bytes())?;
        }
        write(dir.join("config"), rendered.as_bytes())
    }

    /// The program and arguments that run `program` for container `name`:
    /// inside its monitor's network namespace when that is not the node's.
    fn command_for(
        &self,
        name: &str,
        program: &str,
        args: Vec<OsString>,
    ) -> (String, Vec<OsString>) {
        let Ok(netns) = fs::read(self.container_dir(name).join(NETNS_FILE)) else {
            return (program.to_string(), args);
        };
        let mut net = OsString::from("--net=");
        net.push(std::ffi::OsStr::from_bytes(&netns));
        let mut wrapped = vec![net, "--".into(), program.into()];
        wrapped.extend(args);
        ("nsenter".to_string(), wrapped)
    }

    fn base_args(&self, name: &str) -> Vec<OsString> {
        vec![
            "-n".into(),
            name.into(),
            "-P".into(),
            self.lxcpath.clone().into_os_string(),
        ]
    }

    /// Runs `program` for container `name`; returns its output and how it
    /// was run (for errors).
    fn run(
        &self,
        name: &str,
        program: &str,
        args: Vec<OsString>,
    ) -> Result<(std::process::Output, String)> {
        let (program, args) = self.command_for(name, program, args);
        let command = display(&program, &args);
        match self.runner.run(&program, &args) {
            Ok(out) => Ok((out, command)),
            Err(source) => Err(LxcToolsError::Spawn { command, source }),
        }
    }

    /// Starts the container daemonized; returns once LXC has started its
    /// init (which then waits for the shim), or fails with LXC's own words.
    pub fn start(&self, name: &str) -> Result<()> {
        let mut args = self.base_args(name);
        args.extend([
            "-d".into(),
            "-o".into(),
            self.container_dir(name).join(LOG_FILE).into_os_string(),
            "-l".into(),
            self.log_level.clone().into(),
        ]);
        let (out, command) = self.run(name, "lxc-start", args)?;
        if out.status.success() {
            return Ok(());
        }
        Err(LxcToolsError::Failed {
            command,
            status: out.status.to_string(),
            detail: self.failure_detail(name, &out.stderr),
        })
    }

    /// `RUNNING`, `STOPPED`, ... or `None` if LXC does not know it.
    pub fn state(&self, name: &str) -> Option<String> {
        let mut args = self.base_args(name);
        args.extend(["-s".into(), "-H".into()]);
        let (out, _) = self.run(name, "lxc-info", args).ok()?;
        if !out.status.success() {
            return None;
        }
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn is_running(&self, name: &str) -> bool {
        matches!(
            self.state(name).as_deref(),
            Some("RUNNING") | Some("STARTING") | Some("FROZEN")
        )
    }

    /// Kills the container (all its processes) if it runs. Stopping a
    /// stopped or unknown container is not an error.
    pub fn stop(&self, name: &str) -> Result<()> {
        if !self.container_dir(name).join("config").exists() || !self.is_running(name) {
            return Ok(());
        }
        let mut args = self.base_args(name);
        args.push("-k".into());
        let (out, command) = self.run(name, "lxc-stop", args)?;
        if out.status.success() || !self.is_running(name) {
            return Ok(());
        }
        Err(LxcToolsError::Failed {
            command,
            status: out.status.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Removes the container's config and log directory, and LXC's cgroups
    /// for it. LXC removes those itself when its monitor exits, but a monitor
    /// still tearing down while its container directory disappears can
    /// leave them behind; waiting for it to leave them comes first. Of a
    /// cgroup placed by the spec's path only what was recorded as the
    /// container's goes (see [`placed_cgroups`]).
    pub fn remove(&self, name: &str) -> Result<()> {
        let dir = self.container_dir(name);
        self.remove_cgroups(&LXC_CGROUP_PREFIXES.map(|p| format!("{p}{name}")))?;
        for cgroup in placed_cgroups::recorded(&dir, &self.cgroup_root) {
            remove_cgroup(&cgroup, MONITOR_EXIT_TIMEOUT)?;
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(LxcToolsError::Remove { path: dir, source }),
        }
    }

    /// Removes the cgroups `dirs` (relative to each hierarchy's root) a
    /// container's LXC made, once their processes are gone: LXC removes
    /// them when its monitor exits normally, not when it is killed. PVE's
    /// CTs use `lxc/VMID` and `lxc.monitor/VMID` (pve-container
    /// src/PVE/LXC.pm `update_lxc_config`, `lxc.cgroup.dir.*`).
    pub fn remove_cgroups(&self, dirs: &[String]) -> Result<()> {
        for cgroup in self.cgroups_named(dirs) {
            remove_cgroup(&cgroup, MONITOR_EXIT_TIMEOUT)?;
        }
        Ok(())
    }

    /// Before a start that places a cgroup at `cgroup` (the container's, or
    /// its monitor's): an empty one an earlier run left is removed for LXC
    /// to make, anything else refused ([`placed_cgroups::clear_stale`]).
    pub fn clear_stale_cgroup(&self, cgroup: &CgroupPath, what: &'static str) -> Result<()> {
        let found = self.cgroups_named(&[cgroup.as_str().to_string()]);
        Ok(placed_cgroups::clear_stale(&found, what)?)
    }

    /// Records `dirs`, the cgroup directories container `name`'s init is
    /// in, as the ones [`Self::remove`] may remove.
    pub fn record_placed_cgroups(&self, name: &str, dirs: &[PathBuf]) -> Result<()> {
        Ok(placed_cgroups::record(&self.container_dir(name), dirs)?)
    }

    /// `dirs` in every hierarchy that has them (one per controller on v1,
    /// the single root on v2).
    fn cgroups_named(&self, dirs: &[String]) -> Vec<PathBuf> {
        crate::cgroup::hierarchy_dirs(&self.cgroup_root)
            .iter()
            .flat_map(|h| dirs.iter().map(move |d| h.join(d)))
            .filter(|p| p.is_dir())
            .collect()
    }

    /// The error lines of the LXC log, the useful part of a failed start,
    /// with the system error LXC names before its message kept
    /// (`Numerical result out of range - Failed to set "cpuset.cpus" to
    /// "99"`); lxc-start's own stderr (`The container failed to start`,
    /// `To get more details, run the container in foreground mode`) only
    /// when the log has none.
    pub fn failure_detail(&self, name: &str, stderr: &[u8]) -> String {
        let log = fs::read_to_string(self.container_dir(name).join(LOG_FILE)).unwrap_or_default();
        // The first errors are the cause; later ones are LXC unwinding.
        let causes: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" ERROR "))
            .map(log_message)
            .take(4)
            .collect();
        if causes.is_empty() {
            return String::from_utf8_lossy(stderr).trim().to_string();
        }
        causes.join("; ")
    }
}

/// An LXC log line's message: `lxc-start NAME TIMESTAMP ERROR module -
/// file:line:function - [system error - ]message`.
fn log_message(line: &str) -> &str {
    line.splitn(3, " - ").nth(2).unwrap_or(line).trim()
}

/// Waits until no process is left in `cgroup` and every process seen in
/// it has exited (LXC's monitor moves itself out before it removes its
/// cgroups, and is still at work then), then removes it, nested cgroups
/// first.
fn remove_cgroup(cgroup: &Path, timeout: Duration) -> Result<()> {
    let err = |reason: String| LxcToolsError::Cgroup {
        path: cgroup.to_path_buf(),
        reason,
    };
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<(i32, OwnedFd)> = Vec::new();
    let gone = loop {
        let procs = match fs::read_to_string(cgroup.join("cgroup.procs")) {
            Ok(procs) => procs,
            // Gone meanwhile: LXC removed it.
            Err(e) if is_gone(&e) => break true,
            Err(e) => return Err(err(e.to_string())),
        };
        let pids: Vec<i32> = procs
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            break false;
        }
        if Instant::now() >= deadline {
            return Err(err(format!(
                "processes {pids:?} still in it after {timeout:?}"
            )));
        }
        let mut unwatched = false;
        for &pid in &pids {
            if seen.iter().any(|(p, _)| *p == pid) {
                continue;
            }
            match crate::pidfd::pidfd_open(pid) {
                Ok(fd) => seen.push((pid, fd)),
                // Gone already.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                // No pidfd (out of fds, a pid from another namespace).
                Err(_) => unwatched = true,
            }
        }
        // Look again at least every 100 ms: a process may join or leave.
        let left = deadline.saturating_duration_since(Instant::now());
        if unwatched {
            std::thread::sleep(left.min(Duration::from_millis(10)));
        } else {
            wait_for_exits(&seen, left.min(Duration::from_millis(100)));
        }
    };
    if !wait_for_exits(&seen, deadline.saturating_duration_since(Instant::now())) {
        let pids: Vec<i32> = seen.iter().map(|(p, _)| *p).collect();
        return Err(err(format!(
            "processes {pids:?} that were in it still run after {timeout:?}"
        )));
    }
    if gone {
        return Ok(());
    }
    remove_cgroup_tree(cgroup).map_err(|e| err(e.to_string()))
}

/// Waits up to `timeout` until every process behind `pidfds` has exited
/// (its pidfd turns readable); whether they have.
fn wait_for_exits(pidfds: &[(i32, OwnedFd)], timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<&OwnedFd> = pidfds.iter().map(|(_, fd)| fd).collect();
    while !pending.is_empty() {
        let mut polled: Vec<PollFd> = pending
            .iter()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut polled, PollTimeout::from(ms));
        let exited: Vec<bool> = polled
            .iter()
            .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        pending = pending
            .into_iter()
            .zip(exited)
            .filter_map(|(fd, exited)| (!exited).then_some(fd))
            .collect();
        if !pending.is_empty() && Instant::now() >= deadline {
            return false;
        }
    }
    true
}

/// cgroupfs directories hold only virtual files: `rmdir` each, deepest
/// first. LXC's exiting monitor removes them too, at the same time.
fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Err(e) if is_gone(&e) => return Ok(()),
        entries => entries?,
    };
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => remove_cgroup_tree(&entry.path())?,
            Err(e) if !is_gone(&e) => return Err(e),
            _ => {}
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if !is_gone(&e) => Err(e),
        _ => Ok(()),
    }
}

/// A cgroup directory removed meanwhile: gone (ENOENT), or on its way out
/// in the kernel (ENODEV, while another `rmdir` of it runs).
fn is_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{ExitStatus, Output};
    use std::sync::Mutex;

    #[test]
    fn a_cgroup_removed_meanwhile_is_gone() {
        assert!(is_gone(&std::io::Error::from(std::io::ErrorKind::NotFound)));
        assert!(is_gone(&std::io::Error::from_raw_os_error(libc::ENODEV)));
        assert!(!is_gone(&std::io::Error::from_raw_os_error(libc::EBUSY)));
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("lxc.monitor.x");
        std::fs::create_dir_all(tree.join("inner")).unwrap();
        remove_cgroup_tree(&tree).unwrap();
        assert!(!tree.exists());
        // Already gone: nothing to do.
        remove_cgroup_tree(&tree).unwrap();
    }

    #[test]
    fn waiting_for_exits_ends_when_all_have_exited() {
        let spawn = |secs: &str| {
            std::process::Command::new("sleep")
                .arg(secs)
                .spawn()
                .unwrap()
        };
        let pidfd = |c: &std::process::Child| {
            (
                c.id() as i32,
                crate::pidfd::pidfd_open(c.id() as i32).unwrap(),
            )
        };
        let (mut quick, mut slow) = (spawn("0.05"), spawn("30"));
        let both = [pidfd(&slow), pidfd(&quick)];
        // The slow one keeps it waiting to the timeout.
        assert!(!wait_for_exits(&both, Duration::from_millis(50)));
        slow.kill().unwrap();
        assert!(wait_for_exits(&both, Duration::from_secs(20)));
        assert!(quick.try_wait().unwrap().is_some());
        slow.wait().unwrap();
        // Nothing to wait for.
        assert!(wait_for_exits(&[], Duration::from_secs(20)));
    }

    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        state: Mutex<&'static str>,
    }

    impl CommandRunner for Recorder {
        fn run(&self, program: &str, args: &[OsString]) -> std::io::Result<Output> {
            self.calls.lock().unwrap().push(display(program, args));
            // `nsenter ... -- PROGRAM ARGS`: what it runs.
            let program = match args.iter().position(|a| a == "--") {
                Some(i) if program == "nsenter" => args[i + 1].to_str().unwrap(),
                _ => program,
            };
            let (code, stdout) = match program {
                "lxc-info" => (0, format!("{}\n", self.state.lock().unwrap())),
                "lxc-start" => (1, String::new()),
                _ => (0, String::new()),
            };
            Ok(Output {
                status: ExitStatus::from_raw(code << 8),
                stdout: stdout.into_bytes(),
                stderr: b"lxc-start: c: tools/lxc_start.c: main: 306 The container failed to start"
                    .to_vec(),
            })
        }
    }

    #[test]
    fn failed_start_reports_lxc_log_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let b = LxcTools::with_runner(tmp.path(), "warn", Recorder::default());
        b.write_config("ns_c1", "lxc.uts.name = c1\n", None)
            .unwrap();
        fs::write(
            b.container_dir("ns_c1").join(LOG_FILE),
            "lxc-start ns_c1 20261122 ERROR conf - ../src/lxc/conf.c:2024:mount_entry - No such file or directory - Failed to mount \"/nope\"\n",
        )
        .unwrap();
        let err = b.start("ns_c1").unwrap_err().to_string();
        assert!(
            err.ends_with(": No such file or directory - Failed to mount \"/nope\""),
            "{err}"
        );
        assert!(!err.contains("The container failed to start"), "{err}");
        // Without errors in the log, lxc-start's own words.
        fs::write(b.container_dir("ns_c1").join(LOG_FILE), "").unwrap();
        let err = b.start("ns_c1").unwrap_err().to_string();
        assert!(err.contains("The container failed to start"), "{err}");
        let calls = b.runner.calls.lock().unwrap();
        assert!(calls[0].starts_with(&format!(
            "lxc-start -n ns_c1 -P {} -d -o",
            tmp.path().display()
        )));
    }

    #[test]
    fn a_container_started_in_a_pod_network_is_driven_from_there() {
        let tmp = tempfile::tempdir().unwrap();
        let rec = Recorder::default();
        *rec.state.lock().unwrap() = "RUNNING";
        let b = LxcTools::with_runner(tmp.path(), "warn", rec);
        let netns = Path::new("/var/run/netns/cni-1");
        b.write_config("ns_c4", "x", Some(netns)).unwrap();
        let _ = b.start("ns_c4");
        assert!(b.is_running("ns_c4"));
        b.stop("ns_c4").unwrap();
        let calls = b.runner.calls.lock().unwrap();
        let programs: Vec<&str> = calls
            .iter()
            .map(|c| c.split(" -n ").next().unwrap())
            .collect();
        assert_eq!(
            programs,
            [
                "nsenter --net=/var/run/netns/cni-1 -- lxc-start",
                "nsenter --net=/var/run/netns/cni-1 -- lxc-info",
                "nsenter --net=/var/run/netns/cni-1 -- lxc-info",
                "nsenter --net=/var/run/netns/cni-1 -- lxc-stop",
            ],
            "{calls:?}"
        );
    }

    #[test]
    fn lxc_cgroups_are_found_per_hierarchy_and_busy_ones_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        for h in ["memory", "pids", "cpu,cpuacct"] {
            fs::create_dir_all(root.join(h).join("lxc.monitor.ns_c3")).unwrap();
            fs::write(root.join(h).join("cgroup.procs"), "").unwrap();
        }
        fs::create_dir_all(root.join("memory/lxc.payload.ns_c3")).unwrap();
        // A plain directory in the tmpfs above the hierarchies is none.
        fs::create_dir_all(root.join("stray/lxc.payload.ns_c3")).unwrap();
        fs::create_dir_all(root.join("memory/lxc.payload.ns_other")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", root.join("cpu")).unwrap();
        let mut b = LxcTools::with_runner(tmp.path(), "warn", Recorder::default());
        b.cgroup_root = root.clone();
        let mut found = b.cgroups_named(&LXC_CGROUP_PREFIXES.map(|p| format!("{p}ns_c3")));
        found.sort();
        assert_eq!(
            found,
            [
                root.join("cpu,cpuacct/lxc.monitor.ns_c3"),
                root.join("memory/lxc.monitor.ns_c3"),
                root.join("memory/lxc.payload.ns_c3"),
                root.join("pids/lxc.monitor.ns_c3"),
            ]
        );
        // A monitor still in its cgroup: remove waits, then names it.
        let busy = root.join("pids/lxc.monitor.ns_c3");
        fs::write(busy.join("cgroup.procs"), "4242\n").unwrap();
        let err = remove_cgroup(&busy, Duration::from_millis(50))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("4242") && err.contains("lxc.monitor.ns_c3"),
            "{err}"
        );
        // Gone (as when LXC removed it meanwhile) is fine.
        remove_cgroup(&root.join("memory/lxc.monitor.none"), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_placed_cgroup_is_removed_only_as_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        let placed = root.join("memory/k8s.io/c9");
        fs::create_dir_all(&placed).unwrap();
        // An empty cgroup.procs: on this tmpfs the file keeps `rmdir` from
        // succeeding, which shows whether a removal was tried.
        fs::write(placed.join("cgroup.procs"), "").unwrap();
        let mut b = LxcTools::with_runner(tmp.path().join("lxc"), "warn", Recorder::default());
        b.cgroup_root = root.clone();
        // The config names it, but nothing recorded it as the container's.
        b.write_config("ns_c9", "lxc.cgroup.dir.container = k8s.io/c9\n", None)
            .unwrap();
        b.remove("ns_c9").unwrap();
        assert!(placed.is_dir(), "not the container's to remove");
        // Recorded: its removal is tried.
        b.write_config("ns_c9", "x", None).unwrap();
        b.record_placed_cgroups("ns_c9", std::slice::from_ref(&placed))
            .unwrap();
        let e = b.remove("ns_c9").unwrap_err().to_string();
        assert!(e.contains("k8s.io/c9"), "{e}");
    }

    #[test]
    fn stop_is_a_noop_when_not_running_and_remove_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let rec = Recorder::default();
        *rec.state.lock().unwrap() = "STOPPED";
        let b = LxcTools::with_runner(tmp.path(), "warn", rec);
        b.write_config("ns_c2", "x", None).unwrap();
        b.stop("ns_c2").unwrap();
        assert!(!b
            .runner
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("lxc-stop")));
        b.remove("ns_c2").unwrap();
        b.remove("ns_c2").unwrap();
        assert!(!b.container_dir("ns_c2").exists());
    }
}
