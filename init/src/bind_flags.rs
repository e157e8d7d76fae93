//! A bind's per-mount flags as runc 1.2+ sets them
//! (libcontainer/rootfs_linux.go `mountToRootfs`, case "bind"): a bind
//! remount with exactly the spec's flags, so what the source had and the
//! spec does not name goes (`mount --bind -o` semantics: `rw` alone makes
//! a bind of a `nosuid` source `suid`). In a user namespace the kernel
//! locks the flags of mounts the namespace inherited (`MNT_LOCK_*`): there
//! the remount is tried again with the locked ones kept, unless the spec
//! turns one of them off or asks for another atime, which runc refuses.
//! LXC keeps the source's flags on its binds (lxc 5.0.2 src/lxc/conf.c
//! `mount_entry`), so the init sets them once LXC's mounts are made.

use lxcri_init_spec::BindFlags;

use crate::errno_text::errno_text;
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::statvfs;

const ATIME_ENUM: u64 = libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_STRICTATIME;
const ATIME: u64 = ATIME_ENUM | libc::MS_NODIRATIME;
/// The flags the kernel locks on inherited mounts (runc's `mntLockFlags`).
const LOCKABLE: u64 = libc::MS_RDONLY | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_NOSUID | ATIME;

/// `statvfs`'s `ST_*` bits and the `MS_*` flag each stands for (the
/// kernel's `calculate_f_flags`).
const ST_TO_MS: [(u64, u64); 10] = [
    (libc::ST_RDONLY, libc::MS_RDONLY),
    (libc::ST_NOSUID, libc::MS_NOSUID),
    (libc::ST_NODEV, libc::MS_NODEV),
    (libc::ST_NOEXEC, libc::MS_NOEXEC),
    (libc::ST_SYNCHRONOUS, libc::MS_SYNCHRONOUS),
    (libc::ST_MANDLOCK, libc::MS_MANDLOCK),
    (libc::ST_NOATIME, libc::MS_NOATIME),
    (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
    (libc::ST_RELATIME, libc::MS_RELATIME),
    // ST_NOSYMFOLLOW (linux/statfs.h).
    (0x2000, libc::MS_NOSYMFOLLOW),
];

/// Names for the flags in errors, as runc's `stringifyMountFlags`.
const NAMES: [(u64, &str); 10] = [
    (libc::MS_RDONLY, "MS_RDONLY"),
    (libc::MS_NOSUID, "MS_NOSUID"),
    (libc::MS_NODEV, "MS_NODEV"),
    (libc::MS_NOEXEC, "MS_NOEXEC"),
    (libc::MS_SYNCHRONOUS, "MS_SYNCHRONOUS"),
    (libc::MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"),
    (libc::MS_NOATIME, "MS_NOATIME"),
    (libc::MS_NODIRATIME, "MS_NODIRATIME"),
    (libc::MS_RELATIME, "MS_RELATIME"),
    (libc::MS_STRICTATIME, "MS_STRICTATIME"),
];

#[derive(Debug, thiserror::Error)]
pub enum BindFlagsError {
    #[error("mount {path}: failed to set user-requested vfs flags on bind-mount: {}", errno_text(*.source))]
    Remount { path: String, source: Errno },
    #[error("mount {path}: failed to set user-requested vfs flags on bind-mount: cannot clear locked flags {flags}: {}", errno_text(*.source))]
    ClearLocked {
        path: String,
        flags: String,
        source: Errno,
    },
    #[error("mount {path}: failed to set user-requested vfs flags on bind-mount: cannot change locked atime flags {flags}: {}", errno_text(*.source))]
    LockedAtime {
        path: String,
        flags: String,
        source: Errno,
    },
    #[error("mount {path}: failed to set user-requested vfs flags on bind-mount: remount with locked flags {flags} re-applied: {}", errno_text(*.source))]
    Retry {
        path: String,
        flags: String,
        source: Errno,
    },
}

/// Sets the flags of the bind at `b.destination`.
pub fn set(b: &BindFlags) -> Result<(), BindFlagsError> {
    let path = b.destination.as_str();
    let Err(first) = remount(path, b.flags) else {
        return Ok(());
    };
    let current = statvfs(path)
        .map(|st| statvfs_mount_flags(st.flags().bits()))
        .map_err(|source| BindFlagsError::Remount {
            path: path.into(),
            source,
        })?;
    match retry_flags(b.flags, b.cleared, current) {
        Ok(flags) => remount(path, flags).map_err(|source| BindFlagsError::Retry {
            path: path.into(),
            flags: names(current & LOCKABLE),
            source,
        }),
        Err(Refusal::ClearLocked(flags)) => Err(BindFlagsError::ClearLocked {
            path: path.into(),
            flags: names(flags),
            source: first,
        }),
        Err(Refusal::LockedAtime(flags)) => Err(BindFlagsError::LockedAtime {
            path: path.into(),
            flags: names(flags),
            source: first,
        }),
    }
}

fn remount(path: &str, flags: u64) -> Result<(), Errno> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::from_bits_retain(flags),
        None::<&str>,
    )
}

