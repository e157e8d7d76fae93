//! Everything between `fork` and `execve` of the container process, shared
//! by PID 1's child and the exec helper's child.
//!
//! [`Command::new`] validates and converts the spec before the fork, so
//! bad input is reported early; [`Command::exec`] applies it in the order
//! runc's init uses (identity and capabilities last, seccomp while
//! CAP_SYS_ADMIN is still held unless no_new_privs allows loading it last).

mod caps;
mod fds;
mod keyring;
mod lookup_before_start;
mod scheduling;
mod seccomp;
#[cfg(test)]
mod tests;

use self::caps::{cap_mask, drop_bounding, set_caps, CapMasks};
pub use self::fds::Stdio;
use self::fds::{cloexec_from, give_stdio_to, reopen_dev_null, setup_stdio};
use self::seccomp::{bpf_to_filters, load_seccomp, Seccomp};
use crate::errno_text::errno_text;
use crate::status;
use lxcri_init_spec::{
    ExecCpuAffinity, MemoryPolicy, ProcessSpec, SchedAttr, SessionKeyring, StartHooks,
};
use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};
use std::ffi::{CString, NulError, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
    #[error("{what}: {}", errno_text(*source))]
    Sys { what: String, source: Errno },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("exec {path}: {}", errno_text(*source))]
    Exec { path: String, source: Errno },
    /// What the process's user may not run or cannot find (the create,
    /// or an exec's start, fails).
    #[error(transparent)]
    NotRunnable(crate::path_lookup::LookupError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error("signal {signo} before the process ran")]
    Signalled { signo: i32, exit_status: u32 },
    /// What a child that made a step for the process said.
    #[error("{0}")]
    Reported(String),
}

/// Joins `spec`'s session keyring now: the container's first process does
/// it as soon as the init has read its spec, as runc's init does before
/// anything else, so nothing the init runs has the keyring of the host's
/// processes that started it.
pub fn join_session_keyring(spec: &ProcessSpec) -> Result<(), SetupError> {
    spec.session_keyring.as_ref().map_or(Ok(()), keyring::join)
}

