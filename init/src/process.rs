//! Everything between `fork` and `execve` of the container process, shared
//! by PID 1's child and the exec helper's child.
//!
//! [`Command::new`] validates and converts the spec before the fork, so
//! bad input is reported early; [`Command::exec`] applies it in the order
//! runc's init uses (identity and capabilities last, seccomp while
//! CAP_SYS_ADMIN is still held unless no_new_privs allows loading it last).

use crate::status;
use lxcri_init_spec::ProcessSpec;
use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};
use std::ffi::{CString, NulError};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::str::FromStr;

/// The kernel's limit on classic BPF program length (BPF_MAXINSNS).
const BPF_MAXINSNS: usize = 4096;
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// Default umask when the spec has none (runc's).
const DEFAULT_UMASK: u32 = 0o022;

/// The spec could not be turned into a runnable command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("process.args is empty")]
    NoArgs,
    #[error("{field} contains a NUL byte")]
    Nul { field: &'static str },
    #[error("unknown capability {0:?}")]
    Capability(String),
    #[error("unknown rlimit {0:?}")]
    Rlimit(String),
    #[error("seccomp program: {0}")]
    Seccomp(String),
}

/// A step of the process setup failed (reported on the child's stderr).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{what}: {source}")]
    Sys { what: String, source: Errno },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("AppArmor profile {0:?} requested, but AppArmor is not enabled in this kernel")]
    AppArmorDisabled(String),
    #[error(
        "setgroups is denied in this user namespace, but additional gids {0:?} were requested"
    )]
    SetgroupsDenied(Vec<u32>),
    #[error("exec {path}: {source}")]
    Exec { path: String, source: Errno },
}

impl SetupError {
    fn exit_code(&self) -> i32 {
        match self {
            SetupError::Exec { source, .. } => status::for_exec_errno(*source),
            _ => status::EXIT_SETUP_FAILED,
        }
    }
}

fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> SetupError {
    let what = what.into();
    move |source| SetupError::Sys { what, source }
}

/// The five capability sets as bitmasks (bit n = capability number n).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Parse canonical names (`CAP_CHOWN`) into a bitmask.
pub fn cap_mask(names: &[String]) -> Result<u64, SpecError> {
    names.iter().try_fold(0u64, |mask, name| {
        caps::Capability::from_str(name)
            .map(|cap| mask | cap.bitmask())
            .map_err(|_| SpecError::Capability(name.clone()))
    })
}

/// `RLIMIT_NOFILE` -> the resource.
pub fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

