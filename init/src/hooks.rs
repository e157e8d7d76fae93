//! OCI hooks (see `lxcri_init_spec::HookRun`): the executor, which runs
//! one phase's hooks in order with the state on stdin, and mode 4,
//! `lxcri-init hooks <spec.json>`, which the shim runs on the host, for
//! `createContainer` in the container's namespaces first.
//!
//! As runc's: `args` empty runs `[path]`; stdout and stderr are kept and
//! quoted when the hook fails; the first hook that fails (a non-zero exit,
//! a signal, its timeout) ends the phase.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use lxcri_init_spec::{ContainerView, Hook, HookRun, HookState};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::init_proc::{InitProc, InitProcError};
use crate::spec_file::{self, SpecFileError};

/// Output kept per stream for the error message.
const OUTPUT_LIMIT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{field} ({path}): {detail}")]
    Failed {
        field: String,
        path: String,
        detail: String,
    },
    #[error("{field}: {what}: {source}")]
    Spawn {
        field: String,
        what: &'static str,
        source: Errno,
    },
    #[error("{what}: {source}")]
    View { what: String, source: Errno },
    #[error(transparent)]
    SpecFile(#[from] SpecFileError),
}

/// Mode 4: runs the phase in `spec_path`; 0 when every hook succeeded,
/// else 1 with the cause on stderr.
pub fn run(spec_path: &Path) -> i32 {
    match run_phase(spec_path) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn run_phase(spec_path: &Path) -> Result<(), HookError> {
    let run: HookRun = spec_file::read(spec_path)?;
    if let Some(view) = &run.container {
        enter_container_view(view)?;
    }
    run_hooks(&run.hooks, &run.state, None)
}

/// `startContainer`: in the container, as the process's user with its
/// capabilities and seccomp filter, right before `execve`. A hook
/// without `env` gets the process's.
pub fn run_start_container(
    hooks: &[Hook],
    state: &HookState,
    process_env: &[CString],
) -> Result<(), HookError> {
    let mut state = state.clone();
    state.pid = Some(std::process::id() as i32);
    run_hooks(hooks, &state, Some(process_env))
}

/// Runs `hooks` in order; `default_env` for those without `env` (`None`:
/// this process's environment).
pub fn run_hooks(
    hooks: &[Hook],
    state: &HookState,
    default_env: Option<&[CString]>,
) -> Result<(), HookError> {
    let input = serde_json::to_vec(state).expect("the state serializes");
    for hook in hooks {
        run_one(hook, &input, default_env)?;
    }
    Ok(())
}

fn cstrings(v: &[String]) -> Option<Vec<CString>> {
    v.iter().map(|s| CString::new(s.as_str()).ok()).collect()
}

/// The read end of a pipe that already holds `input`, its write end
/// closed: the hook reads the state and then EOF, and nothing is written
/// once it could be gone (no SIGPIPE, which would end a non-PID-1 init).
fn stdin_with(input: &[u8]) -> Result<OwnedFd, Errno> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // A pipe holds 64 KiB; a larger state (many annotations) gets room up
    // to the node's pipe-max-size (1 MiB by default).
    if input.len() > 64 * 1024 {
        let size = i32::try_from(input.len()).map_err(|_| Errno::E2BIG)?;
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(size))?;
    }
    let mut written = 0;
    while written < input.len() {
        match nix::unistd::write(&w, &input[written..]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(r)
}

fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn run_one(hook: &Hook, input: &[u8], default_env: Option<&[CString]>) -> Result<(), HookError> {
    let spawn_err = |what| {
        let field = hook.field.clone();
        move |source| HookError::Spawn {
            field,
            what,
            source,
        }
    };
    let nul = || spawn_err("a NUL byte in path, args or env")(Errno::EINVAL);
    let path = CString::new(hook.path.as_str()).map_err(|_| nul())?;
    let argv = if hook.args.is_empty() {
        vec![path.clone()]
    } else {
        cstrings(&hook.args).ok_or_else(nul)?
    };
    let envp = match (&hook.env, default_env) {
        (Some(env), _) => cstrings(env).ok_or_else(nul)?,
        (None, Some(env)) => env.to_vec(),
        (None, None) => std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).map_err(|_| nul())
            })
            .collect::<Result<_, _>>()?,
    };
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(spawn_err("pipe"));
    let stdin_r = stdin_with(input).map_err(spawn_err("write the state to the hook's stdin"))?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // Everything the child needs is made before the fork: it may only
    // call async-signal-safe functions (the test harness has threads).
    let argv_ptrs = null_terminated(&argv);
    let envp_ptrs = null_terminated(&envp);
    // SAFETY: the child only calls async-signal-safe functions.
    let child = match unsafe { fork() }.map_err(spawn_err("fork"))? {
        ForkResult::Child => {
            // SAFETY: fds and NUL-terminated arrays prepared above;
            // signal and sigprocmask are async-signal-safe.
            unsafe {
                // Rust ignores SIGPIPE in its processes: a hook starts with
                // every signal at its default and none blocked, as the
                // children of runc (Go) do on a node whose containerd
                // ignores none.
                crate::signals::reset_for_exec();
                libc::dup2(stdin_r.as_raw_fd(), 0);
                libc::dup2(out_w.as_raw_fd(), 1);
                libc::dup2(err_w.as_raw_fd(), 2);
                libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
                let msg = b"exec failed\n";
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(127);
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop((stdin_r, out_w, err_w));
    let timeout = hook.timeout();
    let outcome = supervise(child, out_r, err_r, timeout);
    let detail = match outcome.status {
        Some(WaitStatus::Exited(_, 0)) if !outcome.timed_out => return Ok(()),
        _ if outcome.timed_out => format!(
            "did not finish within its timeout of {}s",
            timeout.as_secs()
        ),
        Some(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Some(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        _ => "ended without a status".into(),
    };
    Err(HookError::Failed {
        field: hook.field.clone(),
        path: hook.path.clone(),
        detail: format!(
            "{detail}, stdout: {:?}, stderr: {:?}",
            String::from_utf8_lossy(&outcome.stdout),
            String::from_utf8_lossy(&outcome.stderr)
        ),
    })
}

struct Outcome {
    status: Option<WaitStatus>,
    timed_out: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Collects the output until both streams end (as runc waits for its
/// copies), reaps the hook; kills it at `timeout`.
fn supervise(child: Pid, out: OwnedFd, err: OwnedFd, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut streams = [Some(out), Some(err)];
    let mut kept = [Vec::new(), Vec::new()];
    let mut timed_out = false;
    while streams.iter().any(Option::is_some) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            let _ = kill(child, Signal::SIGKILL);
            break;
        }
        let mut fds: Vec<PollFd> = streams
            .iter()
            .flatten()
            .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let mut ready = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect::<Vec<_>>()
            .into_iter();
        drop(fds);
        for (i, slot) in streams.iter_mut().enumerate() {
            let Some(fd) = slot else { continue };
            if ready.next() != Some(true) {
                continue;
            }
            let mut buf = [0u8; 4096];
            match nix::unistd::read(&*fd, &mut buf) {
                Ok(0) => *slot = None,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept[i].len());
                    kept[i].extend_from_slice(&buf[..n.min(room)]);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => *slot = None,
            }
        }
    }
    // The streams ended; the hook may still run (it closed them): the
    // deadline holds for its exit too.
    let status = loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() >= deadline && !timed_out => {
                timed_out = true;
                let _ = kill(child, Signal::SIGKILL);
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => break other.ok(),
        }
    };
    let [stdout, stderr] = kept;
    Outcome {
        status,
        timed_out,
        stdout,
        stderr,
    }
}

fn view_err(what: impl Into<String>) -> impl FnOnce(Errno) -> HookError {
    let what = what.into();
    move |source| HookError::View { what, source }
}

/// Into the container's cgroups and namespaces, its mount namespace first
/// (where the host view is laid: the host's tree with the container's at
/// `root_path`), `root_path` as the cwd: what runc's `createContainer`
/// hooks see (they run in its init, in the container's mount namespace
/// before `pivot_root`). Mounts they make under `root_path` are the
/// container's.
fn enter_container_view(view: &ContainerView) -> Result<(), HookError> {
    let pid = std::process::id().to_string();
    for procs in &view.cgroup_procs {
        std::fs::write(procs, &pid).map_err(|e| HookError::View {
            what: format!("join cgroup {procs}"),
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    }
    let init = InitProc::open(view.init_pid, view.init_start_time)?;
    // Every namespace opened before any is joined.
    let container_mnt = init.namespace("mnt")?;
    let others = view
        .namespaces
        .iter()
        .map(|n| init.namespace(n).map(|fd| (n.as_str(), fd)))
        .collect::<Result<Vec<_>, _>>()?;
    setns(&container_mnt, CloneFlags::CLONE_NEWNS)
        .map_err(view_err("join the container's mount namespace"))?;
    // Before the user namespace: its root may not search the host's
    // directories on the way.
    nix::unistd::chdir(view.root_path.as_str())
        .map_err(view_err(format!("chdir {}", view.root_path)))?;
    for (name, fd) in &others {
        setns(fd, CloneFlags::empty())
            .map_err(view_err(format!("join the container's {name} namespace")))?;
        if *name == "user" {
            // As runc's init: the container's root, not the overflow id.
            nix::unistd::setresgid(0.into(), 0.into(), 0.into())
                .map_err(view_err("setresgid(0) in the container's user namespace"))?;
            nix::unistd::setresuid(0.into(), 0.into(), 0.into())
                .map_err(view_err("setresuid(0) in the container's user namespace"))?;
        }
    }
    Ok(())
}

impl From<InitProcError> for HookError {
    fn from(e: InitProcError) -> Self {
        Self::View {
            what: e.what,
            source: e.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn state() -> HookState {
        HookState {
            oci_version: "1.1.0".into(),
            id: "c1".into(),
            status: "creating".into(),
            pid: Some(7),
            bundle: "/b".into(),
            annotations: BTreeMap::new(),
        }
    }

    fn sh(field: &str, script: &str, timeout_secs: Option<u64>) -> Hook {
        Hook {
            field: field.into(),
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: Some(vec!["WHO=hook".into()]),
            timeout_secs,
        }
    }

    #[test]
    fn each_hook_reads_the_state_and_runs_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let o = out.display();
        let hooks = [
            sh(
                "hooks.prestart[0]",
                &format!("cat > {o}; echo \" $WHO\" >> {o}"),
                None,
            ),
            sh("hooks.prestart[1]", &format!("echo second >> {o}"), Some(5)),
        ];
        run_hooks(&hooks, &state(), None).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            text,
            "{\"ociVersion\":\"1.1.0\",\"id\":\"c1\",\"status\":\"creating\",\"pid\":7,\"bundle\":\"/b\"} hook\nsecond\n"
        );
    }

    #[test]
    fn a_failing_hook_is_named_with_its_output_and_ends_the_phase() {
        let dir = tempfile::tempdir().unwrap();
        let after = dir.path().join("after");
        let hooks = [
            sh(
                "hooks.createRuntime[0]",
                "echo out; echo oops >&2; exit 3",
                None,
            ),
            sh(
                "hooks.createRuntime[1]",
                &format!("touch {}", after.display()),
                None,
            ),
        ];
        let err = run_hooks(&hooks, &state(), None).unwrap_err().to_string();
        assert_eq!(
            err,
            "hooks.createRuntime[0] (/bin/sh): exit status 3, stdout: \"out\\n\", stderr: \"oops\\n\""
        );
        assert!(!after.exists(), "the phase ends at the first failure");
    }

    #[test]
    fn a_hook_that_closes_its_output_still_has_its_timeout() {
        let began = Instant::now();
        let hook = sh("hooks.prestart[0]", "exec >&- 2>&-; sleep 30", Some(1));
        let err = run_hooks(&[hook], &state(), None).unwrap_err().to_string();
        assert!(
            err.contains("did not finish within its timeout of 1s"),
            "{err}"
        );
        assert!(began.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed() {
        let began = Instant::now();
        let err = run_hooks(
            &[sh("hooks.poststop[0]", "sleep 30", Some(1))],
            &state(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("did not finish within its timeout of 1s"),
            "{err}"
        );
        assert!(began.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn no_args_runs_the_path_and_no_env_takes_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hook");
        let out = dir.path().join("out");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$0 $WHO\" > {}\n", out.display()),
        )
        .unwrap();
        let mut perm = std::fs::metadata(&script).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&script, perm).unwrap();
        let hook = Hook {
            field: "hooks.startContainer[0]".into(),
            path: script.display().to_string(),
            args: Vec::new(),
            env: None,
            timeout_secs: None,
        };
        let env = [CString::new("WHO=process").unwrap()];
        run_hooks(&[hook], &state(), Some(&env)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("{} process\n", script.display())
        );
    }

    #[test]
    fn a_large_state_is_read_whole_and_an_unread_one_is_no_failure() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("n");
        let mut big = state();
        big.annotations.insert("big".into(), "x".repeat(300 * 1024));
        let len = serde_json::to_vec(&big).unwrap().len();
        let hooks = [
            sh(
                "hooks.prestart[0]",
                &format!("wc -c > {}", out.display()),
                None,
            ),
            sh("hooks.prestart[1]", "exit 0", None),
        ];
        run_hooks(&hooks, &big, None).unwrap();
        let n: usize = std::fs::read_to_string(&out)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(n, len);
    }

    #[test]
    fn a_missing_program_fails_the_hook() {
        let hook = Hook {
            field: "hooks.poststart[0]".into(),
            path: "/nonexistent/hook".into(),
            args: Vec::new(),
            env: None,
            timeout_secs: None,
        };
        let err = run_hooks(&[hook], &state(), None).unwrap_err().to_string();
        assert!(
            err.starts_with("hooks.poststart[0] (/nonexistent/hook): exit status 127"),
            "{err}"
        );
    }
}
