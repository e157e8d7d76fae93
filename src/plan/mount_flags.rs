//! Mount options that are flags: the per-mount `MS_*` bits runc knows, as
//! mount(8) reads them (the last of a pair wins), the propagation options,
//! which the mount plan applies itself, and runc's recursive ones (`rro`,
//! `rnosuid`, ...), which the init sets with `mount_setattr(2)`. Shared by
//! the checks of the spec's `/dev` and `/dev/pts` and by the flags the init
//! sets on binds.

use lxcri_init_spec::MountAttrs;

use crate::lxc::MountEntry;

/// Flag options as runc reads them (libcontainer/specconv `mountFlags`):
/// each sets its bit, or with `true` clears it; the last one naming a bit
/// wins. The atime ones are bits of their own there too: `noatime` after
/// `strictatime` leaves both set, and the kernel picks (`path_mount`).
const FLAGS: [(&str, bool, u64); 29] = [
    ("async", true, libc::MS_SYNCHRONOUS),
    ("atime", true, libc::MS_NOATIME),
    ("dev", true, libc::MS_NODEV),
    ("diratime", true, libc::MS_NODIRATIME),
    ("dirsync", false, libc::MS_DIRSYNC),
    ("exec", true, libc::MS_NOEXEC),
    ("iversion", false, libc::MS_I_VERSION),
    ("lazytime", false, libc::MS_LAZYTIME),
    ("loud", true, libc::MS_SILENT),
    ("mand", false, libc::MS_MANDLOCK),
    ("noatime", false, libc::MS_NOATIME),
    ("nodev", false, libc::MS_NODEV),
    ("nodiratime", false, libc::MS_NODIRATIME),
    ("noexec", false, libc::MS_NOEXEC),
    ("noiversion", true, libc::MS_I_VERSION),
    ("nolazytime", true, libc::MS_LAZYTIME),
    ("nomand", true, libc::MS_MANDLOCK),
    ("norelatime", true, libc::MS_RELATIME),
    ("nostrictatime", true, libc::MS_STRICTATIME),
    ("nosuid", false, libc::MS_NOSUID),
    ("nosymfollow", false, libc::MS_NOSYMFOLLOW),
    ("relatime", false, libc::MS_RELATIME),
    ("ro", false, libc::MS_RDONLY),
    ("rw", true, libc::MS_RDONLY),
    ("silent", false, libc::MS_SILENT),
    ("strictatime", false, libc::MS_STRICTATIME),
    ("suid", true, libc::MS_NOSUID),
    ("symfollow", true, libc::MS_NOSYMFOLLOW),
    ("sync", false, libc::MS_SYNCHRONOUS),
];

