//! Resolving `process.args[0]` the way runc does (Go's `exec.LookPath`),
//! but with the PATH of the container process, not of the init.
//!
//! It runs inside the container's mount namespace, so absolute paths and
//! symlinks resolve within the container's root.

use crate::errno_text::errno_text;
use nix::errno::Errno;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Used when `process.env` has no `PATH` (runc's and Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LookupError {
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotInPath(String),
    #[error("exec: {name:?}: stat {path}: {reason}")]
    Missing {
        name: String,
        path: PathBuf,
        reason: String,
    },
    /// Go's words for a file without an execute bit.
    #[error("exec: {0:?}: permission denied")]
    NotExecutable(String),
    /// Go's since 1.21 (`findExecutable`'s `EISDIR`), which runc 1.2+ is
    /// built with; runc 1.1 said `permission denied`.
    #[error("exec: {0:?}: is a directory")]
    Directory(String),
    /// Go's `ErrDot` (since 1.19): found through an empty or relative
    /// PATH entry.
    #[error("exec: {0:?}: cannot run executable found relative to current directory")]
    RelativeToCwd(String),
    /// What `faccessat` said about a file the caller may not run.
    #[error("exec: {name:?}: {reason}")]
    Refused { name: String, reason: String },
}

impl LookupError {
    /// 127 when there is nothing to run, 126 when it cannot be run.
    pub fn exit_code(&self) -> i32 {
        match self {
            LookupError::NotExecutable(_)
            | LookupError::Directory(_)
            | LookupError::RelativeToCwd(_)
            | LookupError::Refused { .. } => crate::status::EXIT_NOT_EXECUTABLE,
            _ => crate::status::EXIT_NOT_FOUND,
        }
    }
}

/// The first `PATH=` entry of a process environment (what `getenv` returns).
pub fn path_from_env(env: &[String]) -> Option<&str> {
    env.iter().find_map(|kv| kv.strip_prefix("PATH="))
}

/// Resolve `name` as the calling process may run what it finds (its user,
/// groups and capabilities, and `noexec` mounts), as Go's `LookPath`
/// (`findExecutable`: `faccessat` with `AT_EACCESS`) does in runc's init
/// once the process's identity is set: a name with a slash is used as
/// given (relative to `cwd`), anything else is searched in `path_var` (or
/// [`DEFAULT_PATH`]), a candidate the caller may not run skipped. Empty
/// and relative PATH entries are searched relative to `cwd`, but what they
/// find is refused, as Go's `LookPath` in runc refuses it.
pub fn lookup_as_caller(
    name: &str,
    path_var: Option<&str>,
    cwd: &Path,
) -> Result<PathBuf, LookupError> {
    lookup_with(name, path_var, cwd, caller_may_run)
}

fn lookup_with(
    name: &str,
    path_var: Option<&str>,
    cwd: &Path,
    may_run: impl Fn(&Path, &fs::Metadata) -> Result<(), Errno>,
) -> Result<PathBuf, LookupError> {
    if name.is_empty() {
        return Err(LookupError::NotInPath(String::new()));
    }
    if name.contains('/') {
        // Named as given, as Go's LookPath does (the process execs it from
        // `cwd`), and looked at from `cwd`.
        let path = cwd.join(name);
        return match fs::metadata(&path) {
            Ok(meta) if is_executable(&meta) => match may_run(&path, &meta) {
                Ok(()) => Ok(PathBuf::from(name)),
                Err(e) => Err(LookupError::Refused {
                    name: name.into(),
                    reason: errno_text(e),
                }),
            },
            Ok(meta) if meta.is_dir() => Err(LookupError::Directory(name.into())),
            Ok(_) => Err(LookupError::NotExecutable(name.into())),
            Err(e) => Err(LookupError::Missing {
                name: name.into(),
                path: PathBuf::from(name),
                reason: io_error_text(&e),
            }),
        };
    }
    let path_var = path_var.unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':') {
        let candidate = cwd.join(dir).join(name);
        let runnable = fs::metadata(&candidate)
            .is_ok_and(|m| is_executable(&m) && may_run(&candidate, &m).is_ok());
        if runnable {
            // As Go's LookPath: what an empty or relative entry finds is
            // refused, not run.
            if !dir.starts_with('/') {
                return Err(LookupError::RelativeToCwd(name.into()));
            }
            return Ok(candidate);
        }
    }
    Err(LookupError::NotInPath(name.into()))
}

/// A regular file (after following symlinks) with an execute bit; root can
/// exec a file if any x bit is set, so the bits are what matters.
fn is_executable(meta: &fs::Metadata) -> bool {
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

/// Go's `findExecutable` after its stat: `faccessat(X_OK, AT_EACCESS)`; a
/// kernel or seccomp filter that refuses the call itself (`EPERM`,
/// `ENOSYS`) leaves the execute bits to decide.
fn caller_may_run(path: &Path, meta: &fs::Metadata) -> Result<(), Errno> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a NUL-terminated path; the call only reads it.
    let r = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) };
    if r == 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno::EPERM | Errno::ENOSYS if is_executable(meta) => Ok(()),
        e => Err(e),
    }
}