/// `seccomp_export_bpf` output (native-endian `struct sock_filter`s) back
/// into filter entries.
pub fn bpf_to_filters(bpf: &[u8]) -> Result<Vec<libc::sock_filter>, SpecError> {
    if bpf.is_empty() || !bpf.len().is_multiple_of(8) {
        return Err(SpecError::Seccomp(format!(
            "{} bytes is not a non-empty multiple of 8",
            bpf.len()
        )));
    }
    if bpf.len() / 8 > BPF_MAXINSNS {
        return Err(SpecError::Seccomp(format!(
            "{} instructions, the kernel allows {BPF_MAXINSNS}",
            bpf.len() / 8
        )));
    }
    Ok(bpf
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

struct Seccomp {
    filters: Vec<libc::sock_filter>,
    flags: u32,
}

/// Where the process's stdin/stdout/stderr come from.
pub enum Stdio {
    /// Keep this process's fds 0, 1 and 2 (the exec helper without a tty).
    Inherit,
    /// stdin, stdout, stderr received from the shim.
    Fds(Vec<OwnedFd>),
    /// A pty slave: becomes the controlling terminal and fds 0, 1 and 2.
    Terminal(OwnedFd),
}

/// A validated process, ready to be run in a forked child.
pub struct Command {
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
    uid: Uid,
    gid: Gid,
    groups: Vec<u32>,
    umask: u32,
    caps: CapMasks,
    rlimits: Vec<(Resource, u64, u64)>,
    no_new_privileges: bool,
    seccomp: Option<Seccomp>,
    apparmor_profile: Option<String>,
    oom_score_adj: Option<i32>,
}

impl Command {
    /// `exe` is `args[0]` already resolved in the container (see path_lookup).
    pub fn new(spec: &ProcessSpec, exe: &Path) -> Result<Self, SpecError> {
        if spec.args.is_empty() {
            return Err(SpecError::NoArgs);
        }
        let nul = |field| move |_: NulError| SpecError::Nul { field };
        let strings = |v: &[String], field| {
            v.iter()
                .map(|s| CString::new(s.as_str()).map_err(nul(field)))
                .collect::<Result<Vec<_>, _>>()
        };
        let caps = &spec.capabilities;
        let rlimits = spec
            .rlimits
            .iter()
            .map(|r| {
                rlimit_resource(&r.resource)
                    .map(|res| (res, r.soft, r.hard))
                    .ok_or_else(|| SpecError::Rlimit(r.resource.clone()))
            })
            .collect::<Result<_, _>>()?;
        let seccomp = match &spec.seccomp {
            Some(p) => Some(Seccomp {
                filters: bpf_to_filters(&p.bpf)?,
                flags: p.flags,
            }),
            None => None,
        };
        Ok(Command {
            exe: CString::new(exe.as_os_str().as_bytes()).map_err(nul("process.args[0]"))?,
            argv: strings(&spec.args, "process.args")?,
            envp: strings(&spec.env, "process.env")?,
            cwd: CString::new(spec.cwd.as_str()).map_err(nul("process.cwd"))?,
            uid: Uid::from_raw(spec.uid),
            gid: Gid::from_raw(spec.gid),
            groups: spec.additional_gids.clone(),
            umask: spec.umask.unwrap_or(DEFAULT_UMASK),
            caps: CapMasks {
                bounding: cap_mask(&caps.bounding)?,
                effective: cap_mask(&caps.effective)?,
                permitted: cap_mask(&caps.permitted)?,
                inheritable: cap_mask(&caps.inheritable)?,
                ambient: cap_mask(&caps.ambient)?,
            },
            rlimits,
            no_new_privileges: spec.no_new_privileges,
            seccomp,
            apparmor_profile: spec.apparmor_profile.clone(),
            oom_score_adj: spec.oom_score_adj,
        })
    }

    /// Run in the forked child: set everything up and execve. Never returns;
    /// on failure writes `lxcri-init: <what>: <error>` to stderr and exits
    /// 125 (setup), 126 (not executable) or 127 (not found).
    pub fn exec(&self, stdio: Stdio, die_with_parent: bool) -> ! {
        let err = self.setup_and_exec(stdio, die_with_parent);
        let msg = format!("lxcri-init: {err}\n");
        // SAFETY: write(2) and _exit(2) on our own stderr; nothing else to clean up.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(err.exit_code());
        }
    }

    /// Only returns on failure.
    fn setup_and_exec(&self, stdio: Stdio, die_with_parent: bool) -> SetupError {
        match self.setup(stdio, die_with_parent) {
            Err(e) => e,
            Ok(()) => {
                let source = nix::unistd::execve(&self.exe, &self.argv, &self.envp).unwrap_err();
                SetupError::Exec {
                    path: self.exe.to_string_lossy().into_owned(),
                    source,
                }
            }
        }
    }

    fn setup(&self, stdio: Stdio, die_with_parent: bool) -> Result<(), SetupError> {
        let parent = nix::unistd::getppid();
        crate::signals::reset_for_exec();
        // A session of its own: job control and the tty belong to it.
        nix::unistd::setsid().map_err(sys("setsid"))?;
        setup_stdio(stdio)?;
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(self.umask));
        // While still root with every capability (raising a hard limit
        // needs CAP_SYS_RESOURCE, so does lowering oom_score_adj).
        for &(res, soft, hard) in &self.rlimits {
            setrlimit(res, soft, hard).map_err(sys(format!("setrlimit {res:?}")))?;
        }
        if let Some(adj) = self.oom_score_adj {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|source| {
                SetupError::Io {
                    what: format!("set oom_score_adj {adj}"),
                    source,
                }
            })?;
        }
        if let Some(profile) = &self.apparmor_profile {
            apply_apparmor(profile)?;
        }
        if self.no_new_privileges {
            nix::sys::prctl::set_no_new_privs().map_err(sys("set no_new_privs"))?;
        }
        if let Some(seccomp) = self.seccomp.as_ref().filter(|_| !self.no_new_privileges) {
            // Without no_new_privs the kernel requires CAP_SYS_ADMIN, so
            // load now; the profile must then allow the rest of the setup.
            load_seccomp(seccomp)?;
        }
        self.set_identity()?;
        nix::unistd::chdir(self.cwd.as_c_str())
            .map_err(sys(format!("chdir {}", self.cwd.to_string_lossy())))?;
        set_caps(&self.caps)?;
        cloexec_from(3)?;
        if let Some(seccomp) = self.seccomp.as_ref().filter(|_| self.no_new_privileges) {
            // Last, so the filter only has to allow execve.
            load_seccomp(seccomp)?;
        }
        if die_with_parent {
            // After set_identity: changing credentials clears the death signal.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(sys("set pdeathsig"))?;
            if nix::unistd::getppid() != parent {
                return Err(SetupError::Sys {
                    what: "parent exited before exec".into(),
                    source: Errno::ESRCH,
                });
            }
        }
        Ok(())
    }

    /// runc's finalizeNamespace order: shrink the bounding set while we
    /// still have CAP_SETPCAP, keep permitted caps across setuid, switch
    /// identity, then set the exact sets.
    fn set_identity(&self) -> Result<(), SetupError> {
        drop_bounding(self.caps.bounding)?;
        nix::sys::prctl::set_keepcaps(true).map_err(sys("set keepcaps"))?;
        let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() != "deny")
            .unwrap_or(true);
        if setgroups_allowed {
            let groups: Vec<Gid> = self.groups.iter().map(|&g| Gid::from_raw(g)).collect();
            nix::unistd::setgroups(&groups).map_err(sys(format!("setgroups {:?}", self.groups)))?;
        } else if !self.groups.is_empty() {
            return Err(SetupError::SetgroupsDenied(self.groups.clone()));
        }
        nix::unistd::setresgid(self.gid, self.gid, self.gid)
            .map_err(sys(format!("setgid {}", self.gid)))?;
        nix::unistd::setresuid(self.uid, self.uid, self.uid)
            .map_err(sys(format!("setuid {}", self.uid)))?;
        nix::sys::prctl::set_keepcaps(false).map_err(sys("clear keepcaps"))?;
        Ok(())
    }
}

