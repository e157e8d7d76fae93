//! Bind mounts of a container under a user namespace, passed through a
//! place its root can reach.
//!
//! LXC makes `lxc.mount.entry` binds inside the container's user namespace,
//! where the mapped root is an unprivileged user on the host: a source under
//! a directory only the node's root may enter (containerd's
//! `io.containerd.grpc.v1.cri/sandboxes/ID/shm`, `hosts`, `resolv.conf`,
//! kubelet's volumes) cannot be looked up. runc opens such sources before
//! it enters the namespace (libcontainer `mountFds`); lxcri binds each
//! source, as the node's root, onto `<state dir>/binds/N`, and LXC binds
//! that. `binds` belongs to root and the container root's group, mode 0710:
//! only the node's root and the container may pass through it, so a
//! staged secret is no more readable than at its source. The staged mounts
//! go on delete and rollback ([`unstage`]).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::lxc::MountEntry;

/// Under the container's state directory.
const BINDS_DIR: &str = "binds";

#[derive(Debug, thiserror::Error)]
pub enum StagedBindError {
    #[error("staging bind source {source_path} at {staged}: {error}")]
    Stage {
        source_path: PathBuf,
        staged: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("unmounting staged bind {staged}: {error}")]
    Unstage {
        staged: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

fn is_bind(e: &MountEntry) -> bool {
    e.fstype == "none" && e.options.iter().any(|o| o == "bind" || o == "rbind")
}

/// Binds each bind entry's source under `state_dir` and points the entry
/// there (lxcri's own, already under `state_dir`, stay). A failure leaves
/// what was staged for [`unstage`].
pub(super) fn stage(
    entries: &mut [MountEntry],
    state_dir: &Path,
    root_gid: u32,
) -> Result<(), StagedBindError> {
    let dir = state_dir.join(BINDS_DIR);
    let foreign = |e: &&mut MountEntry| is_bind(e) && !Path::new(&e.source).starts_with(state_dir);
    for (n, entry) in entries.iter_mut().filter(foreign).enumerate() {
        let source = PathBuf::from(&entry.source);
        let staged = dir.join(n.to_string());
        let failed = |error: std::io::Error| StagedBindError::Stage {
            source_path: source.clone(),
            staged: staged.clone(),
            error,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .and_then(|_| std::os::unix::fs::chown(&dir, Some(0), Some(root_gid)))
            .and_then(|_| fs::set_permissions(&dir, fs::Permissions::from_mode(0o710)))
            .map_err(failed)?;
        // The mount point has the source's kind, as LXC's `create=` does;
        // never an existing file (it could be a mounted source).
        if fs::metadata(&source).map_err(failed)?.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(&staged)
        } else {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&staged)
                .map(drop)
        }
        .map_err(failed)?;
        let mut flags = MsFlags::MS_BIND;
        if entry.options.iter().any(|o| o == "rbind") {
            flags |= MsFlags::MS_REC;
        }
        mount(Some(&source), &staged, None::<&str>, flags, None::<&str>)
            .map_err(|e| failed(e.into()))?;
        entry.source = staged.to_str().expect("state paths are UTF-8").to_string();
    }
    Ok(())
}

/// Unmounts and removes what [`stage`] made under `state_dir`, every entry
/// even when one fails (the first failure is returned: the caller must
/// then keep the state directory, which may still hold a mounted source).
/// Idempotent.
pub(super) fn unstage(state_dir: &Path) -> Result<(), StagedBindError> {
    let dir = state_dir.join(BINDS_DIR);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut first = None;
    for staged in entries.flatten().map(|e| e.path()) {
        let failed = |error: std::io::Error| StagedBindError::Unstage {
            staged: staged.clone(),
            error,
        };
        // Detached: a source still busy (a process of the container that
        // outlived it) must not keep the state from going.
        let unmounted = match umount2(&staged, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(failed(e.into())),
        };
        let removed = unmounted.and_then(|()| {
            match fs::remove_dir(&staged).or_else(|_| fs::remove_file(&staged)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(failed(e)),
            }
        });
        if let Err(e) = removed {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn entry(source: &Path, options: &[&str]) -> MountEntry {
        MountEntry {
            source: source.display().to_string(),
            destination: "etc/hosts".into(),
            fstype: "none".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn only_binds_are_staged_and_unstaging_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let mut entries = vec![MountEntry {
            source: "tmpfs".into(),
            destination: "tmp".into(),
            fstype: "tmpfs".into(),
            options: vec!["create=dir".into()],
        }];
        stage(&mut entries, tmp.path(), 0).unwrap();
        assert_eq!(entries[0].source, "tmpfs");
        assert!(!tmp.path().join(BINDS_DIR).exists());
        unstage(tmp.path()).unwrap();
    }

    #[test]
    fn a_bind_source_is_reached_through_its_staged_mount() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("private");
        fs::DirBuilder::new().mode(0o700).create(&secret).unwrap();
        fs::write(secret.join("hosts"), "127.0.0.1 x\n").unwrap();
        let state = tmp.path().join("state");
        fs::create_dir(&state).unwrap();
        let mut entries = vec![entry(&secret.join("hosts"), &["bind", "ro", "create=file"])];
        stage(&mut entries, &state, 1234).unwrap();
        let staged = state.join("binds/0");
        assert_eq!(entries[0].source, staged.display().to_string());
        assert_eq!(fs::read_to_string(&staged).unwrap(), "127.0.0.1 x\n");
        let binds = fs::metadata(state.join("binds")).unwrap();
        assert_eq!(binds.permissions().mode() & 0o777, 0o710);
        assert_eq!(
            (binds.uid(), binds.gid()),
            (0, 1234),
            "root and the container's group"
        );
        unstage(&state).unwrap();
        assert!(!staged.exists());
        unstage(&state).unwrap();
        fs::remove_dir_all(&state).unwrap();
    }
}