/// `No such file or directory (os error 2)` -> `no such file or directory`,
/// matching Go's wording in runc's messages.
fn io_error_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(Errno::from_raw(n)),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn file(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn finds_first_executable_in_path_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        file(&a, "tool", 0o644); // not executable: skipped
        let want = file(&b, "tool", 0o755);
        let path_var = format!("{}:{}", a.display(), b.display());
        assert_eq!(
            lookup_as_caller("tool", Some(&path_var), Path::new("/")).unwrap(),
            want
        );
    }

    #[test]
    fn not_found_has_runc_wording() {
        let tmp = tempfile::tempdir().unwrap();
        let err = lookup_as_caller("nope", Some(tmp.path().to_str().unwrap()), Path::new("/"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"exec: "nope": executable file not found in $PATH"#
        );
        assert_eq!(err.exit_code(), 127);
    }

    #[test]
    fn as_the_caller_what_it_may_not_run_is_skipped_or_refused() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let own = file(&a, "tool", 0o700);
        let everyone = file(&b, "tool", 0o755);
        let path_var = format!("{}:{}", a.display(), b.display());
        // In a child that becomes uid 1000 without capabilities.
        // SAFETY: the child only makes syscalls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = nix::unistd::setuid(nix::unistd::Uid::from_raw(1000)).is_ok()
                    && lookup_as_caller("tool", Some(&path_var), Path::new("/")).ok()
                        == Some(everyone.clone())
                    && lookup_as_caller(own.to_str().unwrap(), None, Path::new("/"))
                        .is_err_and(|e| e.to_string().ends_with(": permission denied"));
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn directories_are_not_executables() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("sh")).unwrap();
        let err =
            lookup_as_caller("sh", Some(tmp.path().to_str().unwrap()), Path::new("/")).unwrap_err();
        assert!(matches!(err, LookupError::NotInPath(_)));
    }

    #[test]
    fn names_with_a_slash_are_relative_to_cwd() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("bin")).unwrap();
        let want = file(&tmp.path().join("bin"), "app", 0o700);
        assert_eq!(
            lookup_as_caller("bin/app", Some(""), tmp.path()).unwrap(),
            Path::new("bin/app")
        );
        assert_eq!(
            lookup_as_caller(want.to_str().unwrap(), None, Path::new("/x")).unwrap(),
            want
        );

        let err = lookup_as_caller("./missing", None, tmp.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec: \"./missing\": stat ./missing: no such file or directory"
        );
        assert_eq!(err.exit_code(), 127);

        file(tmp.path(), "data", 0o644);
        let err = lookup_as_caller("./data", None, tmp.path()).unwrap_err();
        assert_eq!(err.to_string(), "exec: \"./data\": permission denied");
        assert_eq!(err.exit_code(), 126);
        let err = lookup_as_caller("./bin", None, tmp.path()).unwrap_err();
        assert_eq!(err.to_string(), "exec: \"./bin\": is a directory");
        assert_eq!(err.exit_code(), 126);
    }

    #[test]
    fn follows_symlinks_and_refuses_what_relative_path_entries_find() {
        let tmp = tempfile::tempdir().unwrap();
        let target = file(tmp.path(), "busybox", 0o755);
        fs::create_dir_all(tmp.path().join("bin")).unwrap();
        symlink(&target, tmp.path().join("bin/sh")).unwrap();
        // An empty entry means the current directory, "bin" is cwd/bin:
        // what they find is refused, as Go's LookPath refuses it (ErrDot).
        let err = lookup_as_caller("busybox", Some(":bin"), tmp.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec: \"busybox\": cannot run executable found relative to current directory"
        );
        assert!(matches!(
            lookup_as_caller("sh", Some(":bin"), tmp.path()),
            Err(LookupError::RelativeToCwd(_))
        ));
        let bin = tmp.path().join("bin");
        assert_eq!(
            lookup_as_caller(
                "sh",
                Some(&format!("/nonexistent:{}", bin.display())),
                tmp.path()
            )
            .unwrap(),
            bin.join("sh")
        );
        // A dangling symlink is not found.
        symlink("/does/not/exist", tmp.path().join("bin/gone")).unwrap();
        assert!(lookup_as_caller("gone", Some("bin"), tmp.path()).is_err());
    }

    #[test]
    fn path_comes_from_the_process_env() {
        let env = vec!["A=1".to_string(), "PATH=/x:/y".into(), "PATH=/z".into()];
        assert_eq!(path_from_env(&env), Some("/x:/y"));
        assert_eq!(path_from_env(&["PATHX=1".to_string()]), None);
    }
}
