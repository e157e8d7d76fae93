//! Writing `VMID.conf` on the node the way PVE does: under its per-CT
//! config lock, with an atomic replace.
//!
//! pve-container takes `flock(LOCK_EX)` on
//! `/run/lock/lxc/pve-config-VMID.lock` around every read-modify-write of
//! a CT's config (API and `pct` alike), so holding the same lock makes
//! lxcri's edit one of theirs. The new content goes into a temporary file
//! in the same directory and is renamed over the old one, as PVE's
//! `file_set_contents` does: a reader (or a crash) sees the old or the new
//! file, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use super::{PveConfigError, PveConfigFile, Result};

/// Where a node keeps CT configs and their locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    /// `[pve] config_dir`, `/etc/pve` on a node; configs are in `lxc/`.
    pub config_dir: PathBuf,
    /// `/run/lock/lxc`.
    pub lock_dir: PathBuf,
}

impl Default for NodePaths {
    fn default() -> Self {
        Self::under(Path::new("/"))
    }
}

impl NodePaths {
    /// The node layout below `root` (`/` on a node, a tempdir in tests, the
    /// stand-in's data dir).
    pub fn under(root: &Path) -> Self {
        Self {
            config_dir: root.join("etc/pve"),
            lock_dir: root.join("run/lock/lxc"),
        }
    }

    pub fn config_file(&self, vmid: u32) -> PathBuf {
        self.config_dir.join("lxc").join(format!("{vmid}.conf"))
    }

    pub fn lock_file(&self, vmid: u32) -> PathBuf {
        self.lock_dir.join(format!("pve-config-{vmid}.lock"))
    }

    /// `config_dir/local`, whose own mode says whether the node is quorate.
    pub fn quorum_file(&self) -> PathBuf {
        self.config_dir.join("local")
    }

    /// Whether pmxcfs takes writes: it shows `local` (a symlink) as mode
    /// 0777 with quorum and 0555 without (pve-cluster
    /// src/pmxcfs/cfs-plug-link.c), and PVE's `check_cfs_quorum` reads
    /// that with `lstat`, since root may write anything by mode
    /// (src/PVE/Cluster.pm). Missing (pmxcfs not mounted) is no quorum too.
    pub fn quorate(&self) -> bool {
        fs::symlink_metadata(self.quorum_file()).is_ok_and(|m| m.mode() & 0o200 != 0)
    }
}

/// PVE's config lock of one CT, held until dropped.
#[derive(Debug)]
pub struct ConfigLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl ConfigLock {
    /// PVE waits 10 s for this lock before giving up.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn acquire(paths: &NodePaths, vmid: u32, timeout: Duration) -> Result<Self> {
        let path = paths.lock_file(vmid);
        fs::create_dir_all(&paths.lock_dir).map_err(|e| PveConfigError::io(&paths.lock_dir, e))?;
        let start = Instant::now();
        let mut file = open_lock_file(&path)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Self { _lock: lock, path }),
                Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                    if start.elapsed() >= timeout {
                        return Err(PveConfigError::LockTimeout {
                            path,
                            waited_ms: start.elapsed().as_millis() as u64,
                        });
                    }
                    file = f;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err((_, errno)) => {
                    return Err(PveConfigError::io(&path, std::io::Error::from(errno)));
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| PveConfigError::io(path, e))
}

/// Replaces `path` with `content` through a temporary file in the same
/// directory and `rename(2)`. The caller holds the [`ConfigLock`].
pub(super) fn write_atomic(
    paths: &NodePaths,
    path: &Path,
    content: &str,
    _lock: &ConfigLock,
) -> Result<()> {
    // pmxcfs would refuse it with EACCES; this names why.
    if !paths.quorate() {
        return Err(PveConfigError::NoQuorum {
            path: path.into(),
            local: paths.quorum_file(),
        });
    }
    let dir = path.parent().ok_or_else(|| PveConfigError::File {
        path: path.into(),
        message: "has no parent directory".into(),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // PVE's own temporary name pattern; the pid keeps two writers apart.
    let tmp = dir.join(format!("{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&tmp)?;
        f.write_all(content.as_bytes())?;
        // pmxcfs commits on close; on a local fs this makes the rename
        // durable. Neither needs more than best effort here.
        let _ = f.sync_all();
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(PveConfigError::io(path, e));
    }
    Ok(())
}

/// Read-modify-write of CT `vmid`'s config under its lock: `edit` changes
/// the parsed file and says whether it changed anything; only then is the
/// file written. The CT must exist (created through the API first).
/// Returns whether the file was written.
pub fn update_node_config<F>(paths: &NodePaths, vmid: u32, edit: F) -> Result<bool>
where
    F: FnOnce(&mut PveConfigFile) -> Result<bool>,
{
    let lock = ConfigLock::acquire(paths, vmid, ConfigLock::DEFAULT_TIMEOUT)?;
    let path = paths.config_file(vmid);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(PveConfigError::File {
                path,
                message: format!("CT {vmid} has no config file"),
            })
        }
        Err(e) => return Err(PveConfigError::io(&path, e)),
    };
    let mut file = PveConfigFile::parse(&text).map_err(|e| PveConfigError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if !edit(&mut file)? {
        return Ok(false);
    }
    write_atomic(paths, &path, &file.render(), &lock)?;
    Ok(true)
}
