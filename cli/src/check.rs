//! `lxcri check`: node preflight. Every check is a plain function of the
//! host paths it reads (`/proc`, `/sys`, the cgroup root, `$PATH`), so tests
//! run them against tempdirs. Each yields OK, WARN (works, with a caveat) or
//! FAIL (containers cannot run); any FAIL makes the command exit 1.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use lxcri::cgroup::CgroupVersion;
use lxcri::command::{CommandRunner, SystemCommands};
use lxcri::config::{Config, ConfigError};

use crate::elf;

mod cgroup_attach;
mod cgroup_driver;
mod network;
mod pve;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

fn finding(name: &'static str, status: Status, detail: impl Into<String>) -> Finding {
    Finding {
        name,
        status,
        detail: detail.into(),
    }
}

/// What `main` prints, and whether any check failed.
pub struct Report {
    pub output: String,
    pub failed: bool,
}

/// The host paths the checks read.
pub struct Host {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub cgroup: PathBuf,
    pub run: PathBuf,
    /// The kubelet's config file (kubeadm's place).
    pub kubelet_config: PathBuf,
    pub path_env: Option<OsString>,
}

impl Host {
    pub fn real() -> Self {
        Host {
            proc: "/proc".into(),
            sys: "/sys".into(),
            cgroup: "/sys/fs/cgroup".into(),
            run: "/run".into(),
            kubelet_config: "/var/lib/kubelet/config.yaml".into(),
            path_env: std::env::var_os("PATH"),
        }
    }
}

pub fn run(config: Result<Config, ConfigError>, args: &Args) -> Report {
    let findings = all(&Host::real(), config);
    let failed = findings.iter().any(|f| f.status == Status::Fail);
    let output = if args.json {
        json(&findings, failed)
    } else {
        table(&findings)
    };
    Report { output, failed }
}

/// Runs every check. With a broken config the rest run against the defaults.
pub fn all(host: &Host, config: Result<Config, ConfigError>) -> Vec<Finding> {
    let (first, config) = match config {
        Ok(c) => {
            let detail = match &c.file {
                Some(path) => format!("loaded {}", path.display()),
                None => "defaults (no config file)".to_string(),
            };
            (finding("config", Status::Ok, detail), c)
        }
        Err(e) => (
            finding(
                "config",
                Status::Fail,
                format!("{e} (checking with defaults)"),
            ),
            Config::default(),
        ),
    };
    let mut findings = vec![
        first,
        kernel(&host.proc),
        cgroup(&host.cgroup),
        cgroup_attach::cgroup_attach(
            &fs::read_to_string(host.proc.join("self/mountinfo")).unwrap_or_default(),
        ),
        cgroup_driver::cgroup_driver(&host.run, &host.kubelet_config),
        namespaces(&host.proc),
        lxc_start(host.path_env.as_deref()),
        proc_events(lxcri::proc_events::ExitMonitor::open().map(|m| m.uses_pidfs())),
        init_binary(config.init_binary()),
        writable_dir("runtime_root", &config.runtime_root),
        writable_dir("lxcpath", &config.lxc.lxcpath),
        overlay(&host.proc),
        seccomp(&host.proc),
        apparmor(&host.sys),
        root(&host.proc),
    ];
    findings.extend(network::checks(&config));
    findings.extend(pve::checks(&config));
    findings
}

/// pidfs (Linux 6.15) or the kernel's process-events connector tells the
/// shim how a container's PID 1 ended; without either creates fail.
/// `opened` says whether pidfs is used.
pub fn proc_events(opened: std::io::Result<bool>) -> Finding {
    match opened {
        Ok(true) => finding(
            "proc-events",
            Status::Ok,
            "exit statuses from pidfs (Linux 6.15+): no process-events connector needed",
        ),
        Ok(false) => finding(
            "proc-events",
            Status::Ok,
            "process-events connector listens",
        ),
        Err(e) => finding(
            "proc-events",
            Status::Fail,
            format!(
                "the kernel's process-events connector ({e}): needs root in the initial \
                 namespaces and CONFIG_PROC_EVENTS; without it no exit status is known"
            ),
        ),
    }
}

