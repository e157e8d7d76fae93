//! Cgroups LXC makes where `lxc.cgroup.dir.container` says (the spec's
//! `linux.cgroupsPath`) rather than under its own names: what is cleared
//! before a start and what a teardown may remove.
//!
//! The path comes from the spec, so two containers may name the same one,
//! and a config in `lxc.lxcpath` may name anything. A teardown therefore
//! never removes a path read back from a config: once the container's init
//! is seen in its cgroups, their directories are recorded with their
//! inodes ([`record`]), and only a directory that still has that inode is
//! removed ([`recorded`]). A start that fails before leaves nothing to
//! record: LXC prunes a cgroup it made when its start fails or its monitor
//! exits (lxc 5.0.2 src/lxc/cgroups/cgfsng.c `cgroup_tree_prune_leaf`,
//! `cgfsng_payload_destroy`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The record, in the LXC container's directory: `<inode> <path>` lines.
pub const RECORD_FILE: &str = "lxcri.cgroups";

#[derive(Debug, thiserror::Error)]
pub enum PlacedCgroupError {
    /// runc's words (libcontainer/factory_linux.go `Create`).
    #[error("{what} is not empty: {processes} process(es) found in {path}")]
    InUse {
        what: &'static str,
        path: PathBuf,
        processes: usize,
    },
    #[error("{what} {path} exists with cgroups below it")]
    NotALeaf { what: &'static str, path: PathBuf },
    #[error("{what}: removing the empty cgroup {path} an earlier run left: {source}")]
    Clear {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recording the container's cgroups in {path}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Before a start that places a cgroup at each of `found` (its directory in
/// every hierarchy that has it): LXC fails when the last component exists.
/// runc refuses a cgroup with processes in it and takes over an empty one,
/// so an empty one with nothing below it (what a crash leaves) is removed
/// for LXC to make again; anything else is refused, named by `what`.
pub fn clear_stale(found: &[PathBuf], what: &'static str) -> Result<(), PlacedCgroupError> {
    for path in found {
        let processes = fs::read_to_string(path.join("cgroup.procs"))
            .map(|procs| procs.split_whitespace().count())
            .unwrap_or(0);
        if processes > 0 {
            return Err(PlacedCgroupError::InUse {
                what,
                path: path.clone(),
                processes,
            });
        }
        if has_subdirectory(path) {
            return Err(PlacedCgroupError::NotALeaf {
                what,
                path: path.clone(),
            });
        }
    }
    for path in found {
        match fs::remove_dir(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(PlacedCgroupError::Clear {
                    what,
                    path: path.clone(),
                    source: e,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

fn has_subdirectory(dir: &Path) -> bool {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
}

/// Records `dirs`, the directories the container's init is in, in its LXC
/// directory `container_dir` (owner-only, as every file lxcri writes there).
pub fn record(container_dir: &Path, dirs: &[PathBuf]) -> Result<(), PlacedCgroupError> {
    let path = container_dir.join(RECORD_FILE);
    let mut body = String::new();
    for dir in dirs {
        let err = |source| PlacedCgroupError::Record {
            path: path.clone(),
            source,
        };
        let ino = fs::metadata(dir).map_err(err)?.ino();
        let text = dir.to_str().ok_or_else(|| {
            err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not UTF-8", dir.display()),
            ))
        })?;
        body.push_str(&format!("{ino} {text}\n"));
    }
    crate::owner_only::write(&path, body.as_bytes())
        .map_err(|source| PlacedCgroupError::Record { path, source })
}

/// The recorded directories below `cgroup_root` that still have their
/// inode: the container's own. A directory made anew meanwhile (another
/// container given the same path) has another inode and is not returned.
pub fn recorded(container_dir: &Path, cgroup_root: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string(container_dir.join(RECORD_FILE)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (ino, path) = line.split_once(' ')?;
            let (ino, path) = (ino.parse::<u64>().ok()?, Path::new(path));
            let below_root = path.starts_with(cgroup_root)
                && path.components().all(|c| {
                    matches!(
                        c,
                        std::path::Component::RootDir | std::path::Component::Normal(_)
                    )
                });
            (below_root && fs::metadata(path).is_ok_and(|m| m.ino() == ino))
                .then(|| path.to_path_buf())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recorded_directory_with_its_inode_is_the_containers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        let lxc = tmp.path().join("lxc/ns_c1");
        fs::create_dir_all(&lxc).unwrap();
        let (mem, pids) = (root.join("memory/k8s.io/c1"), root.join("pids/k8s.io/c1"));
        fs::create_dir_all(&mem).unwrap();
        fs::create_dir_all(&pids).unwrap();
        record(&lxc, &[mem.clone(), pids.clone()]).unwrap();
        assert_eq!(recorded(&lxc, &root), [mem.clone(), pids.clone()]);
        // Made anew by another container: another inode, not ours.
        fs::remove_dir(&pids).unwrap();
        fs::create_dir_all(root.join("pids/k8s.io/other")).unwrap();
        fs::create_dir(&pids).unwrap();
        assert_eq!(recorded(&lxc, &root), [mem]);
        // Nothing outside the cgroup root, nothing walking up, ever.
        let ino = fs::metadata(&lxc).unwrap().ino();
        let outside = format!(
            "{ino} {}\n{ino} {}/../lxc/ns_c1\n",
            lxc.display(),
            root.display()
        );
        fs::write(lxc.join(RECORD_FILE), outside).unwrap();
        assert!(recorded(&lxc, &root).is_empty());
        // No record (a start that failed): nothing.
        assert!(recorded(&tmp.path().join("lxc/none"), &root).is_empty());
    }

    #[test]
    fn only_an_empty_leaf_is_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (
            tmp.path().join("memory/ns/c1"),
            tmp.path().join("pids/ns/c1"),
        );
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        clear_stale(
            &[a.clone(), b.clone()],
            "linux.cgroupsPath: container's cgroup",
        )
        .unwrap();
        assert!(!a.exists() && !b.exists() && tmp.path().join("memory/ns").is_dir());

        // With a cgroup below it (say the kubelet's QoS cgroups): refused,
        // nothing removed anywhere.
        fs::create_dir_all(a.join("burstable")).unwrap();
        fs::create_dir_all(&b).unwrap();
        let e = clear_stale(
            &[b.clone(), a.clone()],
            "linux.cgroupsPath: container's cgroup",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("exists with cgroups below it"), "{e}");
        assert!(b.is_dir());

        // A process in it: runc's words.
        fs::remove_dir(a.join("burstable")).unwrap();
        fs::write(a.join("cgroup.procs"), "77\n78\n").unwrap();
        let e = clear_stale(
            std::slice::from_ref(&a),
            "linux.cgroupsPath: container's cgroup",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "linux.cgroupsPath: container's cgroup is not empty: 2 process(es) found in "
            ),
            "{e}"
        );
    }
}
