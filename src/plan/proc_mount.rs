//! Mounts at or under `/proc`, as runc allows them
//! (libcontainer/rootfs_linux.go `checkProcMount`): at `/proc` only a
//! procfs (a new one, or a bind of one), under it only the files lxcfs
//! emulates. Anything else could hide what the kernel shows there (a
//! container's `/proc/self`, `/proc/sys`) or what its masked paths cover.
//! Checked while planning, so such a spec fails before anything is made,
//! in runc's words, instead of in LXC's mount setup.

use std::path::Path;

use super::{invalid, Result};

/// What lxcfs binds under `/proc`, relative to the root.
const LXCFS_FILES: [&str; 10] = [
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/sys/kernel/ns_last_pid",
    "proc/sys/crypto/fips_enabled",
];

/// `destination`: the mount point resolved in the rootfs, relative to it
/// (`proc/foo`); `source`: a bind's source on the host.
pub(super) fn check(
    field: &str,
    destination: &str,
    fstype: &str,
    bind_source: Option<&Path>,
) -> Result<()> {
    let dest = Path::new(destination);
    if !dest.starts_with("proc") {
        return Ok(());
    }
    let field = format!("{field}.destination");
    let shown = Path::new("/").join(dest);
    if dest == Path::new("proc") {
        let procfs = match bind_source {
            Some(source) => is_procfs(source),
            None => fstype == "proc",
        };
        if procfs {
            return Ok(());
        }
        return Err(invalid(
            &field,
            &format!("{shown:?} cannot be mounted because it is not of type proc"),
        ));
    }
    if LXCFS_FILES.iter().any(|f| dest == Path::new(f)) {
        return Ok(());
    }
    Err(invalid(
        &field,
        &format!("{shown:?} cannot be mounted because it is inside /proc"),
    ))
}

fn is_procfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<()>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn only_a_procfs_goes_at_proc() {
        assert!(check("mounts[0]", "proc", "proc", None).is_ok());
        assert!(check("mounts[0]", "proc", "", Some(Path::new("/proc"))).is_ok());
        let err = message(check("mounts[3]", "proc", "", Some(Path::new("/"))));
        assert!(
            err.contains("mounts[3].destination")
                && err.contains(r#""/proc" cannot be mounted because it is not of type proc"#),
            "{err}"
        );
        assert!(check("mounts[3]", "proc", "tmpfs", None).is_err());
    }

    #[test]
    fn under_proc_only_what_lxcfs_binds() {
        let lxcfs = Some(Path::new("/var/lib/lxcfs/proc/meminfo"));
        assert!(check("mounts[1]", "proc/meminfo", "", lxcfs).is_ok());
        assert!(check("mounts[1]", "proc/sys/kernel/ns_last_pid", "", lxcfs).is_ok());
        let err = message(check("mounts[1]", "proc/foo", "", Some(Path::new("/tmp"))));
        assert!(
            err.contains(r#""/proc/foo" cannot be mounted because it is inside /proc"#),
            "{err}"
        );
        assert!(check("mounts[1]", "proc/sys", "tmpfs", None).is_err());
        assert!(check("mounts[1]", "proc/meminfo/x", "", lxcfs).is_err());
    }

    #[test]
    fn elsewhere_anything() {
        assert!(check("mounts[1]", "procs", "", Some(Path::new("/tmp"))).is_ok());
        assert!(check("mounts[1]", "data/proc", "tmpfs", None).is_ok());
    }
}