/// pidfd_open, which the shim uses to watch a container's init, is Linux 5.3.
const MIN_KERNEL: (u32, u32) = (5, 3);
/// mount_setattr, with which the host view of a container's create hooks
/// is made (`lxcri-init host-view`) unless it has a user namespace of its
/// own, a bind's recursive options (`rro`, ...) are set and binds are
/// id-mapped (`hostUsers: false` pods' volumes), is Linux 5.12.
const HOOKS_KERNEL: (u32, u32) = (5, 12);

pub fn kernel(proc: &Path) -> Finding {
    let release = match fs::read_to_string(proc.join("sys/kernel/osrelease")) {
        Ok(r) => r.trim().to_string(),
        Err(e) => return finding("kernel", Status::Fail, format!("reading osrelease: {e}")),
    };
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    let version = match (nums.next().flatten(), nums.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => {
            return finding(
                "kernel",
                Status::Warn,
                format!("{release}: unparsable version"),
            )
        }
    };
    if version < MIN_KERNEL {
        let (major, minor) = MIN_KERNEL;
        return finding(
            "kernel",
            Status::Fail,
            format!("{release}: lxcri needs Linux >= {major}.{minor} (pidfd_open)"),
        );
    }
    if version < HOOKS_KERNEL {
        let (major, minor) = HOOKS_KERNEL;
        return finding(
            "kernel",
            Status::Warn,
            format!(
                "{release}: a container with OCI create hooks (prestart, createRuntime, \
                 createContainer) and no user namespace of its own, a bind with \
                 recursive mount options (rro, rnosuid, ...), or an id-mapped bind \
                 (uidMappings, hostUsers: false pods), needs Linux >= \
                 {major}.{minor} (mount_setattr) and fails to create here"
            ),
        );
    }
    finding("kernel", Status::Ok, release)
}

pub fn cgroup(root: &Path) -> Finding {
    match CgroupVersion::detect(root) {
        CgroupVersion::V2 => {
            let controllers =
                fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let present: Vec<&str> = controllers.split_whitespace().collect();
            let missing: Vec<&str> = ["cpu", "memory", "pids", "io"]
                .into_iter()
                .filter(|c| !present.contains(c))
                .collect();
            if missing.is_empty() {
                finding(
                    "cgroup",
                    Status::Ok,
                    format!("v2 (unified): {}", present.join(" ")),
                )
            } else {
                finding(
                    "cgroup",
                    Status::Warn,
                    format!(
                        "v2 (unified), controllers missing: {} (limits on them will fail)",
                        missing.join(" ")
                    ),
                )
            }
        }
        CgroupVersion::V1 => {
            let v1 = ["memory", "cpu", "pids"]
                .iter()
                .any(|c| root.join(c).is_dir());
            if !v1 {
                return finding(
                    "cgroup",
                    Status::Fail,
                    format!("no cgroup hierarchy found at {}", root.display()),
                );
            }
            let layout = if root.join("unified/cgroup.controllers").exists() {
                "v1 + v2 hybrid (controllers on v1)"
            } else {
                "v1 (legacy)"
            };
            finding(
                "cgroup",
                Status::Warn,
                format!(
                    "{layout}: supported, but cgroup v2 is the primary target (PVE 9 is v2-only)"
                ),
            )
        }
    }
}

/// Namespaces every container gets; without one of them nothing runs.
const REQUIRED_NS: &[&str] = &["mnt", "uts", "ipc", "pid", "net"];
/// Namespaces only some specs ask for.
const OPTIONAL_NS: &[&str] = &["cgroup", "user", "time"];