/// Propagation options: the mount plan's, not a filesystem's.
const PROPAGATION: [&str; 8] = [
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

/// What a bind remount takes from a bind's `options`, as runc 1.2+ reads
/// them: the `MS_*` bits to set and the ones turned off (`rw`, `suid`,
/// ...); `None` when they name no flag, set or cleared, and runc leaves
/// the bind with its source's flags (libcontainer/rootfs_linux.go
/// `mountToRootfs`, case "bind").
pub(super) fn bind_remount(options: &[String]) -> Option<(u64, u64)> {
    let (flags, cleared) = flags_of(options);
    (flags != 0 || cleared != 0).then_some((flags, cleared))
}

/// The bits `options` set, and those they clear.
fn flags_of(options: &[String]) -> (u64, u64) {
    let (mut flags, mut cleared) = (0, 0);
    for opt in options {
        if let Some((_, clear, bit)) = FLAGS.iter().find(|(name, _, _)| name == opt) {
            if *clear {
                flags &= !bit;
                cleared |= bit;
            } else {
                flags |= bit;
                cleared &= !bit;
            }
        }
    }
    (flags, cleared)
}

/// The last of `ro`/`rw` wins.
pub(super) fn is_readonly(options: &[String]) -> bool {
    options.iter().rev().find(|o| *o == "ro" || *o == "rw") == Some(&"ro".to_string())
}

/// An `lxc.mount.entry` of a bind.
pub(super) fn is_bind_entry(e: &MountEntry) -> bool {
    e.options.iter().any(|o| o == "bind" || o == "rbind")
}

/// The `MS_*` bits of `options`' flag options, and the others with their
/// index (propagation left out): what the filesystem itself is given.
pub(super) fn split(options: &[String]) -> (u64, Vec<(usize, &String)>) {
    let rest = options
        .iter()
        .enumerate()
        .filter(|(_, opt)| {
            !FLAGS.iter().any(|(name, _, _)| name == opt) && !PROPAGATION.contains(&opt.as_str())
        })
        .collect();
    (flags_of(options).0, rest)
}

/// runc's recursive options and the `MOUNT_ATTR_*` bit each sets (`true`)
/// or clears (libcontainer/specconv `recAttrFlags`).
const RECURSIVE: [(&str, bool, u64); 12] = [
    ("rro", true, libc::MOUNT_ATTR_RDONLY),
    ("rrw", false, libc::MOUNT_ATTR_RDONLY),
    ("rnosuid", true, libc::MOUNT_ATTR_NOSUID),
    ("rsuid", false, libc::MOUNT_ATTR_NOSUID),
    ("rnodev", true, libc::MOUNT_ATTR_NODEV),
    ("rdev", false, libc::MOUNT_ATTR_NODEV),
    ("rnoexec", true, libc::MOUNT_ATTR_NOEXEC),
    ("rexec", false, libc::MOUNT_ATTR_NOEXEC),
    ("rnodiratime", true, libc::MOUNT_ATTR_NODIRATIME),
    ("rdiratime", false, libc::MOUNT_ATTR_NODIRATIME),
    ("rnosymfollow", true, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", false, libc::MOUNT_ATTR_NOSYMFOLLOW),
];

/// The recursive atime options: one value of the `MOUNT_ATTR__ATIME`
/// field each (which must be cleared to set one), the last one given wins. Turning `noatime` or
/// `strictatime` off (or `relatime` off, which is 0) leaves the kernel's
/// default, `relatime`, as runc's table works out.
const RECURSIVE_ATIME: [(&str, u64); 6] = [
    ("rrelatime", libc::MOUNT_ATTR_RELATIME),
    ("rnorelatime", libc::MOUNT_ATTR_RELATIME),
    ("rnoatime", libc::MOUNT_ATTR_NOATIME),
    ("ratime", libc::MOUNT_ATTR_RELATIME),
    ("rstrictatime", libc::MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", libc::MOUNT_ATTR_RELATIME),
];

/// Every recursive option's name.
pub(super) fn recursive_names() -> impl Iterator<Item = &'static str> {
    RECURSIVE
        .iter()
        .map(|(name, _, _)| *name)
        .chain(RECURSIVE_ATIME.iter().map(|(name, _)| *name))
}

pub(super) fn is_recursive(option: &str) -> bool {
    recursive_names().any(|name| name == option)
}

/// What `options`' recursive options ask for (the last of a pair wins);
/// `None` when they name none.
pub(super) fn recursive(options: &[String]) -> Option<MountAttrs> {
    let mut attrs = MountAttrs { set: 0, clear: 0 };
    let mut any = false;
    for opt in options {
        if let Some((_, set, bit)) = RECURSIVE.iter().find(|(name, _, _)| name == opt) {
            any = true;
            if *set {
                attrs.set |= bit;
                attrs.clear &= !bit;
            } else {
                attrs.clear |= bit;
                attrs.set &= !bit;
            }
        } else if let Some((_, value)) = RECURSIVE_ATIME.iter().find(|(name, _)| name == opt) {
            any = true;
            attrs.set = (attrs.set & !libc::MOUNT_ATTR__ATIME) | value;
            attrs.clear |= libc::MOUNT_ATTR__ATIME;
        }
    }
    any.then_some(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(options: &[&str]) -> Option<MountAttrs> {
        let options: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        recursive(&options)
    }

    #[test]
    fn recursive_options_set_and_clear_mount_attributes() {
        assert_eq!(attrs(&["rbind", "ro", "nosuid"]), None);
        assert_eq!(
            attrs(&["rbind", "rro", "rnosuid"]),
            Some(MountAttrs {
                set: libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID,
                clear: 0
            })
        );
        // The last of a pair wins.
        assert_eq!(
            attrs(&["rro", "rnoexec", "rrw"]),
            Some(MountAttrs {
                set: libc::MOUNT_ATTR_NOEXEC,
                clear: libc::MOUNT_ATTR_RDONLY
            })
        );
        assert_eq!(
            attrs(&["rsymfollow", "rnosymfollow", "rdev"]),
            Some(MountAttrs {
                set: libc::MOUNT_ATTR_NOSYMFOLLOW,
                clear: libc::MOUNT_ATTR_NODEV
            })
        );
    }

    /// mount_setattr(2): an atime value is set only with the whole field
    /// cleared, and one value at a time.
    #[test]
    fn the_last_recursive_atime_option_wins() {
        assert_eq!(
            attrs(&["rnoatime"]),
            Some(MountAttrs {
                set: libc::MOUNT_ATTR_NOATIME,
                clear: libc::MOUNT_ATTR__ATIME
            })
        );
        assert_eq!(
            attrs(&["rnoatime", "rstrictatime", "rro"]),
            Some(MountAttrs {
                set: libc::MOUNT_ATTR_STRICTATIME | libc::MOUNT_ATTR_RDONLY,
                clear: libc::MOUNT_ATTR__ATIME
            })
        );
        for off in ["ratime", "rnostrictatime", "rnorelatime", "rrelatime"] {
            assert_eq!(
                attrs(&["rnoatime", off]),
                Some(MountAttrs {
                    set: libc::MOUNT_ATTR_RELATIME,
                    clear: libc::MOUNT_ATTR__ATIME
                }),
                "{off}"
            );
        }
    }

    #[test]
    fn a_bind_is_remounted_when_its_options_name_a_flag_as_runc_reads_them() {
        let remount = |v: &[&str]| {
            let options: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            bind_remount(&options)
        };
        assert_eq!(remount(&["rbind", "rprivate"]), None);
        assert_eq!(remount(&["rbind", "rro"]), None, "recursive, not flags");
        assert_eq!(remount(&["rbind", "rw"]), Some((0, libc::MS_RDONLY)));
        assert_eq!(
            remount(&["bind", "suid", "nosuid"]),
            Some((libc::MS_NOSUID, 0))
        );
        assert_eq!(
            remount(&["bind", "strictatime", "relatime"]),
            Some((libc::MS_STRICTATIME | libc::MS_RELATIME, 0))
        );
        assert_eq!(remount(&["bind", "nomand"]), Some((0, libc::MS_MANDLOCK)));
    }

    #[test]
    fn the_names_are_runcs_eighteen() {
        assert_eq!(recursive_names().count(), 18);
        assert!(is_recursive("rro") && is_recursive("rnostrictatime"));
        assert!(!is_recursive("ro") && !is_recursive("rbind") && !is_recursive("rprivate"));
    }
}
