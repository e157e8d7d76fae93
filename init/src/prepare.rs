//! Preparing the container from inside (PID 1, before `Ready`): `/dev`,
//! binds' flags and attributes, mount propagation, masked and read-only
//! paths, symlinks, the cwd, and finally a read-only rootfs.
//!
//! Doing this inside the container's mount namespace and root means paths
//! and symlinks resolve within the container and cannot escape it.

use lxcri_init_spec::{InitSpec, Propagation, PropagationKind};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("masked path {path}: {source}")]
    Mask { path: String, source: Errno },
    #[error("readonly path {path}: {source}")]
    Readonly { path: String, source: Errno },
    #[error("mount {path}: making the read-only tmpfs read-only: {source}")]
    ReadonlyTmpfs { path: String, source: Errno },
    #[error("mount {path}: setting its flags: {source}")]
    RemountFlags { path: String, source: Errno },
    #[error("chmod {path} (the image's mode for the spec's tmpfs, as runc 1.1): {source}")]
    TmpfsMode { path: String, source: Errno },
    #[error(transparent)]
    BindFlags(#[from] crate::bind_flags::BindFlagsError),
    #[error("mount {path}: setting the recursive attributes of its options (rro, rnosuid, ...) with mount_setattr: {source}")]
    RecursiveAttrs { path: String, source: Errno },
    #[error("create symlink {link} -> {target}: {source}")]
    Symlink {
        link: String,
        target: String,
        source: std::io::Error,
    },
    #[error("cwd {path}: {source}")]
    Cwd {
        path: String,
        source: std::io::Error,
    },
    #[error("cwd {0} is not a directory")]
    CwdNotDir(String),
    #[error("cwd {0:?} is not an absolute path")]
    CwdRelative(String),
    #[error("remount / read-only: {0}")]
    RootfsReadonly(#[source] Errno),
    #[error("mount propagation of {path}: {source}")]
    Propagation { path: String, source: Errno },
    #[error(transparent)]
    Dev(#[from] crate::dev_setup::DevSetupError),
}

pub type Result<T> = std::result::Result<T, PrepareError>;

/// runc's default /dev symlinks, made only where nothing exists yet
/// (`/dev/ptmx` is [`crate::dev_setup`]'s).
const DEV_SYMLINKS: [(&str, &str); 4] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// The container's mounts as runc has them when it runs its create
/// hooks: `/dev`, symlinks, binds' flags and attributes, mount
/// propagation.
pub fn prepare_mounts(spec: &InitSpec) -> Result<()> {
    // First: the masks below bind /dev/null, and the read-only paths bind
    // /proc/sys with whatever is mounted in it.
    crate::dev_setup::setup(
        spec.dev_tmpfs.as_ref(),
        spec.dev_pts.as_ref(),
        &spec.devices,
    )?;
    for l in &spec.symlinks {
        make_symlink(&l.path, &l.target)?;
    }
    // An older shim's spec (lxcri_init_spec::legacy), as its init did.
    for t in &spec.tmpfs_modes {
        fs::set_permissions(&t.destination, fs::Permissions::from_mode(t.mode)).map_err(|e| {
            PrepareError::TmpfsMode {
                path: t.destination.clone(),
                source: io_errno(&e),
            }
        })?;
    }
    // As runc sets them right after each bind, flags first: before the
    // shim's binds go into these ones, and before masks and read-only
    // paths.
    for b in &spec.bind_flags {
        crate::bind_flags::set(b)?;
    }
    for r in &spec.recursive_attrs {
        crate::mount_tree::set_recursive(&r.destination, r.attrs).map_err(|source| {
            PrepareError::RecursiveAttrs {
                path: r.destination.clone(),
                source,
            }
        })?;
    }
    // LXC leaves the whole tree shared (a peer group of its own); runc's
    // order is the tree's propagation first, then each mount's.
    if let Some(p) = spec.rootfs_propagation {
        propagate("/", p)?;
    }
    for m in &spec.mount_propagation {
        propagate(&m.destination, m.propagation)?;
    }
    dev_symlinks()
}

/// The rest, after the create hooks (as runc's masks and read-only remounts
/// follow its hooks): masked and read-only paths, `/dev`'s last touches,
/// the cwd and read-only tmpfs mounts.
pub fn prepare_rest(spec: &InitSpec) -> Result<()> {
    // runc's order: read-only paths first, then masks.
    for path in &spec.readonly_paths {
        readonly_path(path)?;
    }
    mask_paths(&spec.masked_paths)?;
    if spec.process.terminal {
        crate::dev_setup::console_mount_point()?;
    }
    crate::dev_setup::finish(spec.dev_tmpfs.as_ref())?;
    ensure_cwd(&spec.process.cwd)?;
    // Last, as runc's finalizeRootfs: a read-only tmpfs could not take a
    // directory made above.
    for path in &spec.readonly_tmpfs {
        bind_remount(path, MsFlags::MS_RDONLY).map_err(|source| PrepareError::ReadonlyTmpfs {
            path: path.clone(),
            source,
        })?;
    }
    for r in &spec.remount_flags {
        bind_remount(&r.destination, MsFlags::from_bits_retain(r.flags)).map_err(|source| {
            PrepareError::RemountFlags {
                path: r.destination.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// The rootfs read-only, last, as runc's `finalizeRootfs`: only the mount
/// at "/" changes (/proc, /dev... are mounts of their own). Done once the
/// runtime directory's mount point is gone from the rootfs.
pub fn finish_rootfs(spec: &InitSpec) -> Result<()> {
    if spec.rootfs_readonly {
        bind_remount("/", MsFlags::MS_RDONLY).map_err(PrepareError::RootfsReadonly)?;
    }
    Ok(())
}

fn propagate(path: &str, p: Propagation) -> Result<()> {
    let mut flags = match p.kind {
        PropagationKind::Private => MsFlags::MS_PRIVATE,
        PropagationKind::Slave => MsFlags::MS_SLAVE,
        PropagationKind::Shared => MsFlags::MS_SHARED,
        PropagationKind::Unbindable => MsFlags::MS_UNBINDABLE,
    };
    if p.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>).map_err(|source| {
        PrepareError::Propagation {
            path: path.to_string(),
            source,
        }
    })
}

/// Masks as runc's `maskPaths` (1.3.6+ libcontainer/rootfs_linux.go): a
/// file gets /dev/null bound over it; the first directory an empty
/// read-only tmpfs with room for nothing (`nr_blocks=1,nr_inodes=1`), each
/// later one a bind of that tmpfs (one superblock for all), or a tmpfs of
/// its own once a bind failed.
fn mask_paths(paths: &[String]) -> Result<()> {
    let mut shared: Option<OwnedFd> = None;
    let mut bind_failed = false;
    for path in paths {
        let err = |source| PrepareError::Mask {
            path: path.clone(),
            source,
        };
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(err(io_errno(&e))),
        };
        if !meta.is_dir() {
            mount(
                Some("/dev/null"),
                path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(err)?;
            continue;
        }
        if let Some(fd) = shared.as_ref().filter(|_| !bind_failed) {
            let source = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
            let bound = mount(
                Some(source.as_str()),
                path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            );
            if bound.is_ok() {
                continue;
            }
            bind_failed = true;
        }
        // A kernel of Ubuntu 20.04 refuses fewer than two inodes (runc
        // 1.5's `maskDir` tries again with two).
        let tmpfs = |data: &str| {
            mount(
                Some("tmpfs"),
                path.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some(data),
            )
        };
        tmpfs("nr_blocks=1,nr_inodes=1")
            .or_else(|_| tmpfs("nr_blocks=1,nr_inodes=2"))
            .map_err(err)?;
        if shared.is_none() {
            let fd = open(
                path.as_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(err)?;
            shared = Some(fd);
        }
    }
    Ok(())
}

/// Bind the path onto itself and make that bind read-only.
fn readonly_path(path: &str) -> Result<()> {
    let err = |source| PrepareError::Readonly {
        path: path.into(),
        source,
    };
    match mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    bind_remount(path, MsFlags::MS_RDONLY).map_err(err)
}

/// A bind remount adding `add` to the mount at `path` and keeping what it
/// has: in a user namespace flags like nosuid are locked and dropping them
/// is EPERM, and no mount may silently gain write, exec or suid either.
fn bind_remount(path: &str, add: MsFlags) -> std::result::Result<(), Errno> {
    let current = statvfs(path)?.flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | kept_flags(current) | add;
    if current.contains(FsFlags::ST_RDONLY) {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
}

/// The per-mount flags of `statvfs` that a bind remount must repeat.
fn kept_flags(current: FsFlags) -> MsFlags {
    const KEPT: u64 = libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC
        | libc::MS_NOATIME
        | libc::MS_NODIRATIME
        | libc::MS_RELATIME;
    MsFlags::from_bits_retain(crate::bind_flags::statvfs_mount_flags(current.bits()) & KEPT)
}

fn dev_symlinks() -> Result<()> {
    for (link, target) in DEV_SYMLINKS {
        make_symlink(link, target)?;
    }
    Ok(())
}

/// A symlink at `link`, unless something is there already.
fn make_symlink(link: &str, target: &str) -> Result<()> {
    if fs::symlink_metadata(link).is_ok() {
        return Ok(());
    }
    match symlink(target, link) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(PrepareError::Symlink {
            link: link.to_string(),
            target: target.to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// The cwd must be a directory; a missing one is created (as runc does).
fn ensure_cwd(cwd: &str) -> Result<PathBuf> {
    let path = Path::new(cwd);
    if !path.is_absolute() {
        return Err(PrepareError::CwdRelative(cwd.into()));
    }
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(path.into()),
        Ok(_) => Err(PrepareError::CwdNotDir(cwd.into())),
        Err(e) if e.kind() == ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map(|()| path.into())
            .map_err(|source| PrepareError::Cwd {
                path: cwd.into(),
                source,
            }),
        Err(source) => Err(PrepareError::Cwd {
            path: cwd.into(),
            source,
        }),
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remount_keeps_locked_flags() {
        assert_eq!(kept_flags(FsFlags::empty()), MsFlags::empty());
        assert_eq!(
            kept_flags(
                FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_NOEXEC | FsFlags::ST_RDONLY
            ),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
        );
        assert_eq!(
            kept_flags(FsFlags::ST_RELATIME | FsFlags::ST_NOATIME),
            MsFlags::MS_RELATIME | MsFlags::MS_NOATIME
        );
    }

    #[test]
    fn cwd_is_created_or_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        assert_eq!(ensure_cwd(deep.to_str().unwrap()).unwrap(), deep);
        assert!(deep.is_dir());
        fs::write(tmp.path().join("f"), "").unwrap();
        assert!(matches!(
            ensure_cwd(tmp.path().join("f").to_str().unwrap()),
            Err(PrepareError::CwdNotDir(_))
        ));
        assert!(matches!(
            ensure_cwd("rel"),
            Err(PrepareError::CwdRelative(_))
        ));
    }
}
