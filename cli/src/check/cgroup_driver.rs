//! Which cgroup driver the node's kubelet uses, and whether lxcri follows
//! it: lxcri places a container's cgroup at a cgroupfs `linux.cgroupsPath`
//! as runc does, but makes no systemd units for systemd's
//! `slice:prefix:name` (docs/kubernetes.md, "cgroup driver").

use std::fs;
use std::path::Path;

use super::{finding, Finding, Status};

const NAME: &str = "cgroup driver";

/// With `KubeletCgroupDriverFromCRI` (Kubernetes 1.31 on, with containerd
/// 2) the kubelet takes containerd's answer over its own config: the first
/// runc handler's `SystemdCgroup`, else whether systemd runs the node
/// (containerd internal/cri/server/runtime_config_linux.go).
const FROM_CRI: &str = "a kubelet that asks containerd (KubeletCgroupDriverFromCRI) gets SystemdCgroup of containerd's runc handler, or systemd where no handler says and systemd runs: keep SystemdCgroup = false";

/// `run`: the node's `/run` (systemd marks itself as running with
/// `/run/systemd/system`, which is what containerd looks at); `kubelet`:
/// the kubelet's config file. A node without one runs no kubelet here.
pub fn cgroup_driver(run: &Path, kubelet: &Path) -> Finding {
    let Ok(config) = fs::read_to_string(kubelet) else {
        return finding(
            NAME,
            Status::Ok,
            format!(
                "no kubelet config at {}: cgroupfs paths (ctr's, a kubelet's cgroupfs driver) are followed",
                kubelet.display()
            ),
        );
    };
    let systemd = run.join("systemd/system").is_dir();
    // The kubelet's own default is cgroupfs.
    match kubelet_driver(&config).unwrap_or_else(|| "cgroupfs".into()) {
        driver if driver == "cgroupfs" && !systemd => finding(
            NAME,
            Status::Ok,
            format!("the kubelet ({}) uses cgroupfs: pods go below kubepods, as on runc", kubelet.display()),
        ),
        driver if driver == "cgroupfs" => finding(
            NAME,
            Status::Warn,
            format!(
                "the kubelet ({}) uses cgroupfs, but systemd runs this node and {FROM_CRI}",
                kubelet.display()
            ),
        ),
        driver => finding(
            NAME,
            Status::Warn,
            format!(
                "the kubelet ({}) uses {driver:?}: containerd then gives pods systemd's slice:prefix:name, which lxcri does not follow, so pods on lxcri run outside kubepods (no pod-level limits); set cgroupDriver: cgroupfs, and {FROM_CRI}",
                kubelet.display()
            ),
        ),
    }
}

/// The kubelet config's top-level `cgroupDriver` (YAML or JSON).
fn kubelet_driver(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let line = line.trim_end();
        let rest = line
            .strip_prefix("cgroupDriver:")
            .or_else(|| line.trim_start().strip_prefix("\"cgroupDriver\":"))?;
        let value = rest.trim().trim_end_matches(',').trim_matches(['"', '\'']);
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_kubelet_on_cgroupfs_without_systemd_is_sure() {
        let tmp = tempfile::tempdir().unwrap();
        let (run, kubelet) = (tmp.path().join("run"), tmp.path().join("config.yaml"));
        // No kubelet: nothing to warn about, systemd or not.
        fs::create_dir_all(run.join("systemd/system")).unwrap();
        assert_eq!(cgroup_driver(&run, &kubelet).status, Status::Ok);

        fs::write(
            &kubelet,
            "kind: KubeletConfiguration\ncgroupDriver: systemd\n",
        )
        .unwrap();
        let f = cgroup_driver(&run, &kubelet);
        assert_eq!(f.status, Status::Warn);
        assert!(
            f.detail.contains("\"systemd\"") && f.detail.contains("SystemdCgroup"),
            "{}",
            f.detail
        );
        // cgroupfs (or unset, the kubelet's default) on a systemd node:
        // containerd may still answer systemd.
        for config in ["cgroupDriver: cgroupfs\n", "kind: KubeletConfiguration\n"] {
            fs::write(&kubelet, config).unwrap();
            let f = cgroup_driver(&run, &kubelet);
            assert_eq!(f.status, Status::Warn, "{config}");
            assert!(
                f.detail.contains("KubeletCgroupDriverFromCRI"),
                "{}",
                f.detail
            );
        }
        fs::remove_dir_all(run.join("systemd")).unwrap();
        assert_eq!(cgroup_driver(&run, &kubelet).status, Status::Ok);
    }

    #[test]
    fn the_driver_is_read_at_the_top_level_only() {
        assert_eq!(
            kubelet_driver("cgroupDriver: 'systemd'\n").as_deref(),
            Some("systemd")
        );
        assert_eq!(
            kubelet_driver("{\n  \"cgroupDriver\": \"cgroupfs\",\n}").as_deref(),
            Some("cgroupfs")
        );
        assert_eq!(kubelet_driver("nested:\n  cgroupDriver: systemd\n"), None);
        assert_eq!(kubelet_driver("cgroupDriver:\n"), None);
    }
}