pub(super) fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> SetupError {
    let what = what.into();
    move |source| SetupError::Sys { what, source }
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

/// Who becomes the process, which decides where a failed setup is told.
pub enum Runner {
    /// The container's PID 1 itself: the reason goes to its stderr.
    Pid1,
    /// The exec helper's child: it dies with the helper and writes why
    /// its setup failed to this close-on-exec pipe, which `execve` closes
    /// unwritten (a failed `execve` exits 255 without writing it, as runc's
    /// exec has started by then); the helper tells the shim either way.
    ExecChild(OwnedFd),
}

/// A validated process, ready to be run in a forked child.
pub struct Command {
    exe: CString,
    /// `process.args[0]` and the process's PATH, for the lookup as its
    /// user.
    name: String,
    path_var: Option<String>,
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
    selinux_label: Option<String>,
    oom_score_adj: Option<i32>,
    scheduler: Option<SchedAttr>,
    io_priority: Option<u16>,
    personality: Option<u32>,
    memory_policy: Option<MemoryPolicy>,
    exec_cpu_affinity: Option<ExecCpuAffinity>,
    session_keyring: Option<SessionKeyring>,
    start_hooks: Option<StartHooks>,
}

impl Command {
    /// `exe`: `args[0]` as given; the lookup as the process's user
    /// resolves it (for the container's process before the create is
    /// done, [`Command::look_up_before_start`]; for an exec in its child).
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
            name: spec.args[0].clone(),
            path_var: crate::path_lookup::path_from_env(&spec.env).map(str::to_string),
            argv: strings(&spec.args, "process.args")?,
            envp: strings(
                &crate::passwd::with_home(&spec.env, spec.uid),
                "process.env",
            )?,
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
            selinux_label: spec.selinux_label.clone(),
            oom_score_adj: spec.oom_score_adj,
            scheduler: spec.scheduler,
            io_priority: spec.io_priority,
            personality: spec.personality,
            memory_policy: spec.memory_policy.clone(),
            exec_cpu_affinity: spec.exec_cpu_affinity.clone(),
            session_keyring: spec.session_keyring.clone(),
            start_hooks: None,
        })
    }

    /// For the container's first process, which joined its session keyring
    /// before anything else of the init ran ([`join_session_keyring`]).
    pub fn session_keyring_joined(mut self) -> Self {
        self.session_keyring = None;
        self
    }

    /// `startContainer` hooks, run last before `execve`: as runc's, with
    /// the process's identity, capabilities and seccomp filter.
    pub fn with_start_hooks(mut self, hooks: Option<StartHooks>) -> Self {
        self.start_hooks = hooks;
        self
    }

    /// Set everything up and execve. Never returns; on failure says why
    /// (see [`Runner`]) and exits. The container's process fails as runc
    /// 1.2+'s init: 255, its words on stderr (`exec /x: exec format
    /// error`); so does an exec process whose `execve` refuses what the
    /// lookup found (runc's exec has started by then). Any other failure of
    /// an exec process is the exec's start failing, 125 (setup), 126 (not
    /// executable) or 127 (not found).
    pub fn exec(&self, stdio: Stdio, runner: Runner) -> ! {
        let err = self.setup_and_exec(stdio, matches!(runner, Runner::ExecChild(_)));
        let (fd, msg, code) = match (&runner, &err) {
            // Killed: nothing to say, as a process killed says nothing.
            (_, SetupError::Signalled { exit_status, .. }) => {
                (2, String::new(), *exit_status as i32)
            }
            (Runner::Pid1, _) | (Runner::ExecChild(_), SetupError::Exec { .. }) => {
                (2, format!("{err}\n"), status::EXIT_INIT_FAILED)
            }
            // 126 or 127, as a shell says a program it cannot run.
            (Runner::ExecChild(pipe), SetupError::NotRunnable(e)) => {
                (pipe.as_raw_fd(), err.to_string(), e.exit_code())
            }
            (Runner::ExecChild(pipe), _) => {
                (pipe.as_raw_fd(), err.to_string(), status::EXIT_SETUP_FAILED)
            }
        };
        // SAFETY: write(2) and _exit(2) on an fd we hold; nothing else to clean up.
        unsafe {
            libc::write(fd, msg.as_ptr().cast(), msg.len());
            libc::_exit(code);
        }
    }

    /// Only returns on failure.
    fn setup_and_exec(&self, stdio: Stdio, exec_child: bool) -> SetupError {
        match self.setup(stdio, exec_child) {
            Err(e) => e,
            Ok(found) => {
                let exe = found.as_deref().unwrap_or(&self.exe);
                let source = nix::unistd::execve(exe, &self.argv, &self.envp).unwrap_err();
                SetupError::Exec {
                    path: exe.to_string_lossy().into_owned(),
                    source,
                }
            }
        }
    }

    /// Ok with the path an exec process's own lookup found, if it made one.
    fn setup(&self, stdio: Stdio, exec_child: bool) -> Result<Option<CString>, SetupError> {
        let parent = nix::unistd::getppid();
        // The mask stays until the end: a signal sent while this runs (the
        // startContainer hooks may take long) waits, blocked, instead of
        // being dropped as PID 1's default-disposition signals are.
        crate::signals::reset_dispositions();
        // A session of its own: job control and the tty belong to it. The
        // container's PID 1 may lead one already (EPERM then).
        match nix::unistd::setsid() {
            Ok(_) => {}
            Err(Errno::EPERM) if nix::unistd::getsid(None) == Ok(nix::unistd::getpid()) => {}
            Err(e) => return Err(sys("setsid")(e)),
        }
        // First, as runc's init and exec: before any filter or identity.
        if let Some(k) = &self.session_keyring {
            keyring::join(k)?;
        }
        setup_stdio(stdio)?;
        // The container's first process only: an exec keeps the stdio it
        // was given, as runc's.
        if !exec_child {
            reopen_dev_null()?;
        }
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(self.umask));
        self.set_affinity_and_rlimits(exec_child)?;
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
        if let Some(label) = &self.selinux_label {
            // SELinux reads the legacy, LSM-neutral attribute.
            std::fs::write("/proc/self/attr/exec", label).map_err(|source| SetupError::Io {
                what: format!("apply SELinux label {label:?} via /proc/self/attr/exec"),
                source,
            })?;
        }
        if self.no_new_privileges {
            nix::sys::prctl::set_no_new_privs().map_err(sys("set no_new_privs"))?;
        }
        self.set_scheduling()?;
        if let Some(seccomp) = self.seccomp.as_ref().filter(|_| !self.no_new_privileges) {
            // Without no_new_privs the kernel requires CAP_SYS_ADMIN, so
            // load now; the profile must then allow the rest of the setup.
            load_seccomp(seccomp)?;
        }
        self.become_the_process_user(true)?;
        // runc sets an exec's personality here, before the filter loaded
        // with no_new_privs (setns_init_linux.go), the first process's
        // after it (standard_init_linux.go).
        if let Some(domain) = self.personality.filter(|_| exec_child) {
            scheduling::set_personality(domain)?;
        }
        let exe = exec_child
            .then(|| self.look_up_as_the_process())
            .transpose()?;
        cloexec_from(3)?;
        if self.start_hooks.is_none() {
            // Before the filter, which then only has to allow execve.
            unblock_signals(exec_child)?;
        }
        if let Some(seccomp) = self.seccomp.as_ref().filter(|_| self.no_new_privileges) {
            load_seccomp(seccomp)?;
        }
        if let Some(domain) = self.personality.filter(|_| !exec_child) {
            scheduling::set_personality(domain)?;
        }
        if let Some(h) = &self.start_hooks {
            // As runc's: under the process's filter.
            crate::hooks::run_start_container(&h.hooks, &h.state, &self.envp)?;
            unblock_signals(exec_child)?;
        }
        if exec_child {
            // After set_identity: changing credentials clears the death signal.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(sys("set pdeathsig"))?;
            if nix::unistd::getppid() != parent {
                return Err(SetupError::Sys {
                    what: "parent exited before exec".into(),
                    source: Errno::ESRCH,
                });
            }
        }
        Ok(exe)
    }

    /// runc's exec looks the program up as the process's user, once that
    /// is set (setns_init_linux.go, Go's `LookPath`): what the user may not
    /// run, or what lies on a `noexec` mount, fails the start rather than
    /// the `execve` after it, and PATH's next entry is taken past one the
    /// user may not run. The path to exec.
    fn look_up_as_the_process(&self) -> Result<CString, SetupError> {
        let found = crate::path_lookup::lookup_as_caller(
            &self.name,
            self.path_var.as_deref(),
            Path::new(OsStr::from_bytes(self.cwd.as_bytes())),
        )
        .map_err(SetupError::NotRunnable)?;
        CString::new(found.as_os_str().as_bytes()).map_err(|_| SetupError::Sys {
            what: format!("exec {}", found.display()),
            source: Errno::EINVAL,
        })
    }

    /// The CPU affinity and rlimits: as runc's, once in the cgroup and
    /// before the scheduler (a deadline policy needs the whole root domain,
    /// a real-time one in a user namespace `RLIMIT_RTPRIO`), while still
    /// root with every capability (raising a hard limit needs
    /// CAP_SYS_RESOURCE).
    fn set_affinity_and_rlimits(&self, exec_child: bool) -> Result<(), SetupError> {
        match self.exec_cpu_affinity.as_ref().filter(|_| exec_child) {
            Some(a) => scheduling::set_exec_cpu_affinity(a)?,
            None => scheduling::reset_cpu_affinity(),
        }
        for &(res, soft, hard) in &self.rlimits {
            setrlimit(res, soft, hard).map_err(sys(format!("setrlimit {res:?}")))?;
        }
        Ok(())
    }

    /// The scheduler, I/O priority and memory policy, in runc's order:
    /// with every capability still held (a real-time policy or class needs
    /// CAP_SYS_NICE or CAP_SYS_ADMIN) and before any filter (Docker's
    /// default allows `set_mempolicy` with CAP_SYS_NICE only).
    fn set_scheduling(&self) -> Result<(), SetupError> {
        if let Some(attr) = &self.scheduler {
            scheduling::set_scheduler(attr)?;
        }
        if let Some(value) = self.io_priority {
            scheduling::set_io_priority(value)?;
        }
        if let Some(policy) = &self.memory_policy {
            scheduling::set_memory_policy(policy)?;
        }
        Ok(())
    }

    /// runc's finalizeNamespace: the cwd entered as root first (a
    /// directory root may enter and the user may not is still the
    /// process's cwd), again once the identity is the user's where root was
    /// refused (a volume only the user may enter, root squashed).
    /// Capabilities last: the process's exact sets.
    fn become_the_process_user(&self, own_stdio: bool) -> Result<(), SetupError> {
        let chdir = || nix::unistd::chdir(self.cwd.as_c_str());
        let failed = |e| {
            sys(format!(
                "chdir to cwd ({:?}) set in config.json failed",
                self.cwd.to_string_lossy()
            ))(e)
        };
        let entered = match chdir() {
            Ok(()) => true,
            Err(Errno::EACCES | Errno::EPERM) => false,
            Err(e) => return Err(failed(e)),
        };
        self.set_identity(own_stdio)?;
        if !entered {
            chdir().map_err(failed)?;
        }
        set_caps(&self.caps)
    }

    /// runc's finalizeNamespace order: shrink the bounding set while we
    /// still have CAP_SETPCAP, keep permitted caps across setuid, switch
    /// identity, then set the exact sets.
    /// `own_stdio`: the process's stdio becomes its user's.
    fn set_identity(&self, own_stdio: bool) -> Result<(), SetupError> {
        drop_bounding(self.caps.bounding)?;
        nix::sys::prctl::set_keepcaps(true).map_err(sys("set keepcaps"))?;
        if own_stdio {
            give_stdio_to(self.uid)?;
        }
        let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() != "deny")
            .unwrap_or(true);
        // Where the user namespace denies setgroups, runc leaves the
        // supplementary groups as they are (init_linux.go `setupUser`).
        if setgroups_allowed {
            let groups: Vec<Gid> = self.groups.iter().map(|&g| Gid::from_raw(g)).collect();
            nix::unistd::setgroups(&groups).map_err(sys(format!("setgroups {:?}", self.groups)))?;
        }
        nix::unistd::setresgid(self.gid, self.gid, self.gid)
            .map_err(sys(format!("setgid {}", self.gid)))?;
        nix::unistd::setresuid(self.uid, self.uid, self.uid)
            .map_err(sys(format!("setuid {}", self.uid)))?;
        nix::sys::prctl::set_keepcaps(false).map_err(sys("clear keepcaps"))?;
        Ok(())
    }
}

