//! The spec's `/dev` mount. LXC makes `/dev` a tmpfs itself
//! (`lxc.autodev`, with the standard nodes in it), with its own options:
//! no `nosuid`, 500 kB. The init remounts it with the spec's (runc's
//! default: `nosuid,strictatime,mode=755,size=65536k`), so those are
//! checked here: the mount flags runc knows, and the tmpfs options a
//! tmpfs takes, with plain values.

use lxcri_init_spec::DevTmpfs;

use super::{invalid, unsupported, Result};

/// tmpfs options with a value: the remount takes the sizes and `huge`; the
/// init applies `mode`, `uid` and `gid` itself (a remount ignores them).
const TMPFS_OPTIONS: [&str; 7] = [
    "size",
    "nr_blocks",
    "nr_inodes",
    "huge",
    "mode",
    "uid",
    "gid",
];

/// tmpfs's `huge=` values.
const HUGE: [&str; 6] = ["never", "always", "within_size", "advise", "deny", "force"];

/// The `/dev` tmpfs of the spec's `options` (of mount `field`); `image_mode`:
/// the permission bits of the image's own `/dev` directory, if it has one.
pub(super) fn dev_tmpfs(
    field: &str,
    options: &[String],
    image_mode: Option<u32>,
) -> Result<DevTmpfs> {
    let (flags, rest) = super::mount_flags::split(options);
    let mut data = Vec::new();
    for (k, opt) in rest {
        let f = format!("{field}.options[{k}]");
        // A flag the remount takes as data.
        if opt == "noswap" {
            data.push(opt.clone());
            continue;
        }
        let Some((key, value)) = opt.split_once('=') else {
            return Err(unsupported(
                &f,
                &format!("mount option {opt:?} on /dev (LXC's tmpfs is remounted with the spec's flags and tmpfs options)"),
            ));
        };
        if !TMPFS_OPTIONS.contains(&key) {
            return Err(unsupported(
                &f,
                &format!(
                    "tmpfs option {key:?} on /dev; lxcri applies {}",
                    TMPFS_OPTIONS.join(", ")
                ),
            ));
        }
        let plain = match key {
            "mode" => !value.is_empty() && value.len() <= 4 && value.chars().all(|c| c.is_digit(8)),
            "huge" => HUGE.contains(&value),
            "uid" | "gid" => !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()),
            _ => {
                let digits = value.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
                !digits.is_empty()
                    && value.len() - digits.len() <= 1
                    && digits.chars().all(|c| c.is_ascii_digit())
            }
        };
        if !plain {
            return Err(invalid(
                &f,
                &format!("{value:?} is not a value for tmpfs's {key}"),
            ));
        }
        data.push(opt.clone());
    }
    // The last one, as the kernel takes it.
    let option_mode = data
        .iter()
        .rev()
        .find_map(|o| o.strip_prefix("mode="))
        .and_then(|m| u32::from_str_radix(m, 8).ok());
    // As runc 1.2+ mounts a tmpfs: the image's mode goes first in the
    // options, so `mode=` wins over it, and without either the tmpfs's
    // root is 1777.
    Ok(DevTmpfs {
        flags,
        options: data,
        mode: Some(option_mode.or(image_mode).unwrap_or(0o1777)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runcs_default_dev_is_taken_as_written() {
        let dev = dev_tmpfs(
            "mounts[1]",
            &opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
            None,
        )
        .unwrap();
        assert_eq!(dev.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(dev.options, ["mode=755", "size=65536k"]);
        assert_eq!(dev.mode, Some(0o755));
    }

    #[test]
    fn the_last_option_naming_a_flag_wins_as_in_runc() {
        let dev = dev_tmpfs(
            "m",
            &opts(&["ro", "noatime", "rw", "relatime", "nosuid", "suid"]),
            None,
        )
        .unwrap();
        // The atime options are bits of their own, as runc reads them.
        assert_eq!(dev.flags, libc::MS_NOATIME | libc::MS_RELATIME);
        let dev = dev_tmpfs("m", &opts(&["noatime", "atime", "lazytime"]), None).unwrap();
        assert_eq!(dev.flags, libc::MS_LAZYTIME);
    }

    #[test]
    fn what_a_tmpfs_remount_cannot_take_is_refused_naming_the_option() {
        for (bad, says) in [
            ("mpol=bind", "tmpfs option \"mpol\""),
            ("bind", "mount option \"bind\""),
            ("mode=8", "is not a value for tmpfs's mode"),
            ("size=1x", "is not a value for tmpfs's size"),
            ("size=", "is not a value for tmpfs's size"),
            ("uid=-1", "is not a value for tmpfs's uid"),
            ("size=64kk", "is not a value for tmpfs's size"),
        ] {
            let e = dev_tmpfs("mounts[1]", &opts(&["nosuid", bad]), None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("mounts[1].options[1]") && e.contains(says),
                "{bad}: {e}"
            );
        }
        let dev = dev_tmpfs(
            "m",
            &opts(&[
                "size=50%",
                "nr_inodes=4k",
                "uid=0",
                "huge=within_size",
                "noswap",
                "rprivate",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            dev.options,
            [
                "size=50%",
                "nr_inodes=4k",
                "uid=0",
                "huge=within_size",
                "noswap"
            ],
            "propagation is the mount plan's"
        );
        assert!(dev_tmpfs("m", &opts(&["huge=sometimes"]), None).is_err());
        assert!(dev_tmpfs("m", &opts(&["mode=17777"]), None).is_err());
    }

    #[test]
    fn mode_wins_over_the_images_dev_mode_as_in_runc_1_2() {
        let with_mode = opts(&["mode=755", "mode=711"]);
        assert_eq!(dev_tmpfs("m", &with_mode, None).unwrap().mode, Some(0o711));
        assert_eq!(
            dev_tmpfs("m", &with_mode, Some(0o755)).unwrap().mode,
            Some(0o711)
        );
        let without = opts(&["nosuid"]);
        assert_eq!(
            dev_tmpfs("m", &without, Some(0o750)).unwrap().mode,
            Some(0o750)
        );
        assert_eq!(dev_tmpfs("m", &without, None).unwrap().mode, Some(0o1777));
    }
}
