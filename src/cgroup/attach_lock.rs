//! The kernel's cgroup attach lock, taken early so a container start does
//! not wait for it.
//!
//! Every write to a `cgroup.procs` file takes `cgroup_threadgroup_rwsem`
//! for writing (kernel/cgroup/cgroup.c `cgroup_attach_lock`). That is a
//! per-CPU rwsem: its first writer after a quiet spell waits a whole RCU
//! grace period (kernel/rcu/sync.c `rcu_sync_enter`), 5 to 15 ms here;
//! writers within one grace period of the last one pass at once. Unless the
//! host mounts cgroups with `favordynmods`, every `lxc-start` pays that wait
//! when it moves its monitor into `lxc.monitor.NAME` (LXC's
//! `cgfsng_monitor_enter`), on the critical path of a create.
//!
//! [`prime`] takes the lock from a thread of the shim's own while the shim
//! prepares the container, by writing the shim's pid into the cgroup it
//! already is in (a move that moves nothing; writing a pid that does not
//! exist fails before the lock on this kernel, so it does not help). By the
//! time LXC moves its monitor the grace period has passed or is under way.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The `cgroup.procs` file of the cgroup `/proc/self/cgroup` (`content`)
/// puts the process in: the v2 hierarchy where there is one (pure v2 at
/// `root`, or hybrid's `root/unified`), else the first v1 hierarchy.
pub fn own_procs_file(content: &str, root: &Path) -> Option<PathBuf> {
    let mut v1 = None;
    for (controllers, path) in super::proc_cgroup_entries(content) {
        if !path.starts_with('/') || path.contains("/..") {
            continue;
        }
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            let unified = root.join("unified");
            let mount = if root.join("cgroup.controllers").exists() {
                root.to_path_buf()
            } else if unified.join("cgroup.controllers").exists() {
                unified
            } else {
                continue;
            };
            return Some(mount.join(rel).join("cgroup.procs"));
        }
        if v1.is_none() {
            // Co-mounted controllers sit joined (`cpu,cpuacct`) or apart.
            let joined = controllers.trim_start_matches("name=");
            let first = joined.split(',').next().unwrap_or(joined);
            v1 = [joined, first]
                .into_iter()
                .map(|m| root.join(m))
                .find(|dir| dir.is_dir())
                .map(|dir| dir.join(rel).join("cgroup.procs"));
        }
    }
    v1
}

/// Starts taking the attach lock in the background (see the module docs).
/// Best effort: a host where this fails only starts containers as it did.
pub fn prime() {
    let spawned = std::thread::Builder::new()
        .name("cgroup-prime".into())
        .spawn(|| {
            if let Err(e) = write_own_pid(Path::new("/sys/fs/cgroup")) {
                tracing::debug!(error = %e, "priming the cgroup attach lock");
            }
        });
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "priming the cgroup attach lock");
    }
}

fn write_own_pid(root: &Path) -> std::io::Result<()> {
    // Read right before the write, so the pid goes back where it is.
    let content = std::fs::read_to_string("/proc/self/cgroup")?;
    let file = own_procs_file(&content, root)
        .ok_or_else(|| std::io::Error::other("no cgroup hierarchy in /proc/self/cgroup"))?;
    OpenOptions::new()
        .write(true)
        .open(&file)?
        .write_all(std::process::id().to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(dirs: &[&str], v2_at: Option<&str>) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for d in dirs {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        if let Some(at) = v2_at {
            let dir = tmp.path().join(at);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cgroup.controllers"), "").unwrap();
        }
        tmp
    }

    #[test]
    fn pure_v2_uses_the_root_mount() {
        let tmp = root_with(&[], Some(""));
        let got = own_procs_file("0::/system.slice/containerd.service\n", tmp.path());
        assert_eq!(
            got.unwrap(),
            tmp.path()
                .join("system.slice/containerd.service/cgroup.procs")
        );
    }

    #[test]
    fn hybrid_prefers_the_unified_hierarchy() {
        let tmp = root_with(&["pids"], Some("unified"));
        let content = "5:pids:/a\n0::/b\n";
        assert_eq!(
            own_procs_file(content, tmp.path()).unwrap(),
            tmp.path().join("unified/b/cgroup.procs")
        );
    }

    #[test]
    fn v1_only_takes_the_first_mounted_hierarchy() {
        let tmp = root_with(&["cpu,cpuacct", "systemd"], None);
        let content = "9:nope:/x\n4:cpu,cpuacct:/c\n1:name=systemd:/s\n";
        assert_eq!(
            own_procs_file(content, tmp.path()).unwrap(),
            tmp.path().join("cpu,cpuacct/c/cgroup.procs")
        );
    }

    #[test]
    fn the_own_pid_goes_into_the_cgroup_the_process_is_in() {
        // A stand-in hierarchy laid out like the real one this process is in.
        let content = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let v1 = content.lines().find(|l| !l.starts_with("0::"));
        if content.lines().any(|l| l.starts_with("0::")) {
            let v2_at = if v1.is_some() { "unified" } else { "" };
            std::fs::create_dir_all(tmp.path().join(v2_at)).unwrap();
            std::fs::write(tmp.path().join(v2_at).join("cgroup.controllers"), "").unwrap();
        } else if let Some(line) = v1 {
            let controllers = line.split(':').nth(1).unwrap();
            std::fs::create_dir_all(tmp.path().join(controllers.trim_start_matches("name=")))
                .unwrap();
        }
        let file = own_procs_file(&content, tmp.path()).expect("a hierarchy");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "").unwrap();

        write_own_pid(tmp.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            std::process::id().to_string()
        );
    }

    #[test]
    fn a_missing_cgroup_file_is_an_error_and_nothing_is_made() {
        let tmp = root_with(&[], Some(""));
        let before: Vec<_> = walk(tmp.path());
        assert!(write_own_pid(tmp.path()).is_err());
        assert_eq!(walk(tmp.path()), before);
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = vec![dir.to_path_buf()];
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn odd_lines_and_paths_give_nothing() {
        let tmp = root_with(&["pids"], None);
        for content in [
            "",
            "garbage\n",
            "3:pids:relative\n",
            "3:pids:/../etc\n",
            "0::/x\n",
        ] {
            assert_eq!(own_procs_file(content, tmp.path()), None, "{content:?}");
        }
    }
}
