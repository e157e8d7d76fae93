//! The one place lxcri runs the `zfs` binary, and how its failures read.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{Result, ZfsError};
use crate::command::{display, CommandRunner, SystemCommands};

/// Runs `zfs ARGS...`; returns stdout, or the failure classified.
pub trait ZfsCommand: Send + Sync + std::fmt::Debug {
    fn run(&self, args: &[String]) -> Result<String>;
}

impl<T: ZfsCommand + ?Sized> ZfsCommand for Box<T> {
    fn run(&self, args: &[String]) -> Result<String> {
        (**self).run(args)
    }
}

/// The real `zfs` binary (a path, or a name looked up in `$PATH`), run
/// with a deadline: a hung pool (or zfs-fuse daemon) fails the operation
/// instead of blocking a shim forever.
#[derive(Debug, Clone)]
pub struct ZfsCli {
    binary: PathBuf,
    runner: SystemCommands,
}

impl ZfsCli {
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            runner: SystemCommands::default(),
        }
    }
}

impl ZfsCommand for ZfsCli {
    fn run(&self, args: &[String]) -> Result<String> {
        // A config value from TOML: always UTF-8.
        let program = self.binary.to_string_lossy();
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        let out = self
            .runner
            .run(&program, &argv)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::TimedOut => ZfsError::TimedOut {
                    command: display(&program, &argv),
                    source,
                },
                _ => ZfsError::NotInstalled {
                    binary: program.to_string(),
                    source,
                },
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(classify(
            args,
            out.status.code().unwrap_or(-1),
            &String::from_utf8_lossy(&out.stderr),
        ))
    }
}

/// The quoted name in `cannot VERB 'NAME': ...`, ZFS's error lines.
fn quoted(stderr: &str) -> Option<String> {
    let start = stderr.find('\'')? + 1;
    let len = stderr[start..].find('\'')?;
    Some(stderr[start..start + len].to_string())
}

/// Turns a failed command's stderr into an error lxcri can act on; what it
/// does not recognise stays [`ZfsError::Failed`] with the text as it is.
pub(super) fn classify(args: &[String], code: i32, stderr: &str) -> ZfsError {
    let text = stderr.trim();
    let name = || quoted(text).unwrap_or_default();
    if let Some(rest) = text.split("no such pool '").nth(1) {
        let pool = rest.split('\'').next().unwrap_or_default().to_string();
        return ZfsError::NoSuchPool { pool };
    }
    if text.contains("dataset does not exist") {
        return ZfsError::MissingDataset { name: name() };
    }
    if text.contains("dataset already exists") {
        return ZfsError::AlreadyExists { name: name() };
    }
    if text.contains("has dependent clones") {
        return ZfsError::DependentClones { name: name() };
    }
    if text.contains("is busy") {
        return ZfsError::Busy { name: name() };
    }
    if text.contains("out of space") || text.contains("quota exceeded") {
        return ZfsError::OutOfSpace { name: name() };
    }
    ZfsError::Failed {
        args: args.join(" "),
        code,
        stderr: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn failures_are_classified_by_their_text() {
        let a = args(&["destroy", "tank/nope"]);
        assert!(matches!(
            classify(&a, 1, "cannot open 'tank/nope': dataset does not exist\n"),
            ZfsError::MissingDataset { name } if name == "tank/nope"
        ));
        assert!(matches!(
            classify(&a, 1, "cannot create 'nopool/x': no such pool 'nopool'\n"),
            ZfsError::NoSuchPool { pool } if pool == "nopool"
        ));
        assert!(matches!(
            classify(
                &a,
                1,
                "cannot destroy 'tank/img@s': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\ntank/c1\n"
            ),
            ZfsError::DependentClones { name } if name == "tank/img@s"
        ));
        assert!(matches!(
            classify(&a, 1, "cannot create 'tank/c1': dataset already exists\n"),
            ZfsError::AlreadyExists { name } if name == "tank/c1"
        ));
        assert!(matches!(
            classify(&a, 1, "cannot create 'tank/x': out of space\n"),
            ZfsError::OutOfSpace { name } if name == "tank/x"
        ));
        assert!(matches!(
            classify(&a, 1, "cannot destroy 'tank/c1': dataset is busy\n"),
            ZfsError::Busy { name } if name == "tank/c1"
        ));
        let other = classify(&a, 2, "invalid option 'p'\nusage: ...\n");
        assert!(matches!(other, ZfsError::Failed { code: 2, .. }));
        assert!(other.to_string().contains("destroy tank/nope"), "{other}");
    }

    #[test]
    fn a_missing_binary_says_so() {
        let cli = ZfsCli::new("/nonexistent/zfs");
        let err = cli.run(&args(&["list"])).unwrap_err();
        assert!(matches!(err, ZfsError::NotInstalled { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/zfs"), "{err}");
    }

    #[test]
    fn a_hung_zfs_is_killed_at_its_deadline() {
        let tmp = tempfile::tempdir().unwrap();
        let fake = tmp.path().join("zfs");
        std::fs::write(&fake, "#!/bin/sh\nsleep 30\n").unwrap();
        let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(&fake, mode).unwrap();
        let mut cli = ZfsCli::new(&fake);
        cli.runner.timeout = std::time::Duration::from_millis(200);
        let err = cli.run(&args(&["list"])).unwrap_err();
        assert!(matches!(err, ZfsError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("list"), "{err}");
    }
}