/// The signal mask the setup kept, emptied. A signal that arrived
/// meanwhile ends the container's init as it would end runc's before its
/// process ran (the kernel would drop one to PID 1 with the default
/// disposition); the exec helper's child simply receives it.
fn unblock_signals(exec_child: bool) -> Result<(), SetupError> {
    if !exec_child {
        let pid1 = crate::signals::is_pid1();
        if let Some((signo, exit_status)) = crate::signals::pending_ending(pid1) {
            return Err(SetupError::Signalled { signo, exit_status });
        }
        crate::signals::drop_pending_others(pid1);
    }
    crate::signals::unblock_all();
    Ok(())
}

/// Ask AppArmor to switch to `profile` at the next execve. Whether the
/// host has AppArmor and the profile was checked on the host (the
/// container's `/sys` may not even be mounted), as runc's init does.
fn apply_apparmor(profile: &str) -> Result<(), SetupError> {
    // The LSM-specific file exists since Linux 5.8; the generic one before.
    let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    match std::fs::write(attr, format!("exec {profile}")) {
        Ok(()) => Ok(()),
        // Without AppArmor (EINVAL) there is nothing to leave unconfined;
        // the host let no other name through.
        Err(_) if profile == "unconfined" => Ok(()),
        Err(source) => Err(SetupError::Io {
            what: format!("apply AppArmor profile {profile:?} via {attr}"),
            source,
        }),
    }
}