pub fn namespaces(proc: &Path) -> Finding {
    let dir = proc.join("self/ns");
    let have = |ns: &&str| dir.join(ns).exists();
    let missing_req: Vec<&str> = REQUIRED_NS.iter().filter(|n| !have(n)).copied().collect();
    let missing_opt: Vec<&str> = OPTIONAL_NS.iter().filter(|n| !have(n)).copied().collect();
    if !missing_req.is_empty() {
        return finding(
            "namespaces",
            Status::Fail,
            format!("missing: {}", missing_req.join(" ")),
        );
    }
    if !missing_opt.is_empty() {
        return finding(
            "namespaces",
            Status::Warn,
            format!(
                "missing: {} (specs asking for them fail)",
                missing_opt.join(" ")
            ),
        );
    }
    let all: Vec<&str> = REQUIRED_NS.iter().chain(OPTIONAL_NS).copied().collect();
    finding("namespaces", Status::Ok, all.join(" "))
}

/// The first executable `name` in `path_env`, as a shell would find it.
pub fn find_in_path(name: &str, path_env: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path_env?)
        .map(|dir| dir.join(name))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// `lxc-start --version` prints the bare version (`5.0.2`).
fn lxc_major(version: &str) -> Option<u32> {
    version.trim().split('.').next()?.parse().ok()
}

pub fn lxc_start(path_env: Option<&std::ffi::OsStr>) -> Finding {
    let Some(bin) = find_in_path("lxc-start", path_env) else {
        return finding(
            "lxc-start",
            Status::Fail,
            "not found in PATH (install the lxc package)",
        );
    };
    let runner = SystemCommands::default();
    let out = match runner.run(&bin.to_string_lossy(), &["--version".into()]) {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            return finding(
                "lxc-start",
                Status::Fail,
                format!("{} --version: {} {}", bin.display(), out.status, err.trim()),
            );
        }
        Err(e) => return finding("lxc-start", Status::Fail, format!("{}: {e}", bin.display())),
    };
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let detail = format!("{} {version}", bin.display());
    match lxc_major(&version) {
        Some(major) if major >= 5 => finding("lxc-start", Status::Ok, detail),
        _ => finding(
            "lxc-start",
            Status::Warn,
            format!("{detail}: lxcri is tested with LXC 5"),
        ),
    }
}

pub fn init_binary(found: Result<PathBuf, ConfigError>) -> Finding {
    let path = match found {
        Ok(p) => p,
        Err(e) => return finding("lxcri-init", Status::Fail, e.to_string()),
    };
    match elf::inspect_file(&path) {
        Ok(info) if info.is_static() => {
            finding("lxcri-init", Status::Ok, format!("{} (static)", path.display()))
        }
        Ok(_) => finding(
            "lxcri-init",
            Status::Fail,
            format!(
                "{} is dynamically linked (PT_INTERP): it cannot run in images without the host's loader",
                path.display()
            ),
        ),
        Err(e) => finding("lxcri-init", Status::Fail, format!("{}: {e}", path.display())),
    }
}

/// Creates `dir` if needed, writes and removes a probe file, and removes
/// the directories it created: a preflight should not leave traces.
pub fn writable_dir(name: &'static str, dir: &Path) -> Finding {
    // Deepest first, so they can be removed in this order.
    let created: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
    if let Err(e) = fs::create_dir_all(dir) {
        return finding(
            name,
            Status::Fail,
            format!("cannot create {}: {e}", dir.display()),
        );
    }
    let probe = dir.join(format!(".lxcri-check.{}", std::process::id()));
    let result = fs::write(&probe, b"").and_then(|()| fs::remove_file(&probe));
    for d in &created {
        let _ = fs::remove_dir(d);
    }
    match result {
        Ok(()) if created.is_empty() => {
            finding(name, Status::Ok, format!("{} writable", dir.display()))
        }
        Ok(()) => finding(
            name,
            Status::Ok,
            format!("{} can be created", dir.display()),
        ),
        Err(e) => finding(
            name,
            Status::Fail,
            format!("{} not writable: {e}", dir.display()),
        ),
    }
}

