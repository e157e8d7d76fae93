//! The spec's `cgroup` mount on a cgroup v1 host, made as runc makes it
//! when lxcri knows where the container's cgroup is (`linux.cgroupsPath`
//! followed): a tmpfs at `/sys/fs/cgroup` and in it, for each v1
//! hierarchy, a bind of the container's own cgroup there, with a symlink
//! per controller of a co-mounted one (`cpu -> cpu,cpuacct`); runc 1.1
//! libcontainer/rootfs_linux.go `mountCgroupV1`. LXC's `cgroup:ro` instead
//! puts a tmpfs per hierarchy with the container's cgroup at its full path
//! below it, where an app reading `/sys/fs/cgroup/memory/memory.limit_in_bytes`
//! finds nothing. On cgroup v2 both mount the container's cgroup namespace's
//! cgroup2 and nothing changes.

use std::path::PathBuf;

use lxcri_init_spec::Symlink;

use crate::cgroup::CgroupPath;
use crate::lxc::{CgroupAuto, MountEntry};

pub(super) struct CgroupV1Mounts {
    pub entries: Vec<MountEntry>,
    /// Made by the init in the tmpfs once LXC has mounted everything.
    pub symlinks: Vec<Symlink>,
}

/// `hierarchies`: the host's v1 hierarchy directories (`/sys/fs/cgroup/
/// cpu,cpuacct`...); `container`: the container's cgroup in each.
pub(super) fn v1_mounts(
    hierarchies: &[PathBuf],
    container: &CgroupPath,
    mode: CgroupAuto,
) -> CgroupV1Mounts {
    // runc's flags for both: the spec's `nosuid,noexec,nodev` (containerd
    // gives every cgroup mount those), the binds read-only unless asked rw.
    let flags = ["nosuid", "nodev", "noexec"].map(String::from);
    let mut tmpfs_options = flags.to_vec();
    tmpfs_options.extend(["mode=755".into(), "create=dir".into()]);
    let mut entries = vec![MountEntry {
        source: "tmpfs".into(),
        destination: "sys/fs/cgroup".into(),
        fstype: "tmpfs".into(),
        options: tmpfs_options,
    }];
    let mut symlinks = Vec::new();
    for dir in hierarchies {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let mut options = vec!["bind".to_string()];
        if mode == CgroupAuto::ReadOnly {
            options.push("ro".into());
        }
        options.extend(flags.iter().cloned());
        options.push("create=dir".into());
        entries.push(MountEntry {
            source: dir.join(container.as_str()).display().to_string(),
            destination: format!("sys/fs/cgroup/{name}"),
            fstype: "none".into(),
            options,
        });
        if name.contains(',') {
            for controller in name.split(',') {
                symlinks.push(Symlink {
                    path: format!("/sys/fs/cgroup/{controller}"),
                    target: name.to_string(),
                });
            }
        }
    }
    CgroupV1Mounts { entries, symlinks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hierarchy_binds_the_containers_cgroup_under_one_tmpfs() {
        let hierarchies =
            ["cpu,cpuacct", "memory", "systemd"].map(|h| PathBuf::from("/sys/fs/cgroup").join(h));
        let path = CgroupPath::parse("kubepods/pod1/c1").unwrap();
        let m = v1_mounts(&hierarchies, &path, CgroupAuto::ReadOnly);
        let lines: Vec<String> = m
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    e.source,
                    e.destination,
                    e.fstype,
                    e.options.join(",")
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                "tmpfs sys/fs/cgroup tmpfs nosuid,nodev,noexec,mode=755,create=dir",
                "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1 sys/fs/cgroup/cpu,cpuacct none bind,ro,nosuid,nodev,noexec,create=dir",
                "/sys/fs/cgroup/memory/kubepods/pod1/c1 sys/fs/cgroup/memory none bind,ro,nosuid,nodev,noexec,create=dir",
                "/sys/fs/cgroup/systemd/kubepods/pod1/c1 sys/fs/cgroup/systemd none bind,ro,nosuid,nodev,noexec,create=dir",
            ]
        );
        let links: Vec<(&str, &str)> = m
            .symlinks
            .iter()
            .map(|s| (s.path.as_str(), s.target.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                ("/sys/fs/cgroup/cpu", "cpu,cpuacct"),
                ("/sys/fs/cgroup/cpuacct", "cpu,cpuacct")
            ]
        );
        let rw = v1_mounts(&hierarchies[1..2], &path, CgroupAuto::ReadWrite);
        assert_eq!(
            rw.entries[1].options,
            ["bind", "nosuid", "nodev", "noexec", "create=dir"]
        );
    }
}
