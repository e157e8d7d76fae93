//! The node's one copy of `lxcri-init` that containers start from.
//!
//! A container's init must not be the host binary (a container that could
//! write to it, through `/proc/<pid>/exe` while it runs, would own every
//! later container: runc's CVE-2019-5736), so it runs from a copy. One
//! copy per container cost a 1.5 MB file in `/run` (RAM on a node whose
//! `/run` is a tmpfs) and its write on every create; this is one copy per
//! version of the binary, under `<runtime root>/.init`, never written
//! again once made. Each container gets a hard link to it in its own
//! state directory (outside the directory the container sees), which LXC
//! binds read-only over `/.lxcri/lxcri-init`: nothing in the container can
//! write to it (`EROFS` through the mount, `ETXTBSY` while it runs), the
//! init detaches the mount before the container's process runs, and the
//! link keeps the copy a container started from even after a newer
//! version's copy replaced it.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Under the runtime root; a dot name is never a containerd namespace.
const COPIES_DIR: &str = ".init";
/// Copies are `lxcri-init-<key>`.
const COPY_PREFIX: &str = "lxcri-init-";
/// A copy being written is `.tmp-<pid of the shim writing it>-<n>`.
const TMP_PREFIX: &str = ".tmp-";
/// This process's copies so far, for their temporary names.
static COPIES_STARTED: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
pub enum InitCopyError {
    #[error("reading the init binary {path}: {source}")]
    Source {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the init binary {0} changed while it was copied; try again")]
    SourceChanged(PathBuf),
    #[error("making the node's copy of the init binary at {path}: {source}")]
    Copy {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("linking the node's copy of the init binary to {path}: {source}")]
    Link {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Which version of the host binary a copy is of: its file's identity,
/// size and times, so a binary replaced (new inode) or rewritten in place
/// (new ctime) gets a copy of its own without reading it through.
fn version_key(meta: &fs::Metadata) -> String {
    format!(
        "{:x}-{:x}-{:x}-{:x}.{:x}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

/// Links the node's copy of `host_binary` (made first if this version has
/// none) at `link`, a path in the container's state directory.
pub fn link_init_copy(
    host_binary: &Path,
    runtime_root: &Path,
    link: &Path,
) -> Result<(), InitCopyError> {
    let meta = source_metadata(host_binary)?;
    let dir = runtime_root.join(COPIES_DIR);
    let copy = dir.join(format!("{COPY_PREFIX}{}", version_key(&meta)));
    // Linked at once when this version's copy exists, as on every create
    // but the first of a version.
    match fs::hard_link(&copy, link) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            make_copy(host_binary, &meta, &dir, &copy, link)
        }
        linked => linked.map_err(|source| InitCopyError::Link {
            path: link.to_path_buf(),
            source,
        }),
    }
}

fn source_metadata(host_binary: &Path) -> Result<fs::Metadata, InitCopyError> {
    fs::metadata(host_binary).map_err(|source| InitCopyError::Source {
        path: host_binary.to_path_buf(),
        source,
    })
}

/// Copies `host_binary` to `copy` (under a temporary name first, so a copy
/// is whole or absent) and links it at `link` before it takes the shared
/// name: a shim of another version may remove the shared copy at any time
/// (below), the link holds its own. Then removes the copies of other
/// versions: each container started from one holds its own link.
fn make_copy(
    host_binary: &Path,
    meta: &fs::Metadata,
    dir: &Path,
    copy: &Path,
    link: &Path,
) -> Result<(), InitCopyError> {
    let copy_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitCopyError::Copy { path, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .map_err(copy_err(dir))?;
    // Its own name: a pod's shim may make two at once.
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}-{}",
        std::process::id(),
        COPIES_STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut from = fs::File::open(host_binary)?;
        let mut to = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o500)
            .open(&tmp)?;
        io::copy(&mut from, &mut to)?;
        to.set_permissions(fs::Permissions::from_mode(0o555))
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(InitCopyError::Copy { path: tmp, source });
    }
    if version_key(&source_metadata(host_binary)?) != version_key(meta) {
        let _ = fs::remove_file(&tmp);
        return Err(InitCopyError::SourceChanged(host_binary.to_path_buf()));
    }
    if let Err(source) = fs::hard_link(&tmp, link) {
        let _ = fs::remove_file(&tmp);
        return Err(InitCopyError::Link {
            path: link.to_path_buf(),
            source,
        });
    }
    // The container has its init; the shared name only spares the next
    // create a copy.
    if let Err(e) = fs::rename(&tmp, copy) {
        tracing::debug!(path = %copy.display(), error = %e, "naming the node's init copy");
        let _ = fs::remove_file(&tmp);
    }
    remove_stale(dir, copy, Path::new("/proc"));
    Ok(())
}

/// Removes the copies of other versions and the temporaries of shims that
/// died while copying (their pid gone from `proc`; a temporary whose pid
/// runs again stays, which costs only its space). Best effort: what is
/// left costs its space until the next version's first create or the next
/// boot, `/run` being a tmpfs.
fn remove_stale(dir: &Path, keep: &Path, proc: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let older = path != keep && name.starts_with(COPY_PREFIX);
        let dead_copier = name
            .strip_prefix(TMP_PREFIX)
            .and_then(|rest| rest.split('-').next()?.parse::<u32>().ok())
            .is_some_and(|pid| !proc.join(pid.to_string()).exists());
        if older || dead_copier {
            if let Err(e) = fs::remove_file(&path) {
                tracing::debug!(path = %path.display(), error = %e, "removing a stale init copy");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(dir: &Path, body: &[u8]) -> PathBuf {
        let path = dir.join("lxcri-init");
        fs::write(&path, body).unwrap();
        path
    }

    fn copies(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.join(COPIES_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn containers_of_one_version_share_one_read_only_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let host = binary(tmp.path(), b"init v1");
        let root = tmp.path().join("run");
        fs::create_dir(&root).unwrap();
        let (a, b) = (root.join("a"), root.join("b"));
        link_init_copy(&host, &root, &a).unwrap();
        link_init_copy(&host, &root, &b).unwrap();
        assert_eq!(copies(&root).len(), 1, "{:?}", copies(&root));
        let (ma, mb) = (fs::metadata(&a).unwrap(), fs::metadata(&b).unwrap());
        assert_eq!(ma.ino(), mb.ino(), "one inode, not two copies");
        assert_eq!(ma.nlink(), 3);
        assert_eq!(ma.mode() & 0o7777, 0o555);
        assert_eq!(fs::read(&a).unwrap(), b"init v1");
        let dir_mode = fs::metadata(root.join(COPIES_DIR)).unwrap().mode() & 0o7777;
        assert_eq!(dir_mode, 0o711);
    }

    #[test]
    fn a_temporary_of_a_shim_that_died_mid_copy_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, proc) = (tmp.path().join("copies"), tmp.path().join("proc"));
        fs::create_dir_all(proc.join("7")).unwrap();
        fs::create_dir_all(&dir).unwrap();
        for name in [
            ".tmp-7-0",
            ".tmp-8-3",
            // An older shim's name for it.
            ".tmp-8",
            ".tmp-x",
            "lxcri-init-old",
            "lxcri-init-new",
        ] {
            fs::write(dir.join(name), b"").unwrap();
        }
        remove_stale(&dir, &dir.join("lxcri-init-new"), &proc);
        let mut left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        // 7 runs (its copy may be under way), 8 does not; not ours: kept.
        assert_eq!(left, [".tmp-7-0", ".tmp-x", "lxcri-init-new"]);
    }

    #[test]
    fn a_new_version_gets_its_own_copy_and_older_ones_live_on_in_their_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("run");
        fs::create_dir(&root).unwrap();
        let host = binary(tmp.path(), b"init v1");
        let old = root.join("old");
        link_init_copy(&host, &root, &old).unwrap();
        let before = copies(&root);
        // An upgrade: the binary replaced by a new file.
        let staged = tmp.path().join("new");
        fs::write(&staged, b"init v2, longer").unwrap();
        fs::rename(&staged, &host).unwrap();
        let new = root.join("new");
        link_init_copy(&host, &root, &new).unwrap();
        let after = copies(&root);
        assert_eq!(after.len(), 1, "the older copy is gone: {after:?}");
        assert_ne!(before, after);
        assert_eq!(fs::read(&new).unwrap(), b"init v2, longer");
        assert_eq!(fs::read(&old).unwrap(), b"init v1", "kept by its link");
    }

    #[test]
    fn a_missing_binary_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let err = link_init_copy(
            &tmp.path().join("nope"),
            tmp.path(),
            &tmp.path().join("link"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(!tmp.path().join(COPIES_DIR).exists());
    }

    #[test]
    fn a_link_that_exists_fails_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let host = binary(tmp.path(), b"init");
        let link = tmp.path().join("taken");
        fs::write(&link, b"x").unwrap();
        let err = link_init_copy(&host, tmp.path(), &link).unwrap_err();
        assert!(matches!(err, InitCopyError::Link { .. }), "{err}");
        assert!(err.to_string().contains("taken"), "{err}");
    }
}
