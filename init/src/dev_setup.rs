//! `/dev` as runc makes it, out of what LXC made: LXC mounts its own
//! tmpfs there (`lxc.autodev`: the standard nodes, but no `nosuid` and
//! 500 kB), bind-mounts the devpts `ptmx` over `/dev/ptmx`, and gives the
//! container a boot id of its own (a file `/dev/.lxc-boot-id` bound over
//! `/proc/sys/kernel/random/boot_id`). runc mounts the spec's `/dev`
//! tmpfs, makes `/dev/ptmx` a symlink to `pts/ptmx` and leaves the host's
//! boot id: so does this, before anything else binds from `/dev` or
//! `/proc/sys`. Then it makes the spec's device nodes, as runc's
//! `mknod` outside a user namespace (inside one they are LXC's binds).

use lxcri_init_spec::{DevPts, DevTmpfs, DeviceNode, DeviceNodeKind};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chown, Gid, Uid};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DevSetupError {
    #[error("remount /dev with {options:?} (the spec's /dev mount): {source}")]
    Remount { options: String, source: Errno },
    #[error("remount /dev/pts with {options:?} (the spec's /dev/pts mount): {source}")]
    RemountPts { options: String, source: Errno },
    #[error("unmount {path}: {source}")]
    Unmount { path: &'static str, source: Errno },
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: &'static str,
        source: std::io::Error,
    },
    #[error("device {path} (linux.devices): {what}: {source}")]
    Device {
        path: String,
        what: &'static str,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, DevSetupError>;

const LXC_BOOT_ID: &str = "/dev/.lxc-boot-id";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
const PTMX: &str = "/dev/ptmx";

pub fn setup(dev: Option<&DevTmpfs>, pts: Option<&DevPts>, devices: &[DeviceNode]) -> Result<()> {
    host_boot_id()?;
    ptmx_symlink()?;
    let flags = dev.map_or(MsFlags::empty(), |d| MsFlags::from_bits_retain(d.flags));
    if let Some(dev) = dev {
        // Writable until the nodes are made, as runc's finalizeRootfs.
        remount_dev(dev, flags - MsFlags::MS_RDONLY)?;
        own_dev(dev)?;
    }
    if let Some(pts) = pts {
        remount_dev_pts(pts)?;
    }
    devices.iter().try_for_each(make_node)
}

/// LXC's devpts instance with the spec's flags and options only: the
/// remount resets what it is not given (LXC's `max=`) to devpts's default.
fn remount_dev_pts(pts: &DevPts) -> Result<()> {
    let options = pts.options.join(",");
    mount(
        None::<&str>,
        "/dev/pts",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::from_bits_retain(pts.flags),
        (!options.is_empty()).then_some(options.as_str()),
    )
    .map_err(|source| DevSetupError::RemountPts { options, source })
}

/// An empty file at `/dev/console` for the terminal the init binds there
/// later ([`crate::stdio::bind_console`]), made while `/dev` is writable,
/// as runc makes it (0666); LXC makes none without a console of its own.
pub fn console_mount_point() -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open("/dev/console")
        .map(drop)
        .map_err(|source| DevSetupError::File {
            what: "create",
            path: "/dev/console",
            source,
        })
}

/// A read-only `/dev` becomes read-only last, once everything in it is
/// made, as in runc's `finalizeRootfs`.
pub fn finish(dev: Option<&DevTmpfs>) -> Result<()> {
    match dev {
        Some(dev) if dev.flags & libc::MS_RDONLY != 0 => {
            remount_dev(dev, MsFlags::from_bits_retain(dev.flags))
        }
        _ => Ok(()),
    }
}

/// The mode and `uid=`/`gid=` of the spec's `/dev`: a remount ignores them
/// (they belong to the tmpfs's root at mount time), so they are set here.
fn own_dev(dev: &DevTmpfs) -> Result<()> {
    // The last one, as the kernel takes it.
    let value = |key: &str| {
        dev.options
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    };
    let fail = |what| {
        move |source| DevSetupError::File {
            what,
            path: "/dev",
            source,
        }
    };
    if let Some(mode) = dev.mode {
        fs::set_permissions("/dev", fs::Permissions::from_mode(mode)).map_err(fail("chmod"))?;
    }
    let uid = value("uid").and_then(|u| u.parse().ok()).map(Uid::from_raw);
    let gid = value("gid").and_then(|g| g.parse().ok()).map(Gid::from_raw);
    if uid.is_some() || gid.is_some() {
        chown("/dev", uid, gid).map_err(|e| fail("chown")(e.into()))?;
    }
    Ok(())
}

/// One node as runc's `mknodDevice`: parents made 0755, an existing node
/// left as it is, mode and owner set after (mknod's mode passes the umask).
fn make_node(node: &DeviceNode) -> Result<()> {
    let fail = |what| {
        move |source| DevSetupError::Device {
            path: node.path.clone(),
            what,
            source,
        }
    };
    let path = Path::new(&node.path);
    if let Some(parent) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(fail("create its directory"))?;
    }
    let kind = match node.kind {
        DeviceNodeKind::Char => SFlag::S_IFCHR,
        DeviceNodeKind::Block => SFlag::S_IFBLK,
        DeviceNodeKind::Fifo => SFlag::S_IFIFO,
    };
    let dev = makedev(u64::from(node.major), u64::from(node.minor));
    match mknod(path, kind, Mode::from_bits_truncate(node.mode), dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        Err(e) => return Err(fail("mknod")(e.into())),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(node.mode)).map_err(fail("chmod"))?;
    chown(
        path,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
    )
    .map_err(|e| fail("chown")(e.into()))
}