/// Why a bind's flags cannot be set where some are locked.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The spec turns these off; the mount has them, locked.
    ClearLocked(u64),
    /// The spec asks for another atime than the mount's (these).
    LockedAtime(u64),
}

/// The flags of the second try, once the exact ones were refused: `flags`
/// with the lockable flags `current` has; refused where that would not be
/// what the spec asks (runc's checks: a kernel quirk makes `MS_STRICTATIME`
/// or `MS_NOATIME` win silently over another atime).
fn retry_flags(flags: u64, cleared: u64, current: u64) -> Result<u64, Refusal> {
    let locked_cleared = current & cleared & LOCKABLE;
    if locked_cleared != 0 {
        return Err(Refusal::ClearLocked(locked_cleared));
    }
    if flags & ATIME != 0 && flags & ATIME != current & ATIME {
        return Err(Refusal::LockedAtime(current & ATIME));
    }
    Ok(flags | (current & LOCKABLE))
}

/// The `MS_*` flags of a mount from `statvfs`'s `f_flag` (runc's
/// `statfsToMountFlags`): without another atime flag the mount is
/// `strictatime`, which `statvfs` has no bit for.
pub fn statvfs_mount_flags(st_flags: u64) -> u64 {
    let flags = ST_TO_MS
        .iter()
        .filter(|(st, _)| st_flags & st != 0)
        .fold(0, |acc, (_, ms)| acc | ms);
    if flags & ATIME_ENUM == 0 {
        flags | libc::MS_STRICTATIME
    } else {
        flags
    }
}

fn names(flags: u64) -> String {
    NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELATIME_NOSUID_NODEV: u64 = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_RELATIME;

    #[test]
    fn statvfs_flags_become_mount_flags_strictatime_without_an_atime() {
        assert_eq!(
            statvfs_mount_flags(libc::ST_NOSUID | libc::ST_NODEV | libc::ST_RELATIME),
            RELATIME_NOSUID_NODEV
        );
        assert_eq!(
            statvfs_mount_flags(libc::ST_RDONLY),
            libc::MS_RDONLY | libc::MS_STRICTATIME
        );
        assert_eq!(
            statvfs_mount_flags(libc::ST_NOATIME | libc::ST_NODIRATIME | 0x2000),
            libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_NOSYMFOLLOW
        );
    }

    #[test]
    fn the_retry_keeps_the_locked_flags() {
        // `rw` on a nosuid,nodev source: they stay.
        assert_eq!(
            retry_flags(0, libc::MS_RDONLY, RELATIME_NOSUID_NODEV),
            Ok(RELATIME_NOSUID_NODEV)
        );
        // Read-only on top; what is not lockable (sync) is not carried.
        assert_eq!(
            retry_flags(
                libc::MS_RDONLY | libc::MS_NOEXEC,
                0,
                RELATIME_NOSUID_NODEV | libc::MS_SYNCHRONOUS
            ),
            Ok(RELATIME_NOSUID_NODEV | libc::MS_RDONLY | libc::MS_NOEXEC)
        );
    }

    #[test]
    fn turning_a_locked_flag_off_is_refused() {
        assert_eq!(
            retry_flags(0, libc::MS_NOSUID | libc::MS_NOEXEC, RELATIME_NOSUID_NODEV),
            Err(Refusal::ClearLocked(libc::MS_NOSUID))
        );
        // Cleared where the mount does not have it: no refusal.
        assert!(retry_flags(0, libc::MS_NOEXEC, RELATIME_NOSUID_NODEV).is_ok());
    }

    #[test]
    fn another_atime_than_the_locked_one_is_refused() {
        assert_eq!(
            retry_flags(libc::MS_NOATIME, 0, RELATIME_NOSUID_NODEV),
            Err(Refusal::LockedAtime(libc::MS_RELATIME))
        );
        assert!(retry_flags(libc::MS_RELATIME, 0, RELATIME_NOSUID_NODEV).is_ok());
    }

    #[test]
    fn flags_are_named_as_runc_names_them() {
        assert_eq!(
            names(RELATIME_NOSUID_NODEV),
            "MS_NOSUID|MS_NODEV|MS_RELATIME"
        );
    }
}