fn setup_stdio(stdio: Stdio) -> Result<(), SetupError> {
    match stdio {
        Stdio::Inherit => Ok(()),
        Stdio::Fds(fds) => {
            // Move every source above 2 first, so dup2 onto 0..2 cannot
            // clobber a source that happens to sit there already.
            let mut high = Vec::with_capacity(3);
            for fd in &fds {
                // SAFETY: F_DUPFD_CLOEXEC returns a new fd or -1.
                let new =
                    Errno::result(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })
                        .map_err(sys("duplicate stdio fd"))?;
                high.push(new);
            }
            for (target, &fd) in high.iter().enumerate() {
                dup_onto(fd, target as RawFd)?;
            }
            Ok(())
        }
        Stdio::Terminal(slave) => {
            // SAFETY: TIOCSCTTY takes an int (0: do not steal).
            Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
                .map_err(sys("set controlling terminal"))?;
            for target in 0..3 {
                dup_onto(slave.as_raw_fd(), target)?;
            }
            Ok(())
        }
    }
}

fn dup_onto(fd: RawFd, target: RawFd) -> Result<(), SetupError> {
    // SAFETY: dup2 on fds we own; the result is not close-on-exec.
    Errno::result(unsafe { libc::dup2(fd, target) })
        .map(drop)
        .map_err(sys(format!("dup2 onto fd {target}")))
}