/// LXC's own boot id goes: the host's shows through, as on runc.
fn host_boot_id() -> Result<()> {
    if fs::symlink_metadata(LXC_BOOT_ID).is_err() {
        return Ok(());
    }
    unmount_all(BOOT_ID)?;
    fs::remove_file(LXC_BOOT_ID).map_err(|source| DevSetupError::File {
        what: "remove",
        path: LXC_BOOT_ID,
        source,
    })
}

/// `/dev/ptmx` a symlink to the container's devpts, as runc's `setupPtmx`.
fn ptmx_symlink() -> Result<()> {
    match fs::symlink_metadata(PTMX) {
        Ok(meta) if meta.file_type().is_symlink() => return Ok(()),
        Ok(_) => {
            unmount_all(PTMX)?;
            fs::remove_file(PTMX).map_err(|source| DevSetupError::File {
                what: "remove",
                path: PTMX,
                source,
            })?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DevSetupError::File {
                what: "look at",
                path: PTMX,
                source,
            })
        }
    }
    symlink("pts/ptmx", PTMX).map_err(|source| DevSetupError::File {
        what: "symlink pts/ptmx at",
        path: PTMX,
        source,
    })
}

/// Every mount stacked on `path` (EINVAL: none left).
fn unmount_all(path: &'static str) -> Result<()> {
    loop {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL) => return Ok(()),
            Err(source) => return Err(DevSetupError::Unmount { path, source }),
        }
    }
}

/// `flags` and the spec's tmpfs options (those a remount applies) on
/// LXC's `/dev` tmpfs.
fn remount_dev(dev: &DevTmpfs, flags: MsFlags) -> Result<()> {
    let options = dev
        .options
        .iter()
        .filter(|o| !["mode=", "uid=", "gid="].iter().any(|k| o.starts_with(k)))
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    let data = (!options.is_empty()).then_some(options.as_str());
    mount(
        None::<&str>,
        "/dev",
        None::<&str>,
        MsFlags::MS_REMOUNT | flags,
        data,
    )
    .map_err(|source| DevSetupError::Remount { options, source })
}
