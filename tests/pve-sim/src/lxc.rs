//! What `pct start` does on a node (pve-container src/PVE/LXC.pm `vm_start`): render
//! `LXCPATH/VMID/config` (`render`), run `lxc-start -F -n VMID` as the
//! pve-container@VMID unit does, with PVE's hooks (`hooks`, run by LXC as `pve-sim hook`)
//! mounting the volumes, and wait for LXC's state messages (`monitor`). The CT is an
//! ordinary LXC container that `lxc-info -n VMID -P LXCPATH` and `lxc-attach` find.
//! A config update of a running CT writes into its cgroup as PVE's hotplug does
//! (`hotplug`).

mod hooks;
mod host;
pub mod hotplug;
mod lxc7;
mod monitor;
mod mounts;
mod netaddbr;
mod nets;
mod ovs;
mod render;
mod start;

pub use hooks::main as hook_main;
pub use host::Host;
pub use nets::check_update as check_net_update;
pub use render::clamp_cpu_shares;

use crate::zfs_storage::ZfsStorageArg;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the stand-in runs LXC.
#[derive(Debug, Clone)]
pub struct Options {
    pub lxcpath: PathBuf,
    /// `--data-dir`: the hooks' include, the stderr files and the LXC log live here.
    pub data_dir: PathBuf,
    /// `--schema`, handed to the hooks.
    pub schema: Option<PathBuf>,
    /// `--zfs-storage`, handed to the hooks.
    pub zfs_storage: Vec<ZfsStorageArg>,
    /// `--lxc-version`: the LXC whose config loader to model (major, minor).
    pub lxc_version: (u32, u32),
    /// `--ovsdb`, handed to the hooks.
    pub ovsdb: String,
    /// This binary (the hooks run it).
    pub exe: PathBuf,
}

/// `MAJOR[.MINOR]` for `--lxc-version`.
pub fn parse_version(s: &str) -> Result<(u32, u32), String> {
    let mut it = s.trim().splitn(3, '.');
    let major = it.next().and_then(|m| m.parse().ok());
    let minor = it.next().map(|m| m.parse().ok()).unwrap_or(Some(0));
    match (major, minor) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!("'{s}' is not MAJOR[.MINOR]")),
    }
}

/// What `lxc-start --version` prints, (0, 0) when unknown.
pub fn installed_version() -> (u32, u32) {
    Command::new("lxc-start")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| parse_version(String::from_utf8_lossy(&o.stdout).trim()).ok())
        .unwrap_or((0, 0))
}

/// The major version of the installed LXC.
fn lxc_major() -> u32 {
    installed_version().0
}

/// How long stop, shutdown and destroy wait for `lxc-start` to exit once the CT is told to
/// stop (PVE's `vm_stop` waits for the monitor's command socket to close).
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// One `lxc-start -F` this stand-in started; its reaper thread marks it exited.
#[derive(Default)]
struct Monitor {
    exited: Mutex<bool>,
    cond: Condvar,
}

