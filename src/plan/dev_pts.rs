//! The spec's `/dev/pts` mount. LXC mounts a new devpts instance there
//! itself (`lxc.pty.max`), with `max=` and its own choice of the rest; the
//! init remounts it with the spec's options (runc's default:
//! `nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5`). A devpts
//! remount resets every option it is not given (fs/devpts/inode.c
//! `parse_mount_options`), so the instance ends as runc would have mounted
//! it. Checked here: the mount flags runc knows and devpts's own options.

use lxcri_init_spec::DevPts;

use super::{invalid, unsupported, Result};

/// devpts options with a value, and whether theirs is octal.
const DEVPTS_OPTIONS: [(&str, bool); 5] = [
    ("ptmxmode", true),
    ("mode", true),
    ("uid", false),
    ("gid", false),
    ("max", false),
];

/// The `/dev/pts` devpts of the spec's `options` (of mount `field`).
pub(super) fn dev_pts(field: &str, options: &[String]) -> Result<DevPts> {
    let (flags, rest) = super::mount_flags::split(options);
    let mut data = Vec::new();
    for (k, opt) in rest {
        let f = format!("{field}.options[{k}]");
        if opt == "newinstance" {
            data.push(opt.clone());
            continue;
        }
        let known = opt.split_once('=').and_then(|(key, value)| {
            Some((DEVPTS_OPTIONS.iter().find(|(k, _)| *k == key)?, value))
        });
        let Some((&(key, octal), value)) = known else {
            return Err(unsupported(
                &f,
                &format!(
                    "mount option {opt:?} on /dev/pts (LXC's devpts is remounted with the spec's flags and newinstance, {})",
                    DEVPTS_OPTIONS.map(|(k, _)| k).join(", ")
                ),
            ));
        };
        let plain = !value.is_empty()
            && if octal {
                value.len() <= 4 && value.chars().all(|c| c.is_digit(8))
            } else {
                value.len() <= 10 && value.chars().all(|c| c.is_ascii_digit())
            };
        if !plain {
            return Err(invalid(
                &f,
                &format!("{value:?} is not a value for devpts's {key}"),
            ));
        }
        data.push(opt.clone());
    }
    Ok(DevPts {
        flags,
        options: data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runcs_default_dev_pts_is_taken_as_written() {
        let pts = dev_pts(
            "mounts[2]",
            &opts(&[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
                "rslave",
            ]),
        )
        .unwrap();
        assert_eq!(pts.flags, libc::MS_NOSUID | libc::MS_NOEXEC);
        assert_eq!(
            pts.options,
            ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        );
    }

    #[test]
    fn what_a_devpts_remount_cannot_take_is_refused_naming_the_option() {
        for (bad, says) in [
            ("size=1m", "mount option \"size=1m\" on /dev/pts"),
            ("bind", "mount option \"bind\""),
            ("mode=8", "is not a value for devpts's mode"),
            ("gid=tty", "is not a value for devpts's gid"),
            ("max=", "is not a value for devpts's max"),
        ] {
            let e = dev_pts("mounts[2]", &opts(&["nosuid", bad]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("mounts[2].options[1]") && e.contains(says),
                "{bad}: {e}"
            );
        }
        let pts = dev_pts("m", &opts(&["max=4096", "uid=0", "ro"])).unwrap();
        assert_eq!(pts.flags, libc::MS_RDONLY);
        assert_eq!(pts.options, ["max=4096", "uid=0"]);
    }
}
