//! `/dev` as runc makes it, out of what LXC made: LXC mounts its own
//! tmpfs there (`lxc.autodev`: the standard nodes, but no `nosuid` and
//! 500 kB), bind-mounts the devpts `ptmx` over `/dev/ptmx`, and gives the
//! container a boot id of its own (a file `/dev/.lxc-boot-id` bound over
//! `/proc/sys/kernel/random/boot_id`). runc mounts the spec's `/dev`
//! tmpfs, makes `/dev/ptmx` a symlink to `pts/ptmx` and leaves the host's
//! boot id: so does this, before anything else binds from `/dev` or
//! `/proc/sys`.

use lxcri_init_spec::DevTmpfs;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::symlink;

#[derive(Debug, thiserror::Error)]
pub enum DevSetupError {
    #[error("remount /dev with {options:?} (the spec's /dev mount): {source}")]
    Remount { options: String, source: Errno },
    #[error("unmount {path}: {source}")]
    Unmount { path: &'static str, source: Errno },
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: &'static str,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, DevSetupError>;

const LXC_BOOT_ID: &str = "/dev/.lxc-boot-id";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
const PTMX: &str = "/dev/ptmx";

pub fn setup(dev: Option<&DevTmpfs>) -> Result<()> {
    host_boot_id()?;
    ptmx_symlink()?;
    if let Some(dev) = dev {
        remount_dev(dev)?;
    }
    Ok(())
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

/// The spec's flags and tmpfs options on LXC's `/dev` tmpfs.
fn remount_dev(dev: &DevTmpfs) -> Result<()> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::from_bits_truncate(dev.flags);
    let options = dev.options.join(",");
    let data = (!options.is_empty()).then_some(options.as_str());
    mount(None::<&str>, "/dev", None::<&str>, flags, data)
        .map_err(|source| DevSetupError::Remount { options, source })
}