/// Mark every fd from `first` up close-on-exec, so nothing of the init
/// (sockets, the exit dir, signalfd) reaches the container process.
fn cloexec_from(first: u32) -> Result<(), SetupError> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags.
    let res = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if res == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd.
    let entries = std::fs::read_dir("/proc/self/fd").map_err(|source| SetupError::Io {
        what: "list /proc/self/fd".into(),
        source,
    })?;
    let fds: Vec<RawFd> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a possibly stale fd just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

fn drop_bounding(keep: u64) -> Result<(), SetupError> {
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if present < 0 {
            break; // EINVAL: past the kernel's last capability
        }
        if present == 1 {
            // SAFETY: as above.
            Errno::result(unsafe {
                libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0)
            })
            .map_err(sys(format!("drop capability {cap} from the bounding set")))?;
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Effective, permitted and inheritable in one capset (setting them one by
/// one can fail in between, e.g. effective larger than permitted), then the
/// ambient set, which needs the first three in place.
fn set_caps(caps: &CapMasks) -> Result<(), SetupError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |m: u64| [m as u32, (m >> 32) as u32];
    let (e, p, i) = (
        split(caps.effective),
        split(caps.permitted),
        split(caps.inheritable),
    );
    let data = [
        CapData {
            effective: e[0],
            permitted: p[0],
            inheritable: i[0],
        },
        CapData {
            effective: e[1],
            permitted: p[1],
            inheritable: i[1],
        },
    ];
    // SAFETY: capset reads a v3 header and two data structs.
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) })
        .map_err(sys("set capabilities (capset)"))?;
    // SAFETY: prctl with integer arguments.
    let cleared = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if cleared < 0 && caps.ambient != 0 {
        return Err(SetupError::Sys {
            what: "clear ambient capabilities".into(),
            source: Errno::last(),
        });
    }
    for cap in (0..64u32).filter(|c| caps.ambient & (1 << c) != 0) {
        // SAFETY: as above.
        Errno::result(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            )
        })
        .map_err(sys(format!(
            "raise ambient capability {cap} (it must be permitted and inheritable)"
        )))?;
    }
    Ok(())
}

fn load_seccomp(seccomp: &Seccomp) -> Result<(), SetupError> {
    let prog = libc::sock_fprog {
        len: seccomp.filters.len() as libc::c_ushort,
        filter: seccomp.filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel copies the program; `prog` and the filters outlive the call.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            seccomp.flags as libc::c_ulong,
            &prog,
        )
    })
    .map(drop)
    .map_err(sys("load seccomp filter"))
}