impl Monitor {
    fn is_exited(&self) -> bool {
        *self.exited.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the reaper saw `lxc-start` exit; false on timeout.
    fn wait(&self, deadline: Instant) -> bool {
        let mut exited = self.exited.lock().unwrap_or_else(|p| p.into_inner());
        while !*exited {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            exited = self
                .cond
                .wait_timeout(exited, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// Runs the `lxc-*` tools for one lxcpath, and keeps the `lxc-start` processes it started.
pub struct Lxc {
    pub lxcpath: PathBuf,
    pub logdir: PathBuf,
    opts: Options,
    /// `lxc-start` per VMID, from start until it has exited and been reaped.
    monitors: Mutex<HashMap<u32, Arc<Monitor>>>,
    /// LXC's state messages (what lxc-monitord would relay).
    states: monitor::States,
}

/// What `lxc-info` says about a CT.
pub struct Info {
    pub pid: Option<u32>,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "command '{cmd:?}' failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The abstract unix socket LXC's monitor listens on (`lxc_make_abstract_socket_name`):
/// `LXCPATH/NAME/command`, or `lxc/HASH/command` with the FNV-1a hash of `LXCPATH/NAME`
/// when that does not fit into `sun_path`.
/// How [`Lxc::stop`] stops a CT.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// `pct stop`, a forced destroy: `lxc-stop --kill`.
    Kill,
    /// `pct shutdown`: a clean stop within `timeout` seconds, killed after it only when
    /// `kill_after` (the API's `forceStop`).
    Shutdown { timeout: u64, kill_after: bool },
}

pub fn command_socket(lxcpath: &Path, name: &str) -> String {
    let lxcpath = lxcpath.to_string_lossy();
    let full = format!("{lxcpath}/{name}/command");
    // sun_path is 108 bytes, minus the leading and the trailing NUL.
    if full.len() < 106 {
        return full;
    }
    let hash = fnv1a64(format!("{lxcpath}/{name}").as_bytes());
    format!("lxc/{hash:016x}/command")
}

/// LXC's `fnv_64a_buf` from `FNV1A_64_INIT`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Lxc {
    pub fn new(opts: Options) -> Lxc {
        Lxc {
            lxcpath: opts.lxcpath.clone(),
            logdir: opts.data_dir.join("var/log/lxc"),
            states: monitor::States::new(&opts.lxcpath),
            opts,
            monitors: Mutex::new(HashMap::new()),
        }
    }

    fn tool(&self, name: &str, vmid: u32) -> Command {
        let mut c = Command::new(name);
        c.arg("-n")
            .arg(vmid.to_string())
            .arg("-P")
            .arg(&self.lxcpath);
        c
    }

    pub fn info(&self, vmid: u32) -> Info {
        let out = run(self.tool("lxc-info", vmid).arg("-p")).unwrap_or_default();
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        Info {
            pid: field("PID:").and_then(|p| p.parse().ok()),
        }
    }

    /// PVE's `check_running`: the CT's monitor (`lxc-start`) still listens on its command
    /// socket. LXC closes it only after it has removed the CT's cgroups; `lxc-start` itself
    /// exits about half a second later (see `wait_exited`).
    pub fn running(&self, vmid: u32) -> bool {
        let want = format!(" @{}", command_socket(&self.lxcpath, &vmid.to_string()));
        fs::read_to_string("/proc/net/unix")
            .unwrap_or_default()
            .lines()
            .any(|l| l.ends_with(&want))
    }

    fn monitor(&self, vmid: u32) -> Option<Arc<Monitor>> {
        self.monitors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&vmid)
            .cloned()
    }

    /// Waits until nothing of a stopping CT runs: its command socket is closed (LXC has
    /// removed its cgroups by then) and, when this stand-in started it, its `lxc-start`
    /// has exited and been reaped.
    pub fn wait_exited(&self, vmid: u32) -> Result<(), String> {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while self.running(vmid) {
            if Instant::now() > deadline {
                return Err("container did not stop".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(m) = self.monitor(vmid) {
            if !m.wait(deadline) {
                return Err("container did not stop".into());
            }
            let mut monitors = self.monitors.lock().unwrap_or_else(|p| p.into_inner());
            if monitors.get(&vmid).is_some_and(|n| Arc::ptr_eq(n, &m)) {
                monitors.remove(&vmid);
            }
        }
        Ok(())
    }

    /// `lxc-stop` as pve-container src/PVE/LXC.pm `vm_stop` runs it, then waits until the
    /// CT's `lxc-start` is gone, as `vm_stop` waits for the command socket to close. A CT
    /// still running after lxc-stop fails with `vm_stop`'s "container did not stop", what
    /// lxc-stop said going to `warn` (PVE's task log).
    pub fn stop(&self, vmid: u32, how: Stop, warn: &dyn Fn(String)) -> Result<(), String> {
        let mut cmd = self.tool("lxc-stop", vmid);
        match how {
            Stop::Kill => cmd.arg("--kill"),
            // Without forceStop a shutdown never kills: lxc-stop gives up after the
            // timeout and the CT keeps running.
            Stop::Shutdown {
                timeout,
                kill_after,
            } => {
                if !kill_after {
                    cmd.arg("--nokill");
                }
                cmd.arg("--timeout").arg(timeout.to_string())
            }
        };
        if let Err(e) = run(&mut cmd) {
            // It may have stopped by itself meanwhile; only a CT still running is an error.
            if self.running(vmid) {
                warn(e);
                return Err("container did not stop".into());
            }
        }
        self.wait_exited(vmid)
    }

    /// PVE's destroy (LXC.pm `destroy_lxc_container`): `rmdir` the rootfs directory,
    /// remove the config, `rmdir` the CT's directory. Non-recursive on purpose: the
    /// rootfs is only ever mounted in the monitor's namespace, and anything else left
    /// there (an unprivileged CT's rules.seccomp) stays, as on a node.
    pub fn remove(&self, vmid: u32) {
        let dir = self.lxcpath.join(vmid.to_string());
        let _ = fs::remove_dir(dir.join("rootfs"));
        let _ = fs::remove_file(dir.join("config"));
        let _ = fs::remove_dir(&dir);
    }
}

#[cfg(test)]
mod tests;