pub fn overlay(proc: &Path) -> Finding {
    let filesystems = fs::read_to_string(proc.join("filesystems")).unwrap_or_default();
    let listed = filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"));
    if listed {
        finding("overlay", Status::Ok, "overlay in /proc/filesystems")
    } else {
        finding(
            "overlay",
            Status::Fail,
            "overlay not in /proc/filesystems (modprobe overlay): rootfs mode \"overlay\" needs it",
        )
    }
}

pub fn seccomp(proc: &Path) -> Finding {
    let status = fs::read_to_string(proc.join("self/status")).unwrap_or_default();
    if !status.lines().any(|l| l.starts_with("Seccomp:")) {
        return finding(
            "seccomp",
            Status::Fail,
            "kernel without seccomp: containers with a seccomp profile cannot be created",
        );
    }
    let actions =
        fs::read_to_string(proc.join("sys/kernel/seccomp/actions_avail")).unwrap_or_default();
    let detail = match actions.trim() {
        "" => "available".to_string(),
        a => format!("available; actions: {a}"),
    };
    finding("seccomp", Status::Ok, detail)
}

pub fn apparmor(sys: &Path) -> Finding {
    let enabled =
        fs::read_to_string(sys.join("module/apparmor/parameters/enabled")).unwrap_or_default();
    if enabled.trim() == "Y" {
        finding("apparmor", Status::Ok, "enabled")
    } else {
        finding(
            "apparmor",
            Status::Warn,
            "not enabled in the kernel: AppArmor profiles cannot be enforced on this node",
        )
    }
}

/// CAP_SYS_ADMIN: mounts, namespaces, lxc-start.
const CAP_SYS_ADMIN: u32 = 21;
/// CAP_SYS_RESOURCE: negative oom_score_adj, raising hard rlimits.
const CAP_SYS_RESOURCE: u32 = 24;

pub fn root(proc: &Path) -> Finding {
    let status = fs::read_to_string(proc.join("self/status")).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|rest| {
                rest.split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // Uid: real effective saved fs
    let euid = field("Uid:").get(1).and_then(|u| u.parse::<u32>().ok());
    let cap_eff = field("CapEff:")
        .first()
        .and_then(|c| u64::from_str_radix(c, 16).ok());
    let (Some(euid), Some(cap_eff)) = (euid, cap_eff) else {
        return finding(
            "root",
            Status::Fail,
            "cannot read Uid/CapEff from /proc/self/status",
        );
    };
    let has = |cap: u32| cap_eff & (1 << cap) != 0;
    if euid != 0 {
        return finding(
            "root",
            Status::Fail,
            format!("running as uid {euid}: the shim runs as root (lxc-start, mounts, cgroups)"),
        );
    }
    if !has(CAP_SYS_ADMIN) {
        return finding(
            "root",
            Status::Fail,
            format!("root without CAP_SYS_ADMIN (CapEff {cap_eff:016x})"),
        );
    }
    if !has(CAP_SYS_RESOURCE) {
        return finding(
            "root",
            Status::Warn,
            "root without CAP_SYS_RESOURCE: negative oomScoreAdj and raising hard rlimits fail with EPERM",
        );
    }
    finding("root", Status::Ok, "uid 0")
}

fn table(findings: &[Finding]) -> String {
    let width = findings.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in findings {
        // Multi-line details (a TOML error with its snippet) stay under the detail column.
        let indent = format!("\n{:w$}", "", w = 6 + width + 2);
        let detail = f.detail.trim_end().replace('\n', &indent);
        let _ = writeln!(out, "{:<6}{:<width$}  {detail}", f.status.as_str(), f.name);
    }
    out
}

fn json(findings: &[Finding], failed: bool) -> String {
    let checks: Vec<_> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "status": f.status.as_str().to_ascii_lowercase(),
                "detail": f.detail,
            })
        })
        .collect();
    let mut out =
        serde_json::to_string_pretty(&serde_json::json!({ "ok": !failed, "checks": checks }))
            .expect("JSON values serialize");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests;