/// Ask AppArmor to switch to `profile` at the next execve.
fn apply_apparmor(profile: &str) -> Result<(), SetupError> {
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    if !enabled {
        // Nothing to leave unconfined without AppArmor.
        if profile == "unconfined" {
            return Ok(());
        }
        return Err(SetupError::AppArmorDisabled(profile.into()));
    }
    // The LSM-specific file exists since Linux 5.8; the generic one before.
    let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(attr, format!("exec {profile}")).map_err(|source| SetupError::Io {
        what: format!("apply AppArmor profile {profile:?} via {attr}"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lxcri_init_spec::{CapabilitySets, Rlimit, SeccompProgram};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capability_names_become_bits() {
        assert_eq!(cap_mask(&[]).unwrap(), 0);
        assert_eq!(cap_mask(&names(&["CAP_CHOWN"])).unwrap(), 1);
        assert_eq!(
            cap_mask(&names(&["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_KILL"])).unwrap(),
            (1 << 5) | (1 << 10)
        );
        assert_eq!(
            cap_mask(&names(&["CAP_CHECKPOINT_RESTORE"])).unwrap(),
            1 << 40
        );
        assert_eq!(
            cap_mask(&names(&["CAP_CHOWN", "chown"])).unwrap_err(),
            SpecError::Capability("chown".into())
        );
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(
            rlimit_resource("RLIMIT_NOFILE"),
            Some(Resource::RLIMIT_NOFILE)
        );
        assert_eq!(
            rlimit_resource("RLIMIT_RTTIME"),
            Some(Resource::RLIMIT_RTTIME)
        );
        assert_eq!(rlimit_resource("NOFILE"), None);
    }

    #[test]
    fn bpf_bytes_become_sock_filters() {
        // BPF_LD|BPF_W|BPF_ABS k=4 (load arch), then BPF_RET|BPF_K SECCOMP_RET_ALLOW.
        let mut bpf = Vec::new();
        for (code, jt, jf, k) in [(0x20u16, 0u8, 0u8, 4u32), (0x06, 1, 2, 0x7fff_0000)] {
            bpf.extend_from_slice(&code.to_ne_bytes());
            bpf.extend_from_slice(&[jt, jf]);
            bpf.extend_from_slice(&k.to_ne_bytes());
        }
        let f = bpf_to_filters(&bpf).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].code, f[0].jt, f[0].jf, f[0].k), (0x20, 0, 0, 4));
        assert_eq!(
            (f[1].code, f[1].jt, f[1].jf, f[1].k),
            (0x06, 1, 2, 0x7fff_0000)
        );

        assert!(bpf_to_filters(&[]).is_err());
        assert!(bpf_to_filters(&bpf[..7]).is_err());
        assert!(bpf_to_filters(&vec![0u8; 8 * (BPF_MAXINSNS + 1)]).is_err());
    }

    #[test]
    fn command_validates_the_spec() {
        let mut spec = ProcessSpec {
            args: names(&["sh", "-c", "true"]),
            env: names(&["PATH=/bin"]),
            cwd: "/".into(),
            capabilities: CapabilitySets {
                bounding: names(&["CAP_KILL"]),
                ..Default::default()
            },
            rlimits: vec![Rlimit {
                resource: "RLIMIT_NOFILE".into(),
                soft: 1024,
                hard: 4096,
            }],
            seccomp: Some(SeccompProgram {
                bpf: vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f],
                flags: 0,
            }),
            ..Default::default()
        };
        let cmd = Command::new(&spec, Path::new("/bin/sh")).unwrap();
        assert_eq!(cmd.caps.bounding, 1 << 5);
        assert_eq!(cmd.umask, 0o022);
        assert_eq!(cmd.rlimits, vec![(Resource::RLIMIT_NOFILE, 1024, 4096)]);

        spec.env.push("BAD=\0".into());
        assert_eq!(
            Command::new(&spec, Path::new("/bin/sh")).err(),
            Some(SpecError::Nul {
                field: "process.env"
            })
        );
        spec.env.pop();
        spec.rlimits[0].resource = "RLIMIT_BOGUS".into();
        assert_eq!(
            Command::new(&spec, Path::new("/bin/sh")).err(),
            Some(SpecError::Rlimit("RLIMIT_BOGUS".into()))
        );
        spec.args.clear();
        assert_eq!(
            Command::new(&spec, Path::new("/bin/sh")).err(),
            Some(SpecError::NoArgs)
        );
    }

    #[test]
    fn setup_errors_map_to_exit_codes() {
        let e = SetupError::Exec {
            path: "/x".into(),
            source: Errno::ENOENT,
        };
        assert_eq!(e.exit_code(), 127);
        let e = SetupError::Exec {
            path: "/x".into(),
            source: Errno::EACCES,
        };
        assert_eq!(e.exit_code(), 126);
        assert_eq!(SetupError::AppArmorDisabled("p".into()).exit_code(), 125);
        assert_eq!(
            SetupError::AppArmorDisabled("my-profile".into()).to_string(),
            "AppArmor profile \"my-profile\" requested, but AppArmor is not enabled in this kernel"
        );
    }
}
